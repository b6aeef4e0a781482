/*
 * Where a WAV stream ends in a byte stream (wav_split.h).
 *
 * After a declared data chunk the bytes are held, not passed on: the reader
 * (libsndfile) stops at the declared size anyway, and they are either the
 * next stream's header or chunks no reader asks for. Trailing chunks are
 * walked by their sizes, like the chunks before the data, as long as their
 * ids are text (as RIFF's are) and they stay within TRAILER_MAX_BYTES, so
 * that a stream saved with metadata after its audio (LIST, id3) still
 * leads to the next one. Anything else after the data, say a writer that
 * sent more audio than it declared, is dropped until the writer closes, as
 * it was before streams were split: walked as chunks, audio would be read
 * as random sizes, and a bound keeps such a walk short.
 */
#include "wav_split.h"

#include <string.h>

/* Metadata after the audio (tags, cue points, cover art) fits. */
#define TRAILER_MAX_BYTES (1u << 20)

#define CHUNK_HEADER_BYTES 8 /* id, size */

enum phase {
    RIFF_HEADER,    /* the stream's first bytes: kept */
    CHUNK_HEADER,   /* a chunk's id and size, before the data: kept */
    CHUNK_BODY,     /* a chunk before the data: kept */
    DATA,           /* the declared data: kept */
    TRAILER_HEADER, /* after the data: the next stream's header or a chunk's, held */
    TRAILER_BODY,   /* a chunk after the data: dropped */
    UNDELIMITED,    /* no end to be found: all kept */
    LOST,           /* after the data, neither a header nor a chunk: all dropped */
};

static int keeps(int phase) {
    return phase <= DATA || phase == UNDELIMITED;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* RIFF chunk ids are four printable ASCII characters. */
static int is_chunk_id(const unsigned char *id) {
    for (int k = 0; k < 4; k++)
        if (id[k] < 0x20 || id[k] > 0x7e) return 0;
    return 1;
}

static void expect_header(es_wav_split *split, int phase, unsigned need) {
    split->phase = phase;
    split->have = 0;
    split->need = need;
}

static void enter_chunk(es_wav_split *split, int phase, uint32_t size) {
    split->phase = phase;
    split->left = size;
    split->pad = size & 1;
}

void es_wav_split_init(es_wav_split *split) {
    memset(split, 0, sizeof *split);
    expect_header(split, RIFF_HEADER, ES_WAV_SPLIT_HEADER_BYTES);
}

static int is_wav_header(const unsigned char *header) {
    return memcmp(header, "RIFF", 4) == 0 && memcmp(header + 8, "WAVE", 4) == 0;
}

/* Before the data: the data chunk's size says where the stream ends. */
static void on_chunk_header(es_wav_split *split) {
    uint32_t size = le32(split->header + 4);
    if (!is_chunk_id(split->header))
        split->phase = UNDELIMITED; /* not WAV as we know it: the reader decides */
    else if (memcmp(split->header, "data", 4) != 0)
        enter_chunk(split, CHUNK_BODY, size);
    else if (size == 0 || size == UINT32_MAX)
        split->phase = UNDELIMITED; /* length unknown to the writer */
    else
        enter_chunk(split, DATA, size);
}

/* After the data; 1 when the header gathered begins the next stream. */
static int on_trailer_header(es_wav_split *split) {
    if (memcmp(split->header, "RIFF", 4) == 0) {
        if (split->need < ES_WAV_SPLIT_HEADER_BYTES) {
            split->need = ES_WAV_SPLIT_HEADER_BYTES; /* and "WAVE" */
            return 0;
        }
        if (is_wav_header(split->header)) return 1;
        split->phase = LOST;
        return 0;
    }
    uint32_t size = le32(split->header + 4);
    split->trailer_bytes += CHUNK_HEADER_BYTES + (uint64_t)size + (size & 1);
    if (!is_chunk_id(split->header) || split->trailer_bytes > TRAILER_MAX_BYTES)
        split->phase = LOST;
    else
        enter_chunk(split, TRAILER_BODY, size);
    return 0;
}

/* Gathers a header's bytes; how many were taken. `*next` is set when they
 * complete the next stream's header. */
static size_t gather(es_wav_split *split, const unsigned char *bytes, size_t len, int *next) {
    /* RIFF pads odd-sized chunks with a zero byte, which some writers leave out. */
    if (split->pad && split->have == 0) {
        split->pad = 0;
        if (bytes[0] == 0) return 1;
    }
    size_t n = split->need - split->have < len ? split->need - split->have : len;
    memcpy(split->header + split->have, bytes, n);
    split->have += (unsigned)n;
    if (split->have < split->need) return n;
    if (split->phase == RIFF_HEADER) {
        if (is_wav_header(split->header))
            expect_header(split, CHUNK_HEADER, CHUNK_HEADER_BYTES);
        else
            split->phase = UNDELIMITED;
    } else if (split->phase == CHUNK_HEADER) {
        on_chunk_header(split);
    } else {
        *next = on_trailer_header(split);
    }
    return n;
}

/* Takes bytes in the phase at hand; how many. */
static size_t step(es_wav_split *split, const unsigned char *bytes, size_t len, int *next) {
    switch (split->phase) {
    case UNDELIMITED:
    case LOST:
        return len;
    case CHUNK_BODY:
    case DATA:
    case TRAILER_BODY: {
        size_t n = split->left < len ? (size_t)split->left : len;
        split->left -= n;
        if (split->left == 0)
            expect_header(split, split->phase == CHUNK_BODY ? CHUNK_HEADER : TRAILER_HEADER,
                          CHUNK_HEADER_BYTES);
        return n;
    }
    default:
        return gather(split, bytes, len, next);
    }
}

int es_wav_split_feed(es_wav_split *split, const unsigned char *bytes, size_t len, size_t *keep,
                      size_t *used) {
    size_t at = 0;
    int next = 0;
    *keep = 0;
    /* Kept bytes come first: once past the data, nothing is kept again. */
    while (at < len && !next) {
        int kept = keeps(split->phase);
        at += step(split, bytes + at, len - at, &next);
        if (kept) *keep = at;
    }
    *used = at;
    return next;
}
