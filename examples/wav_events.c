/*
 * wav_events — prints the speech segments and keywords in a sound file, one
 * JSON line each (the lines `earshot file` prints).
 *
 *   cc wav_events.c $(pkg-config --cflags --libs earshot sndfile) -o wav_events
 *   ./wav_events recording.wav
 */
#include <earshot.h>
#include <sndfile.h>
#include <stdio.h>

static void print_events(earshot_detector *det) {
    char line[512];
    for (const earshot_event *ev; (ev = earshot_poll_event(det));)
        if (earshot_event_to_json(ev, line, sizeof line) > 0) fputs(line, stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: %s FILE\n", argv[0]), 2;
    SF_INFO info = {0};
    SNDFILE *file = sf_open(argv[1], SFM_READ, &info);
    if (!file) return fprintf(stderr, "%s: %s\n", argv[1], sf_strerror(NULL)), 1;

    earshot_params params = earshot_params_default(); /* built-in models */
    params.source = argv[1];
    earshot_detector *det;
    char why[256];
    if (earshot_create(&params, &det, why, sizeof why) < 0)
        return fprintf(stderr, "earshot: %s\n", why), 1;

    float chunk[4096];
    sf_count_t frames;
    while ((frames = sf_readf_float(file, chunk, 4096 / info.channels)) > 0) {
        if (earshot_feed(det, chunk, (size_t)frames, info.samplerate, info.channels) < 0)
            return fprintf(stderr, "earshot: %s\n", earshot_last_error(det)), 1;
        print_events(det);
    }
    earshot_finish(det); /* closes a segment still open at the end */
    print_events(det);
    earshot_destroy(det);
    sf_close(file);
    return 0;
}
