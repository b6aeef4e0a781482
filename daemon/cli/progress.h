/*
 * progress — a one-line progress bar with ETA on stderr, for long offline runs.
 *
 * Shown only when stderr is a terminal and the work is long enough to be
 * worth watching; otherwise every call is a no-op, so callers need no checks.
 * Thread-safe: `-j N` workers report into one bar.
 */
#ifndef ES_PROGRESS_H
#define ES_PROGRESS_H

typedef struct es_progress es_progress;

/* `total_s`: seconds of audio to analyse. Returns NULL (a valid no-op bar)
 * when stderr is not a TTY or total_s is below `min_total_s`. */
es_progress *es_progress_create(double total_s, double min_total_s);

/* Adds `done_s` seconds of analysed audio; redraws at most ~10 times a second. */
void es_progress_add(es_progress *progress, double done_s);

/* Erases the bar and frees it. */
void es_progress_destroy(es_progress *progress);

#endif
