/*
 * vad_sweep: replays earshot's VAD detector (daemon/detect/detect.c, linked as is)
 * over per-frame speech probabilities for a grid of detector settings, and
 * scores each setting against frame truth. scripts/tune-detector.sh builds
 * the inputs from the validation split and runs this.
 *
 *   vad_sweep [--grid small|full] [--only ON,OFF,MINSP,MINSIL,PAD|default] [--model]
 *             TRUTH NAME=FRAMES.csv...
 *
 * --only scores one setting (`default`: detect.c's compiled-in defaults, max
 * speech included); the grids keep max speech at its default.
 *
 * TRUTH: "start_s<TAB>end_s" speech segments (tools/eval/build.js's
 * vad.truth.tsv), the same for every FRAMES file (one stream mixed at several
 * SNRs). FRAMES: `earshot file --format frames` output (time_s,speech,...).
 *
 * Output, one TSV row per setting (header first): the knobs, then
 *   f1_frames      F1 of the segments rasterised to 10 ms frames (as
 *                  scripts/eval.sh's "F1 of speech segments"), mean over files
 *   f1_seg         segment F1: a detected segment is right when at least half
 *                  of it is speech, a true segment is found when at least half
 *                  of it is covered; mean over files
 *   f1_<NAME>      f1_frames of each file
 *   onset_med, onset_p90   onset latency, ms: for each onset (a true segment
 *                  after >= 300 ms of silence) the end of the frame where the
 *                  detector opened the segment that covers it, minus the true
 *                  start; all files pooled
 *   confirm_med, confirm_p90   speech_start latency, ms: for the same onsets,
 *                  the `time` of the speech_start event announcing the segment
 *                  that covers it (sent once the segment is sure to be kept)
 *                  minus the true start: what a live consumer waits
 *   onset_missed   share of onsets no segment covers
 *   onset_early    share of onsets inside a segment opened >= 300 ms before
 *                  (noise or a bridge held it open): no onset latency for them
 *   end_med, end_p90   from the end of a true segment that >= 300 ms of
 *                  silence follows to the stream time at which the detector
 *                  sent the last segment overlapping it, ms
 * With --model: instead, how fast the probability itself rises: for each onset
 * and threshold, the first frame at or after (start - 300 ms) reaching it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"

#define RATE 16000
#define HOP 160
#define MAX_FILES 16
#define ONSET_SILENCE_FRAMES 30 /* 300 ms of silence before a true onset */

typedef struct {
    double start, end, emitted; /* emitted: stream time when the event was sent */
} seg;

typedef struct {
    const char *name;
    float *p;
    int n;
} frames_file;

typedef struct {
    seg *v;
    int n, cap;
} seg_list;

static void die(const char *what) {
    fprintf(stderr, "vad_sweep: %s\n", what);
    exit(1);
}

static double now_s; /* end of the frame being fed, for `emitted` */

static void seg_push(seg_list *l, double s, double e) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, sizeof *l->v * (size_t)l->cap);
        if (!l->v) die("out of memory");
    }
    l->v[l->n].start = s;
    l->v[l->n].end = e;
    l->v[l->n].emitted = now_s;
    l->n++;
}

typedef struct {
    seg_list segments, starts; /* starts: speech_start events; `emitted` is their time */
} detections;

static void collect(const es_event *event, void *user) {
    detections *d = user;
    if (event->type == ES_EVENT_SPEECH) seg_push(&d->segments, event->start_s, event->end_s);
    if (event->type == ES_EVENT_SPEECH_START) seg_push(&d->starts, event->start_s, event->start_s);
}

static void read_truth(const char *path, seg_list *truth) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open the truth file");
    char line[256];
    while (fgets(line, sizeof line, f)) {
        double s, e;
        if (line[0] == '#') continue;
        if (sscanf(line, "%lf %lf", &s, &e) == 2) seg_push(truth, s, e);
    }
    fclose(f);
}

static void read_frames(const char *path, frames_file *ff) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open a frames file");
    int cap = 1 << 16;
    ff->p = malloc(sizeof *ff->p * (size_t)cap);
    ff->n = 0;
    static char line[1 << 16];
    if (!fgets(line, sizeof line, f)) die("empty frames file");
    while (fgets(line, sizeof line, f)) {
        char *comma = strchr(line, ',');
        if (!comma) continue;
        if (ff->n == cap) {
            cap *= 2;
            ff->p = realloc(ff->p, sizeof *ff->p * (size_t)cap);
            if (!ff->p) die("out of memory");
        }
        ff->p[ff->n++] = strtof(comma + 1, NULL);
    }
    fclose(f);
}

static int to_frame(double s) {
    return (int)lround(s * RATE / HOP);
}

