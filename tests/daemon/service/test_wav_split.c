/*
 * wav_split (daemon/service/wav_split.h): WAV streams written back to back
 * are told apart wherever the reads cut them, a header split across reads
 * included; streams of unknown length, or bytes that are no WAV, are never
 * cut; after the data, trailing chunks are walked to the next header and
 * anything else is dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "wav_split.h"

#define MAX_BYTES 4096
#define MAX_STREAMS 4

static size_t put(unsigned char *at, const void *bytes, size_t len) {
    memcpy(at, bytes, len);
    return len;
}

static size_t put32(unsigned char *at, uint32_t value) {
    for (int k = 0; k < 4; k++)
        at[k] = (unsigned char)(value >> (8 * k));
    return 4;
}

static size_t put16(unsigned char *at, uint16_t value) {
    at[0] = (unsigned char)value;
    at[1] = (unsigned char)(value >> 8);
    return 2;
}

typedef struct wav_spec {
    int rate, channels, bits;
    uint32_t data_bytes;    /* audio sent */
    uint32_t declared;      /* the data chunk's size field */
    int pad;                /* a pad byte after odd data */
    const char *trailer_id; /* a chunk after the data, or NULL */
    uint32_t trailer_bytes;
} wav_spec;

/* A WAV stream as a writer sends it: header, a LIST before the data (as
 * ffmpeg writes), the data, maybe a trailing chunk. Returns its length. */
static size_t make_wav(unsigned char *out, const wav_spec *w) {
    size_t n = put(out, "RIFF", 4);
    n += put32(out + n, 0); /* readers ignore it; written below */
    n += put(out + n, "WAVEfmt ", 8);
    n += put32(out + n, 16);
    n += put16(out + n, 1);
    n += put16(out + n, (uint16_t)w->channels);
    n += put32(out + n, (uint32_t)w->rate);
    n += put32(out + n, (uint32_t)(w->rate * w->channels * w->bits / 8));
    n += put16(out + n, (uint16_t)(w->channels * w->bits / 8));
    n += put16(out + n, (uint16_t)w->bits);
    n += put(out + n, "LIST\x05\x00\x00\x00INFOx\x00", 14); /* odd, padded */
    n += put(out + n, "data", 4);
    n += put32(out + n, w->declared);
    for (uint32_t i = 0; i < w->data_bytes; i++)
        out[n++] = (unsigned char)(i * 7 + 1); /* audio, never a header */
    if (w->pad && (w->data_bytes & 1)) out[n++] = 0;
    if (w->trailer_id) {
        n += put(out + n, w->trailer_id, 4);
        n += put32(out + n, w->trailer_bytes);
        memset(out + n, 'm', w->trailer_bytes);
        n += w->trailer_bytes;
    }
    assert_true(n <= MAX_BYTES / MAX_STREAMS);
    put32(out + 4, (uint32_t)(n - 8));
    return n;
}

typedef struct split_out {
    unsigned char bytes[MAX_STREAMS][MAX_BYTES];
    size_t lens[MAX_STREAMS];
    int streams;
} split_out;

/* Feeds `len` bytes as service.c's pump does, in pieces of `piece` bytes:
 * each stream's kept bytes go to out->bytes; a next stream starts from the
 * header and the rest of the piece, carried as one piece. */
static void split_all(const unsigned char *bytes, size_t len, size_t piece, split_out *out) {
    memset(out, 0, sizeof *out);
    es_wav_split split;
    es_wav_split_init(&split);
    out->streams = 1;
    unsigned char carry[MAX_BYTES];
    size_t carried = 0;
    for (size_t at = 0; at < len || carried;) {
        const unsigned char *p = carried ? carry : bytes + at;
        size_t n = carried ? carried : (len - at < piece ? len - at : piece);
        unsigned char taken[MAX_BYTES];
        memcpy(taken, p, n);
        if (!carried) at += n;
        carried = 0;
        size_t keep, used;
        int next = es_wav_split_feed(&split, taken, n, &keep, &used);
        assert_true(keep <= used && used <= n);
        int s = out->streams - 1;
        memcpy(out->bytes[s] + out->lens[s], taken, keep);
        out->lens[s] += keep;
        if (!next) {
            assert_int_equal(used, n);
            continue;
        }
        assert_true(out->streams < MAX_STREAMS);
        out->streams++;
        memcpy(carry, split.header, ES_WAV_SPLIT_HEADER_BYTES);
        memcpy(carry + ES_WAV_SPLIT_HEADER_BYTES, taken + used, n - used);
        carried = ES_WAV_SPLIT_HEADER_BYTES + n - used;
        es_wav_split_init(&split);
    }
}

/* The streams come out exactly as they went in, whatever the read size. */
static void check_split_everywhere(const wav_spec *specs, int count, const size_t *kept_lens) {
    unsigned char bytes[MAX_BYTES], wavs[MAX_STREAMS][MAX_BYTES / MAX_STREAMS];
    size_t len = 0, lens[MAX_STREAMS];
    for (int i = 0; i < count; i++) {
        lens[i] = make_wav(wavs[i], &specs[i]);
        memcpy(bytes + len, wavs[i], lens[i]);
        len += lens[i];
    }
    static split_out out;
    for (size_t piece = 1; piece <= len; piece++) {
        split_all(bytes, len, piece, &out);
        assert_int_equal(out.streams, count);
        for (int i = 0; i < count; i++) {
            size_t want = kept_lens ? kept_lens[i] : lens[i];
            assert_int_equal(out.lens[i], want);
            assert_memory_equal(out.bytes[i], wavs[i], want);
        }
    }
}

