#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int es_error_set(es_error *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->why, sizeof err->why, fmt, args);
    va_end(args);
    return code;
}