static void rasterise(const seg_list *l, unsigned char *lab, int n) {
    memset(lab, 0, (size_t)n);
    for (int i = 0; i < l->n; i++) {
        int a = to_frame(l->v[i].start), b = to_frame(l->v[i].end);
        if (a < 0) a = 0;
        if (b > n) b = n;
        if (b > a) memset(lab + a, 1, (size_t)(b - a));
    }
}

static double f1_frames(const unsigned char *pred, const unsigned char *truth, int n) {
    long tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < n; i++) {
        tp += pred[i] && truth[i];
        fp += pred[i] && !truth[i];
        fn += !pred[i] && truth[i];
    }
    return tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0.0;
}

static double covered(const unsigned char *lab, int n, double s, double e) {
    int a = to_frame(s), b = to_frame(e), k = 0;
    if (a < 0) a = 0;
    if (b > n) b = n;
    if (b <= a) return 0.0;
    for (int i = a; i < b; i++)
        k += lab[i];
    return (double)k / (b - a);
}

static double f1_segments(const seg_list *det, const unsigned char *det_lab, const seg_list *truth,
                          const unsigned char *truth_lab, int n) {
    int right = 0, found = 0;
    for (int i = 0; i < det->n; i++)
        right += covered(truth_lab, n, det->v[i].start, det->v[i].end) >= 0.5;
    for (int i = 0; i < truth->n; i++)
        found += covered(det_lab, n, truth->v[i].start, truth->v[i].end) >= 0.5;
    double p = det->n ? (double)right / det->n : 0.0, r = truth->n ? (double)found / truth->n : 0.0;
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, int n, double q) {
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i];
}

/* True segments that follow >= 300 ms of silence (or the stream start). */
static int is_onset(const seg_list *truth, int i) {
    if (i == 0) return 1;
    return to_frame(truth->v[i].start) - to_frame(truth->v[i - 1].end) >= ONSET_SILENCE_FRAMES;
}

/* True segments followed by >= 300 ms of silence (or the stream end). */
static int is_offset(const seg_list *truth, int i) {
    if (i == truth->n - 1) return 1;
    return to_frame(truth->v[i + 1].start) - to_frame(truth->v[i].end) >= ONSET_SILENCE_FRAMES;
}

typedef struct {
    double f1_frames[MAX_FILES], f1_frames_mean, f1_seg_mean;
    double onset_med, onset_p90, confirm_med, confirm_p90, missed, early, end_med, end_p90;
} score;

static double *latencies, *confirm_latencies, *end_latencies;
static int latency_cap, confirm_latency_cap, end_latency_cap;

static void push_latency(double **v, int *n, int *cap, double x) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        *v = realloc(*v, sizeof **v * (size_t)*cap);
        if (!*v) die("out of memory");
    }
    (*v)[(*n)++] = x;
}

static void score_config(const es_vad_config *cfg, frames_file *files, int nfiles,
                         const seg_list *truth, score *out) {
    int nl = 0, nc = 0, ne = 0, onsets = 0, missed = 0, early = 0;
    out->f1_frames_mean = out->f1_seg_mean = 0;
    for (int f = 0; f < nfiles; f++) {
        es_vad_detector *d;
        if (es_vad_detector_create(cfg, RATE, HOP, &d) != ES_DETECT_OK) die("bad config");
        detections found = {0};
        const float *p = files[f].p;
        int n = files[f].n;
        for (int t = 0; t < n; t++) {
            now_s = (double)(t + 1) * HOP / RATE;
            es_vad_detector_step(d, (int64_t)t * HOP, p[t], collect, &found);
        }
        es_vad_detector_flush(d, collect, &found);
        es_vad_detector_destroy(d);
        const seg_list det = found.segments;
        int k = 0; /* speech_start events come in the order of their segments */

        unsigned char *det_lab = malloc((size_t)n), *truth_lab = malloc((size_t)n);
        rasterise(&det, det_lab, n);
        rasterise(truth, truth_lab, n);
        out->f1_frames[f] = f1_frames(det_lab, truth_lab, n);
        out->f1_frames_mean += out->f1_frames[f] / nfiles;
        out->f1_seg_mean += f1_segments(&det, det_lab, truth, truth_lab, n) / nfiles;

        int j = 0;
        for (int i = 0; i < truth->n; i++) {
            if (!is_onset(truth, i)) continue;
            double s = truth->v[i].start, e = truth->v[i].end;
            if (to_frame(s) >= n) continue;
            onsets++;
            while (j < det.n && det.v[j].end <= s)
                j++;
            if (j == det.n || det.v[j].start >= e) {
                missed++;
                continue;
            }
            /* The detector opened the segment at its first frame at or
             * after the event's start that reaches the onset threshold. */
            int a = to_frame(det.v[j].start);
            if (a < 0) a = 0;
            while (a < n && p[a] < cfg->onset_threshold)
                a++;
            double open_end = (double)(a + 1) * HOP / RATE;
            if (open_end < s - 0.3) {
                early++;
                continue;
            }
            push_latency(&latencies, &nl, &latency_cap, 1000.0 * (open_end - s));
            while (k < found.starts.n && found.starts.v[k].start < det.v[j].start)
                k++;
            if (k < found.starts.n && found.starts.v[k].start == det.v[j].start)
                push_latency(&confirm_latencies, &nc, &confirm_latency_cap,
                             1000.0 * (found.starts.v[k].emitted - s));
        }
        /* End of speech to its event: the last segment overlapping a true
         * segment that silence follows, sent when it can no longer grow. */
        j = 0;
        for (int i = 0; i < truth->n; i++) {
            if (!is_offset(truth, i)) continue;
            double s = truth->v[i].start, e = truth->v[i].end;
            if (to_frame(e) > n) continue;
            while (j < det.n && det.v[j].end <= s)
                j++;
            int last = -1;
            for (int k = j; k < det.n && det.v[k].start < e; k++)
                last = k;
            if (last >= 0)
                push_latency(&end_latencies, &ne, &end_latency_cap,
                             1000.0 * (det.v[last].emitted - e));
        }
        free(det_lab);
        free(truth_lab);
        free(found.segments.v);
        free(found.starts.v);
    }
    out->onset_med = percentile(latencies, nl, 0.5);
    out->onset_p90 = percentile(latencies, nl, 0.9);
    out->confirm_med = percentile(confirm_latencies, nc, 0.5);
    out->confirm_p90 = percentile(confirm_latencies, nc, 0.9);
    out->end_med = percentile(end_latencies, ne, 0.5);
    out->end_p90 = percentile(end_latencies, ne, 0.9);
    out->missed = onsets ? (double)missed / onsets : 0;
    out->early = onsets ? (double)early / onsets : 0;
}

