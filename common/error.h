/*
 * error — the one way earshot's library code reports a failure.
 *
 * A call that can fail returns an int: 0 (or a count, where its header says
 * so) on success, a negative code on failure. When the reason is worth
 * telling, the call also takes an `es_error *` (which may be NULL) and fills
 * it: `code` repeats the returned code, `why` is one sentence that names
 * what failed and why ("vad model /x.esm: expects 64 mel bands, front end
 * makes 40"). Codes are the module's own (ES_DSP_ERR_*, ES_RNN_ERR_*,
 * ES_PIPELINE_ERR_*, ...; each module's header lists them, most with a
 * strerror function) or, for calls that fail on a system call, a negated
 * errno value (-ENOENT).
 *
 * Library code never prints: the command line (daemon/cli/) prints errors
 * as "earshot: COMMAND: WHY", the service logs them (daemon/service/).
 * Nothing here allocates, so an error can be reported when memory is out.
 */
#ifndef ES_ERROR_H
#define ES_ERROR_H

typedef struct es_error {
    int code;
    char why[256];
} es_error;

/* Fills `err` (when not NULL) with `code` and the formatted reason; returns
 * `code`, so that a failure can be reported and returned in one statement:
 *     return es_error_set(err, ES_RNN_ERR_IO, "%s: %s", path, strerror(errno));
 * A reason longer than `why` is cut to fit. */
int es_error_set(es_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
