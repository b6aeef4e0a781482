/*
 * wav_split — where one WAV stream ends and the next begins in bytes that
 * carry several back to back: a FIFO whose next writer opened it before the
 * daemon had read the last one's end shows no end between their streams.
 *
 * Fed the bytes as they come, in pieces of any size (a header may arrive
 * split over several), it follows the stream's RIFF chunks. A stream whose
 * data chunk declares its size ends with that data; what follows is either
 * the next stream's "RIFF....WAVE" header, maybe after trailing chunks
 * (LIST, id3, ...), or anything else, dropped (wav_split.c says why). A
 * stream that is not RIFF/WAVE, or whose data size is 0 or 0xFFFFFFFF (the
 * placeholders of writers that cannot know the length, ffmpeg's to a pipe),
 * cannot be delimited: all that follows is its. A larger placeholder (the
 * 2 GiB of arecord) is taken at its word, as the reader takes it.
 *
 * Pure bookkeeping: no I/O, no allocation. Private to daemon/service
 * (service.c's FIFO pump and its tests).
 */
#ifndef ES_WAV_SPLIT_H
#define ES_WAV_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* "RIFF", its size, "WAVE": what a stream begins with. */
#define ES_WAV_SPLIT_HEADER_BYTES 12

typedef struct es_wav_split {
    /* The parser's own; callers read only `header`, after a split. */
    int phase;
    unsigned char header[ES_WAV_SPLIT_HEADER_BYTES]; /* a header or chunk header gathered */
    unsigned have, need;                             /* its bytes so far, and wanted */
    uint64_t left;          /* bytes left of the chunk being passed or dropped */
    int pad;                /* the chunk had an odd size: a pad byte may follow */
    uint64_t trailer_bytes; /* walked after the data so far */
} es_wav_split;

/* A new stream: nothing seen yet. */
void es_wav_split_init(es_wav_split *split);

/* Takes the next `len` bytes of the stream. The first `*keep` of them are
 * the stream's (pass them on); the next ones up to `*used` are dropped or
 * held (a header not yet whole). Returns 1 when the next stream begins: its
 * bytes are then `split->header` (whole, ES_WAV_SPLIT_HEADER_BYTES: it may
 * have come in earlier pieces) followed by bytes[*used..len), to be fed to
 * a fresh es_wav_split. Returns 0 otherwise, with *used == len. */
int es_wav_split_feed(es_wav_split *split, const unsigned char *bytes, size_t len, size_t *keep,
                      size_t *used);

#endif
