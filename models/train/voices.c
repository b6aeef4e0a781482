#include "factory.h"

#include <stdint.h>
#include <string.h>

/* FNV-1a, 32-bit: small, stable across platforms, and spreads the short
 * variant names ("m3", "robosoft5") well over ten buckets. */
static uint32_t fnv1a(const char *text) {
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

es_split es_voice_split(const char *engine, const char *voice) {
    if (strcmp(engine, "espeak") != 0) return ES_SPLIT_TRAIN;
    const char *plus = strchr(voice, '+');
    if (!plus || plus[1] == '\0') return ES_SPLIT_TRAIN; /* a plain accent */
    const uint32_t bucket = fnv1a(plus + 1) % 10;
    return bucket == 0 ? ES_SPLIT_VALID : bucket == 1 ? ES_SPLIT_TEST : ES_SPLIT_TRAIN;
}