/* How fast the probability rises at true onsets, per threshold and file. */
static void model_latency(frames_file *files, int nfiles, const seg_list *truth) {
    static const float thresholds[] = {0.3f, 0.5f, 0.7f, 0.8f, 0.85f, 0.9f};
    printf("threshold\tfile\tonsets\tmed_ms\tp90_ms\tbefore_ms_-300\tnever_in_segment\n");
    for (size_t k = 0; k < sizeof thresholds / sizeof *thresholds; k++) {
        for (int f = 0; f <= nfiles; f++) {
            int nl = 0, onsets = 0, already = 0, never = 0;
            for (int g = 0; g < nfiles; g++) {
                if (f < nfiles && g != f) continue;
                const float *p = files[g].p;
                int n = files[g].n;
                for (int i = 0; i < truth->n; i++) {
                    if (!is_onset(truth, i)) continue;
                    int s = to_frame(truth->v[i].start), e = to_frame(truth->v[i].end);
                    if (s >= n) continue;
                    onsets++;
                    int a = s - ONSET_SILENCE_FRAMES < 0 ? 0 : s - ONSET_SILENCE_FRAMES;
                    if (p[a] >= thresholds[k]) {
                        already++;
                        continue;
                    }
                    while (a < e && a < n && p[a] < thresholds[k])
                        a++;
                    if (a >= e || a >= n) {
                        never++;
                        continue;
                    }
                    push_latency(&latencies, &nl, &latency_cap, 10.0 * (a + 1 - s));
                }
            }
            double med = percentile(latencies, nl, 0.5), p90 = percentile(latencies, nl, 0.9);
            printf("%.2f\t%s\t%d\t%.0f\t%.0f\t%d\t%d\n", (double)thresholds[k],
                   f < nfiles ? files[f].name : "all", onsets, med, p90, already, never);
        }
    }
}