/* Kept: each stream up to the end of its data (make_wav's 58 bytes of
 * header and LIST, then the data); its pad byte and trailer are dropped. */
static size_t up_to_data_end(const wav_spec *w) {
    return 58 + w->data_bytes;
}

static void streams_back_to_back_are_split_wherever_reads_cut(void **state) {
    (void)state;
    const wav_spec specs[] = {
        {16000, 1, 16, 640, 640, 0, NULL, 0},
        {44100, 2, 16, 400, 400, 0, NULL, 0}, /* another format */
        {8000, 1, 8, 333, 333, 1, NULL, 0},   /* odd data, padded */
    };
    size_t kept[3];
    for (int i = 0; i < 3; i++)
        kept[i] = up_to_data_end(&specs[i]);
    check_split_everywhere(specs, 2, kept);
    check_split_everywhere(specs, 3, kept);
}

static void trailing_chunks_are_dropped_up_to_the_next_header(void **state) {
    (void)state;
    const wav_spec specs[] = {
        {16000, 1, 16, 300, 300, 0, "LIST", 26},
        {22050, 1, 8, 201, 201, 0, "id3 ", 9}, /* odd data unpadded, odd trailer */
        {16000, 1, 16, 100, 100, 0, NULL, 0},
    };
    size_t kept[3];
    for (int i = 0; i < 3; i++)
        kept[i] = up_to_data_end(&specs[i]);
    check_split_everywhere(specs, 3, kept);
}

/* Live writers (ffmpeg to a pipe) cannot say how long their stream is: no
 * end is looked for, the rest is all theirs. */
static void streams_of_unknown_length_are_never_cut(void **state) {
    (void)state;
    static const uint32_t unknown[] = {0, UINT32_MAX};
    for (int u = 0; u < 2; u++) {
        const wav_spec specs[] = {{16000, 1, 16, 200, unknown[u], 0, NULL, 0},
                                  {16000, 1, 16, 200, 200, 0, NULL, 0}};
        unsigned char bytes[MAX_BYTES];
        size_t len = make_wav(bytes, &specs[0]);
        len += make_wav(bytes + len, &specs[1]);
        static split_out out;
        for (size_t piece = 1; piece <= len; piece += 7) {
            split_all(bytes, len, piece, &out);
            assert_int_equal(out.streams, 1);
            assert_int_equal(out.lens[0], len);
            assert_memory_equal(out.bytes[0], bytes, len);
        }
    }
}

/* Bytes that are no WAV are the reader's to refuse: all passed on. */
static void bytes_that_are_no_wav_are_passed_on_whole(void **state) {
    (void)state;
    unsigned char bytes[600];
    memset(bytes, 'z', sizeof bytes);
    memcpy(bytes + 300, "RIFF\x10\x00\x00\x00WAVE", 12);
    static split_out out;
    split_all(bytes, sizeof bytes, 64, &out);
    assert_int_equal(out.streams, 1);
    assert_int_equal(out.lens[0], sizeof bytes);
    /* "RIFF" that is not WAVE, e.g. an AVI: the same. */
    memcpy(bytes,
           "RIFF\x10\x00\x00\x00"
           "AVI ",
           12);
    split_all(bytes, sizeof bytes, 5, &out);
    assert_int_equal(out.streams, 1);
    assert_int_equal(out.lens[0], sizeof bytes);
}

/* After the data, what is neither a chunk nor a header (more audio than
 * declared), a RIFF that is no WAVE, or trailing chunks past the bound, are
 * dropped, a header after them too, until the writer closes. */
static void what_follows_the_data_otherwise_is_dropped(void **state) {
    (void)state;
    const wav_spec a = {16000, 1, 16, 200, 200, 0, NULL, 0};
    const wav_spec b = {16000, 1, 16, 100, 100, 0, NULL, 0};
    const char *const afters[] = {"\x01\x02\x03\x04\x05\x06\x07\x08",
                                  "RIFF\x04\x00\x00\x00"
                                  "AVI ",
                                  "LIST\x01\x00\x10\x00"}; /* a list of 1 MiB and 1 byte */
    const size_t after_lens[] = {8, 12, 8};
    for (int i = 0; i < 3; i++) {
        unsigned char bytes[MAX_BYTES];
        size_t len = make_wav(bytes, &a);
        size_t kept = len;
        len += put(bytes + len, afters[i], after_lens[i]);
        len += make_wav(bytes + len, &b);
        static split_out out;
        split_all(bytes, len, 100, &out);
        assert_int_equal(out.streams, 1);
        assert_int_equal(out.lens[0], kept);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(streams_back_to_back_are_split_wherever_reads_cut),
        cmocka_unit_test(trailing_chunks_are_dropped_up_to_the_next_header),
        cmocka_unit_test(streams_of_unknown_length_are_never_cut),
        cmocka_unit_test(bytes_that_are_no_wav_are_passed_on_whole),
        cmocka_unit_test(what_follows_the_data_otherwise_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
