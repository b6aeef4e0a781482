/*
 * `earshot bench --streams N` (bench_streams.c): many live streams on one
 * engine thread. Shared with bench_cmd.c: its generated audio.
 */
#ifndef ES_BENCH_STREAMS_H
#define ES_BENCH_STREAMS_H

#include <stdint.h>

/* Sample n of bench_cmd.c's speech-like generated audio at `rate_hz`. */
float es_bench_generated_sample(int64_t n, int rate_hz, uint32_t *noise);

/* Runs 1 stream, then `streams`, each for `seconds` of real time; prints a
 * row per run. Returns an ES_EXIT_ code. */
int es_bench_streams(int streams, int seconds, int tsv);

#endif