int main(int argc, char **argv) {
    int full = 1, model = 0, argi = 1;
    const char *only = NULL;
    while (argi < argc && strncmp(argv[argi], "--", 2) == 0) {
        if (strcmp(argv[argi], "--grid") == 0 && argi + 1 < argc)
            full = strcmp(argv[argi + 1], "small") != 0, argi += 2;
        else if (strcmp(argv[argi], "--only") == 0 && argi + 1 < argc)
            only = argv[argi + 1], argi += 2;
        else if (strcmp(argv[argi], "--model") == 0)
            model = 1, argi++;
        else
            die("usage: vad_sweep [--grid small|full] [--only ON,OFF,MINSP,MINSIL,PAD|default] "
                "[--model] "
                "TRUTH NAME=FRAMES.csv...");
    }
    if (argc - argi < 2 || argc - argi - 1 > MAX_FILES) die("need TRUTH and 1..16 NAME=FRAMES.csv");
    seg_list truth = {0};
    read_truth(argv[argi++], &truth);
    frames_file files[MAX_FILES];
    int nfiles = 0;
    for (; argi < argc; argi++) {
        char *eq = strchr(argv[argi], '=');
        if (!eq) die("files are NAME=FRAMES.csv");
        *eq = '\0';
        files[nfiles].name = argv[argi];
        read_frames(eq + 1, &files[nfiles]);
        nfiles++;
    }
    if (model) {
        model_latency(files, nfiles, &truth);
        return 0;
    }

    static const float onsets_full[] = {0.4f, 0.5f, 0.6f, 0.7f, 0.75f, 0.8f, 0.85f, 0.9f, 0.95f};
    static const float offset_ratio_full[] = {0.5f, 0.7f, 0.8f, 0.9f, 1.0f};
    static const int min_speech_full[] = {0, 30, 50, 70, 100, 150, 250, 400};
    static const int min_silence_full[] = {50, 100, 150, 200, 300, 500};
    static const int pad_full[] = {0, 10, 30, 60, 100};
    static const float onsets_small[] = {0.4f, 0.5f, 0.6f};
    static const float offset_ratio_small[] = {0.7f};
    static const int min_speech_small[] = {100, 250};
    static const int min_silence_small[] = {300};
    static const int pad_small[] = {30, 100};
#define PICK(a, b) (full ? (a) : (b))
#define COUNT(a, b) (full ? sizeof(a) / sizeof *(a) : sizeof(b) / sizeof *(b))
    const float *ons = PICK(onsets_full, onsets_small);
    const float *ratios = PICK(offset_ratio_full, offset_ratio_small);
    const int *msp = PICK(min_speech_full, min_speech_small);
    const int *msl = PICK(min_silence_full, min_silence_small);
    const int *pads = PICK(pad_full, pad_small);
    size_t n_on = COUNT(onsets_full, onsets_small),
           n_ratio = COUNT(offset_ratio_full, offset_ratio_small),
           n_msp = COUNT(min_speech_full, min_speech_small),
           n_msl = COUNT(min_silence_full, min_silence_small), n_pad = COUNT(pad_full, pad_small);

    printf("onset\toffset\tmin_speech_ms\tmin_silence_ms\tpad_ms\tf1_frames\tf1_seg");
    for (int f = 0; f < nfiles; f++)
        printf("\tf1_%s", files[f].name);
    printf("\tonset_med\tonset_p90\tconfirm_med\tconfirm_p90\tonset_missed\tonset_early\tend_"
           "med\tend_p90\n");

    es_vad_config cfg;
    es_vad_config_default(&cfg);
    for (size_t a = 0; a < n_on; a++)
        for (size_t b = 0; b < n_ratio; b++)
            for (size_t c = 0; c < n_msp; c++)
                for (size_t d = 0; d < n_msl; d++)
                    for (size_t e = 0; e < n_pad; e++) {
                        cfg.onset_threshold = ons[a];
                        cfg.offset_threshold = roundf(100.0f * ons[a] * ratios[b]) / 100.0f;
                        cfg.min_speech_ms = msp[c];
                        cfg.min_silence_ms = msl[d];
                        cfg.pad_ms = pads[e];
                        if (only && strcmp(only, "default") == 0) {
                            es_vad_config_default(&cfg);
                            a = n_on, b = n_ratio, c = n_msp, d = n_msl, e = n_pad;
                        } else if (only) {
                            if (sscanf(only, "%f,%f,%d,%d,%d", &cfg.onset_threshold,
                                       &cfg.offset_threshold, &cfg.min_speech_ms,
                                       &cfg.min_silence_ms, &cfg.pad_ms) != 5)
                                die("--only wants ON,OFF,MINSP,MINSIL,PAD");
                            a = n_on, b = n_ratio, c = n_msp, d = n_msl, e = n_pad;
                        }
                        cfg.speech_start_events = 1; /* confirm_*; the segments are the same */
                        if (es_vad_config_check(&cfg, NULL)) continue;
                        score s;
                        score_config(&cfg, files, nfiles, &truth, &s);
                        printf("%.2f\t%.2f\t%d\t%d\t%d\t%.4f\t%.4f", (double)cfg.onset_threshold,
                               (double)(cfg.offset_threshold < 0 ? cfg.onset_threshold
                                                                 : cfg.offset_threshold),
                               cfg.min_speech_ms, cfg.min_silence_ms, cfg.pad_ms, s.f1_frames_mean,
                               s.f1_seg_mean);
                        for (int f = 0; f < nfiles; f++)
                            printf("\t%.4f", s.f1_frames[f]);
                        printf("\t%.0f\t%.0f\t%.0f\t%.0f\t%.3f\t%.3f\t%.0f\t%.0f\n", s.onset_med,
                               s.onset_p90, s.confirm_med, s.confirm_p90, s.missed, s.early,
                               s.end_med, s.end_p90);
                    }
    return 0;
}
