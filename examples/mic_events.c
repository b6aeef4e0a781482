/*
 * mic_events — listens to the default microphone through PortAudio and
 * prints speech segments and keywords as they are heard.
 *
 *   cc mic_events.c $(pkg-config --cflags --libs earshot portaudio-2.0) -o mic_events
 *   ./mic_events          # until Ctrl-C
 *   ./mic_events 10       # for 10 seconds
 *
 * PortAudio's blocking read keeps this single-threaded: the main thread
 * reads 10 ms at a time and feeds the detector, so no callback thread ever
 * touches the handle. (To feed from a PortAudio callback instead, set
 * params.sample_rate_hz and params.channels before earshot_create: feeding
 * is then [rt], see earshot.h, but the networks run inside the callback.)
 */
#include <earshot.h>
#include <portaudio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void print_events(earshot_detector *det) {
    for (const earshot_event *ev; (ev = earshot_poll_event(det));) {
        if (ev->type == EARSHOT_EVENT_KEYWORD)
            printf("keyword %-10s at %7.2f s  (score %.2f)\n", ev->keyword, ev->time, ev->score);
        else if (ev->type == EARSHOT_EVENT_SPEECH)
            printf("speech  %7.2f - %7.2f s  (score %.2f)\n", ev->start, ev->end, ev->score);
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0; /* 0: until Ctrl-C */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    if (Pa_Initialize() != paNoError) return fprintf(stderr, "PortAudio: cannot start\n"), 1;
    PaDeviceIndex device = Pa_GetDefaultInputDevice();
    if (device == paNoDevice) return fprintf(stderr, "PortAudio: no input device\n"), 1;
    int rate = (int)Pa_GetDeviceInfo(device)->defaultSampleRate; /* any rate will do */

    earshot_params params = earshot_params_default();
    params.wallclock = 1;         /* live: events carry their Unix time */
    params.sample_rate_hz = rate; /* format known up front: every feed is [rt] */
    params.channels = 1;
    earshot_detector *det;
    char why[256];
    if (earshot_create(&params, &det, why, sizeof why) < 0)
        return fprintf(stderr, "earshot: %s\n", why), 1;

    PaStream *stream;
    unsigned long hop = (unsigned long)rate / 100; /* 10 ms */
    PaError err = Pa_OpenDefaultStream(&stream, 1, 0, paFloat32, rate, hop, NULL, NULL);
    if (err == paNoError) err = Pa_StartStream(stream);
    if (err != paNoError) return fprintf(stderr, "PortAudio: %s\n", Pa_GetErrorText(err)), 1;

    float *buffer = malloc(hop * sizeof *buffer);
    for (long read = 0; buffer && !stop && (seconds <= 0 || read < seconds * rate); read += hop) {
        err = Pa_ReadStream(stream, buffer, hop); /* an overflow only means lost samples */
        if (err != paNoError && err != paInputOverflowed) break;
        earshot_feed(det, buffer, hop, rate, 1);
        print_events(det);
    }
    earshot_finish(det);
    print_events(det);

    Pa_StopStream(stream);
    Pa_CloseStream(stream);
    Pa_Terminate();
    free(buffer);
    earshot_destroy(det);
    return err == paNoError || err == paInputOverflowed ? 0 : 1;
}
