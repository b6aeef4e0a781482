/*
 * Progress bar (progress.h). Drawn with '\r' and erased at the end, so a
 * terminal that also shows error lines stays readable.
 */
#include "clock.h"
#include "progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define REDRAW_INTERVAL_S 0.1

struct es_progress {
    pthread_mutex_t lock;
    double total_s;
    double done_s;
    double started_s;
    double drawn_s; /* when the bar was last drawn */
};

es_progress *es_progress_create(double total_s, double min_total_s) {
    if (!isatty(STDERR_FILENO) || !(total_s >= min_total_s) || total_s <= 0) return NULL;
    es_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->lock, NULL);
    p->total_s = total_s;
    p->started_s = es_monotonic_s();
    return p;
}

static void draw(const es_progress *p, double now) {
    double fraction = p->done_s / p->total_s;
    if (fraction > 1.0) fraction = 1.0;
    int filled = (int)(fraction * BAR_WIDTH);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    double elapsed = now - p->started_s;
    double speed = elapsed > 0 ? p->done_s / elapsed : 0;
    if (fraction > 0.0 && speed > 0) {
        int eta_s = (int)((p->total_s - p->done_s) / speed + 0.5);
        fprintf(stderr, "\r[%s] %3d%%  %.0fx real time  ETA %d:%02d ", bar, (int)(fraction * 100),
                speed, eta_s / 60, eta_s % 60);
    } else {
        fprintf(stderr, "\r[%s] %3d%% ", bar, (int)(fraction * 100));
    }
}

void es_progress_add(es_progress *progress, double done_s) {
    if (!progress) return;
    pthread_mutex_lock(&progress->lock);
    progress->done_s += done_s;
    double now = es_monotonic_s();
    if (now - progress->drawn_s >= REDRAW_INTERVAL_S) {
        draw(progress, now);
        progress->drawn_s = now;
    }
    pthread_mutex_unlock(&progress->lock);
}

void es_progress_destroy(es_progress *progress) {
    if (!progress) return;
    /* Erase the line: spaces over the bar, then back to column 0. */
    fprintf(stderr, "\r%*s\r", BAR_WIDTH + 48, "");
    pthread_mutex_destroy(&progress->lock);
    free(progress);
}
