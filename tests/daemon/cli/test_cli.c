/*
 * The `earshot` binary as users and scripts see it: exit statuses, error
 * messages that name the file or flag, output formats, stdin, parallel runs,
 * and the same clip at other rates and channel counts.
 *
 * Runs the built binary (EARSHOT_BINARY) on tests/clips/demo.wav and on bad
 * files written here from raw bytes; other rates are made with sox.
 */
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "builtin.h"
#include "detect.h"
#include "stream.h"

#define DEMO_CLIP ES_SOURCE_DIR "/tests/clips/demo.wav"
#define DEMO_TRUTH ES_SOURCE_DIR "/tests/clips/demo.truth.tsv"
#define REAL_CLIP ES_SOURCE_DIR "/tests/clips/real-keywords.wav"
#define REAL_TRUTH ES_SOURCE_DIR "/tests/clips/real-keywords.truth.tsv"
#define MAX_ARGS 32

/* Speech posteriors of the same clip at another rate stay this close to the
 * 16 kHz ones (mean absolute difference over frames): resampling keeps the
 * band the features see; 8 kHz input loses 4-7.6 kHz, so it gets more room. */
#define MAX_MEAN_SPEECH_DIFF_WIDEBAND 0.03
#define MAX_MEAN_SPEECH_DIFF_8K 0.12
/* Speech segment boundaries at another rate, seconds. */
#define SEGMENT_TOLERANCE_S 0.15

static char temp_dir[64];

/* ---- running the binary ------------------------------------------------------- */

typedef struct run_result {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err;
} run_result;

static char *read_whole(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

static void temp_path(char *path, size_t size, const char *name) {
    snprintf(path, size, "%s/%s", temp_dir, name);
}

/* Runs `program` with NULL-terminated `args`. When `stdin_file` is set its
 * bytes are written into a pipe that is the program's stdin (a real pipe:
 * not seekable, as in `cat x | earshot file -`). */
static run_result run_program(const char *program, const char *const *args,
                              const char *stdin_file) {
    char out_path[128], err_path[128];
    temp_path(out_path, sizeof out_path, "stdout.txt");
    temp_path(err_path, sizeof err_path, "stderr.txt");
    int pipe_fds[2] = {-1, -1};
    if (stdin_file) assert_int_equal(pipe(pipe_fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = stdin_file ? pipe_fds[0] : open("/dev/null", O_RDONLY);
        dup2(in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        if (stdin_file) close(pipe_fds[1]);
        char *argv[MAX_ARGS + 2];
        int argc = 0;
        argv[argc++] = (char *)program;
        for (; args[argc - 1] && argc <= MAX_ARGS; argc++)
            argv[argc] = (char *)args[argc - 1];
        argv[argc] = NULL;
        execvp(program, argv);
        _exit(127);
    }
    if (stdin_file) {
        close(pipe_fds[0]);
        FILE *f = fopen(stdin_file, "rb");
        assert_non_null(f);
        char block[8192];
        size_t n;
        while ((n = fread(block, 1, sizeof block, f)) > 0)
            if (write(pipe_fds[1], block, n) != (ssize_t)n)
                break; /* the program stopped reading: that is its right */
        fclose(f);
        close(pipe_fds[1]);
    }
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    run_result r;
    r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    r.out = read_whole(out_path);
    r.err = read_whole(err_path);
    return r;
}

#define EARSHOT(...) run_earshot(NULL, (const char *[]){__VA_ARGS__, NULL})
#define EARSHOT_STDIN(file, ...) run_earshot(file, (const char *[]){__VA_ARGS__, NULL})

static run_result run_earshot(const char *stdin_file, const char *const *args) {
    return run_program(EARSHOT_BINARY, args, stdin_file);
}

static void free_result(run_result *r) {
    free(r->out);
    free(r->err);
}

static void expect_failure(run_result r, int status, const char *needle) {
    if (r.status != status || !strstr(r.err, needle))
        fail_msg("expected status %d and \"%s\" on stderr; got status %d, stderr: %s", status,
                 needle, r.status, r.err);
    assert_int_equal(strncmp(r.err, "earshot: ", 9), 0);
    free_result(&r);
}

static void expect_success(const run_result *r) {
    if (r->status != 0) fail_msg("status %d, stderr: %s", r->status, r->err);
    /* Nothing on stderr when all went well (no progress bar without a TTY). */
    assert_string_equal(r->err, "");
}

/* sox -R -D demo.wav NAME EFFECTS...: repeatable, undithered. */
static void make_variant(const char *name, const char *const *sox_effects, char *path,
                         size_t size) {
    temp_path(path, size, name);
    const char *args[MAX_ARGS] = {"-R", "-D", DEMO_CLIP};
    int n = 3;
    args[n++] = path;
    for (; *sox_effects; sox_effects++)
        args[n++] = *sox_effects;
    args[n] = NULL;
    run_result r = run_program("sox", args, NULL);
    if (r.status != 0) fail_msg("sox failed (%d): %s", r.status, r.err);
    free_result(&r);
}

/* ---- bad inputs ------------------------------------------------------------------ */

static void write_bytes(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, size, f), size);
    fclose(f);
}

static void put_le(unsigned char *at, uint32_t value, int bytes) {
    for (int i = 0; i < bytes; i++)
        at[i] = (unsigned char)(value >> (8 * i));
}

/* A canonical 16-bit PCM WAV header with the given fields, and 1600 bytes of silence. */
static void write_wav(const char *path, uint32_t channels, uint32_t rate_hz) {
    unsigned char wav[44 + 1600] = {0};
    memcpy(wav, "RIFF", 4);
    put_le(wav + 4, sizeof wav - 8, 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put_le(wav + 16, 16, 4);
    put_le(wav + 20, 1, 2); /* PCM */
    put_le(wav + 22, channels, 2);
    put_le(wav + 24, rate_hz, 4);
    put_le(wav + 28, rate_hz * channels * 2, 4);
    put_le(wav + 32, channels * 2, 2);
    put_le(wav + 34, 16, 2);
    memcpy(wav + 36, "data", 4);
    put_le(wav + 40, 1600, 4);
    write_bytes(path, wav, sizeof wav);
}

/* Two seconds of 32-bit float noise at 16 kHz, with `specials` put at fixed places. */
static void write_float_wav(const char *path, const float specials[4]) {
    enum { FRAMES = 32000 };
    static unsigned char wav[44 + FRAMES * 4];
    memcpy(wav, "RIFF", 4);
    put_le(wav + 4, sizeof wav - 8, 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put_le(wav + 16, 16, 4);
    put_le(wav + 20, 3, 2); /* IEEE float */
    put_le(wav + 22, 1, 2);
    put_le(wav + 24, 16000, 4);
    put_le(wav + 28, 16000 * 4, 4);
    put_le(wav + 32, 4, 2);
    put_le(wav + 34, 32, 2);
    memcpy(wav + 36, "data", 4);
    put_le(wav + 40, FRAMES * 4, 4);
    static const int special_at[4] = {8000, 9000, 9500, 10000};
    uint32_t noise = 1;
    for (int i = 0; i < FRAMES; i++) {
        noise = noise * 1664525u + 1013904223u;
        float sample = ((float)(noise >> 8) / 16777216.0f - 0.5f) * 0.6f;
        for (int k = 0; k < 4; k++)
            if (i == special_at[k]) sample = specials[k];
        uint32_t bits;
        memcpy(&bits, &sample, 4);
        put_le(wav + 44 + 4 * i, bits, 4);
    }
    write_bytes(path, wav, sizeof wav);
}

static void expect_bad_input(const char *name, const char *reason) {
    char path[128];
    temp_path(path, sizeof path, name);
    char needle[256];
    snprintf(needle, sizeof needle, "earshot: %s: %s", path, reason);
    expect_failure(EARSHOT("file", path), 1, needle);
}

static void test_bad_inputs(void **state) {
    (void)state;
    char path[128];
    expect_bad_input("missing.wav", "No such file");

    temp_path(path, sizeof path, "empty.wav");
    write_bytes(path, "", 0);
    expect_bad_input("empty.wav", "empty file");

    temp_path(path, sizeof path, "text.wav");
    const char text[] = "This is not audio, whatever its name says.\n";
    write_bytes(path, text, sizeof text - 1);
    expect_bad_input("text.wav", "not an audio file");

    char *demo = read_whole(DEMO_CLIP);
    temp_path(path, sizeof path, "truncated.wav");
    write_bytes(path, demo, 30); /* ends inside the fmt chunk */
    free(demo);
    expect_bad_input("truncated.wav", "not an audio file");

    temp_path(path, sizeof path, "riff-garbage.wav");
    unsigned char garbage[256];
    memcpy(garbage, "RIFF\xff\xff\xff\x7fWAVEfmt ", 16);
    for (size_t i = 16; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)(i * 37 + 11);
    write_bytes(path, garbage, sizeof garbage);
    expect_bad_input("riff-garbage.wav", "");

    temp_path(path, sizeof path, "zero-channels.wav");
    write_wav(path, 0, 16000);
    expect_bad_input("zero-channels.wav", "");

    temp_path(path, sizeof path, "65-channels.wav");
    write_wav(path, 65, 16000);
    expect_bad_input("65-channels.wav", "");

    temp_path(path, sizeof path, "rate-1hz.wav");
    write_wav(path, 1, 1);
    expect_bad_input("rate-1hz.wav", "");

    temp_path(path, sizeof path, "rate-4khz.wav");
    write_wav(path, 1, 4000);
    expect_bad_input("rate-4khz.wav", "sample rate 4000 Hz is outside");

    temp_path(path, sizeof path, "rate-absurd.wav");
    write_wav(path, 2, 2000000000u);
    expect_bad_input("rate-absurd.wav", "");

    /* A directory is not a file. */
    expect_failure(EARSHOT("file", temp_dir), 1, "is a directory");

    /* Garbage on stdin is reported as stdin. */
    temp_path(path, sizeof path, "text.wav");
    expect_failure(EARSHOT_STDIN(path, "file", "-"), 1, "earshot: stdin: not an audio file");
}

/* A bad input among good ones: the others are still analysed, status 1. */
static void test_bad_input_among_good(void **state) {
    (void)state;
    char missing[128];
    temp_path(missing, sizeof missing, "missing.wav");
    run_result r = EARSHOT("file", "--format", "rttm", DEMO_CLIP, missing, DEMO_CLIP);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "missing.wav: No such file"));
    run_result one = EARSHOT("file", "--format", "rttm", DEMO_CLIP);
    expect_success(&one);
    size_t one_len = strlen(one.out);
    assert_int_equal(strlen(r.out), 2 * one_len);
    assert_memory_equal(r.out, one.out, one_len);
    assert_memory_equal(r.out + one_len, one.out, one_len);
    free_result(&one);
    free_result(&r);
}

/* ---- usage errors ----------------------------------------------------------------- */

static void test_bad_flags(void **state) {
    (void)state;
    expect_failure(EARSHOT("file", "--vad-threshold", "1.5", DEMO_CLIP), 2, "--vad-threshold");
    expect_failure(EARSHOT("file", "--vad-threshold", "abc", DEMO_CLIP), 2, "--vad-threshold");
    expect_failure(EARSHOT("file", "--vad-offset-threshold", "-0.1", DEMO_CLIP), 2,
                   "--vad-offset-threshold");
    expect_failure(EARSHOT("file", "--min-speech-ms", "-5", DEMO_CLIP), 2, "--min-speech-ms");
    expect_failure(EARSHOT("file", "--min-silence-ms", "12x", DEMO_CLIP), 2, "--min-silence-ms");
    expect_failure(EARSHOT("file", "--max-speech-ms", "", DEMO_CLIP), 2, "--max-speech-ms");
    expect_failure(EARSHOT("file", "--speech-pad-ms", "99999999999", DEMO_CLIP), 2,
                   "--speech-pad-ms");
    expect_failure(EARSHOT("file", "--kw-threshold", "nan", DEMO_CLIP), 2, "--kw-threshold");
    expect_failure(EARSHOT("file", "--kw-smooth-ms", "1e3", DEMO_CLIP), 2, "--kw-smooth-ms");
    expect_failure(EARSHOT("file", "--refractory-ms", "-1", DEMO_CLIP), 2, "--refractory-ms");
    expect_failure(EARSHOT("file", "--kw-threshold-for", "stop", DEMO_CLIP), 2,
                   "--kw-threshold-for");
    expect_failure(EARSHOT("file", "--kw-threshold-for", "=0.5", DEMO_CLIP), 2,
                   "--kw-threshold-for");
    expect_failure(EARSHOT("file", "--kw-threshold-for", "stop=2", DEMO_CLIP), 2,
                   "--kw-threshold-for");
    expect_failure(EARSHOT("file", "--kw-threshold-for", "notakeyword=0.5", DEMO_CLIP), 2,
                   "'notakeyword' is not a keyword");
    expect_failure(EARSHOT("file", "--format", "xml", DEMO_CLIP), 2, "--format");
    expect_failure(EARSHOT("file", "-j", "0", DEMO_CLIP), 2, "--jobs");
    expect_failure(EARSHOT("file", "--bogus", DEMO_CLIP), 2, "--bogus");
    expect_failure(EARSHOT("file", DEMO_CLIP, "--format"), 2, "--format");
    expect_failure(EARSHOT("file"), 2, "no input");
    expect_failure(EARSHOT("file", "-", "-"), 2, "stdin");
    expect_failure(EARSHOT("nonesuch"), 2, "unknown command 'nonesuch'");
    expect_failure(EARSHOT("help", "nonesuch"), 2, "nonesuch");
    expect_failure(EARSHOT("bench", "--seconds", "0"), 2, "--seconds");
    expect_failure(EARSHOT("bench", "--format", "csv"), 2, "--format");
    /* Onset below offset is caught as a whole, after parsing. */
    expect_failure(
        EARSHOT("file", "--vad-threshold", "0.2", "--vad-offset-threshold", "0.6", DEMO_CLIP), 2,
        "earshot: --vad-offset-threshold: 0.6 is above --vad-threshold 0.2");
    expect_failure(EARSHOT("file", "--vad-threshold", "0", DEMO_CLIP), 2, "--vad-threshold");
    expect_failure(EARSHOT("file", "--kw-threshold", "0", DEMO_CLIP), 2, "--kw-threshold");
    expect_failure(EARSHOT("file", "--kw-threshold-for", "stop=0", DEMO_CLIP), 2,
                   "--kw-threshold-for");
    expect_failure(EARSHOT("file", "--min-speech-ms", "500", "--max-speech-ms", "400", DEMO_CLIP),
                   2, "--max-speech-ms");
    /* Not a usage error but a runtime one: the model file does not exist. */
    char missing[128];
    temp_path(missing, sizeof missing, "missing.model");
    expect_failure(EARSHOT("file", "--vad-model", missing, DEMO_CLIP), 1, missing);
    char path[128];
    temp_path(path, sizeof path, "text.wav");
    expect_failure(EARSHOT("file", "--kws-model", path, DEMO_CLIP), 1, path);
    /* An output that cannot be created. */
    expect_failure(EARSHOT("file", "-o", "/nonexistent-dir/out.jsonl", DEMO_CLIP), 1,
                   "/nonexistent-dir/out.jsonl");
    /* A full disk is a failure, not a silent loss. */
    if (access("/dev/full", W_OK) == 0)
        expect_failure(EARSHOT("file", "-o", "/dev/full", DEMO_CLIP), 1,
                       "earshot: /dev/full: write failed");

    /* No command at all: the usage, on stderr, as a usage error. */
    run_result r = run_earshot(NULL, (const char *[]){NULL});
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "Usage: earshot"));
    free_result(&r);
}

static void test_help_and_version(void **state) {
    (void)state;
    run_result r = EARSHOT("--version");
    expect_success(&r);
    assert_int_equal(strncmp(r.out, "earshot ", 8), 0);
    assert_true(isdigit((unsigned char)r.out[8]));
    free_result(&r);

    r = EARSHOT("help");
    expect_success(&r);
    assert_non_null(strstr(r.out, "file"));
    assert_non_null(strstr(r.out, "bench"));
    free_result(&r);

    const char *commands[] = {"file", "bench"};
    for (int i = 0; i < 2; i++) {
        run_result via_help = EARSHOT("help", commands[i]);
        run_result via_flag = EARSHOT(commands[i], "--help");
        expect_success(&via_help);
        expect_success(&via_flag);
        char usage[64];
        snprintf(usage, sizeof usage, "Usage: earshot %s", commands[i]);
        assert_non_null(strstr(via_help.out, usage));
        assert_string_equal(via_help.out, via_flag.out);
        free_result(&via_help);
        free_result(&via_flag);
    }
    r = EARSHOT("file", "--help");
    assert_non_null(strstr(r.out, "--kw-threshold-for"));
    assert_non_null(strstr(r.out, "Examples"));
    free_result(&r);
}

/* ---- output formats ------------------------------------------------------------------ */

/* A small strict JSON reader: enough to prove each line is one valid object. */
typedef struct json_cursor {
    const char *at;
} json_cursor;

static int json_value(json_cursor *c);

static void json_space(json_cursor *c) {
    while (*c->at == ' ' || *c->at == '\t')
        c->at++;
}

static int json_string(json_cursor *c) {
    if (*c->at != '"') return 0;
    for (c->at++; *c->at != '"'; c->at++) {
        if ((unsigned char)*c->at < 0x20) return 0;
        if (*c->at == '\\') {
            c->at++;
            if (*c->at == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)c->at[i])) return 0;
                c->at += 4;
            } else if (!strchr("\"\\/bfnrt", *c->at) || !*c->at) {
                return 0;
            }
        }
    }
    c->at++;
    return 1;
}

static int json_number(json_cursor *c) {
    const char *start = c->at;
    if (*c->at == '-') c->at++;
    if (!isdigit((unsigned char)*c->at)) return 0;
    if (*c->at == '0' && isdigit((unsigned char)c->at[1])) return 0; /* no leading zeros */
    while (isdigit((unsigned char)*c->at))
        c->at++;
    if (*c->at == '.') {
        c->at++;
        if (!isdigit((unsigned char)*c->at)) return 0;
        while (isdigit((unsigned char)*c->at))
            c->at++;
    }
    if (*c->at == 'e' || *c->at == 'E') {
        c->at++;
        if (*c->at == '+' || *c->at == '-') c->at++;
        if (!isdigit((unsigned char)*c->at)) return 0;
        while (isdigit((unsigned char)*c->at))
            c->at++;
    }
    return c->at > start;
}

static int json_object(json_cursor *c) {
    c->at++;
    json_space(c);
    if (*c->at == '}') {
        c->at++;
        return 1;
    }
    for (;;) {
        json_space(c);
        if (!json_string(c)) return 0;
        json_space(c);
        if (*c->at++ != ':') return 0;
        if (!json_value(c)) return 0;
        json_space(c);
        if (*c->at == '}') {
            c->at++;
            return 1;
        }
        if (*c->at++ != ',') return 0;
    }
}

static int json_value(json_cursor *c) {
    json_space(c);
    switch (*c->at) {
    case '{':
        return json_object(c);
    case '"':
        return json_string(c);
    case 't':
        return strncmp(c->at, "true", 4) == 0 ? (c->at += 4, 1) : 0;
    case 'f':
        return strncmp(c->at, "false", 5) == 0 ? (c->at += 5, 1) : 0;
    case 'n':
        return strncmp(c->at, "null", 4) == 0 ? (c->at += 4, 1) : 0;
    default:
        return json_number(c);
    }
}

/* The number after "key": in a JSON line (fields we write are flat). */
static int json_field_number(const char *line, const char *key, double *value) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(line, pattern);
    if (!at) return 0;
    char *end;
    *value = strtod(at + strlen(pattern), &end);
    return end != at + strlen(pattern);
}

typedef struct segment {
    double start_s, end_s;
} segment;

/* Checks every line of a jsonl output; returns the speech segments found. */
/* Copies the line at *line into buf (size 1024), checks that it is terminated
 * and holds exactly one JSON object, and moves *line past it. */
static void next_json_line(const char **line, char *buf) {
    const char *newline = strchr(*line, '\n');
    assert_non_null(newline); /* every line ends */
    size_t len = (size_t)(newline - *line);
    assert_true(len < 1024);
    memcpy(buf, *line, len);
    buf[len] = '\0';
    json_cursor c = {buf};
    if (*c.at != '{' || !json_object(&c) || *c.at != '\0') fail_msg("not one JSON object: %s", buf);
    *line = newline + 1;
}

static int check_jsonl(const char *text, const char *source, segment *segments, int capacity) {
    int count = 0;
    char expected_source[256];
    snprintf(expected_source, sizeof expected_source, "\"source\":\"%s\"", source);
    for (const char *line = text; *line;) {
        char buf[1024];
        next_json_line(&line, buf);
        assert_non_null(strstr(buf, expected_source));
        double start = 0, end = 0, score = 0, time = 0;
        assert_true(json_field_number(buf, "start", &start));
        assert_true(json_field_number(buf, "end", &end));
        assert_true(json_field_number(buf, "score", &score));
        assert_true(start <= end);
        assert_true(score >= 0 && score <= 1);
        assert_null(strstr(buf, "wallclock")); /* offline events have no wall clock */
        if (strncmp(buf, "{\"type\":\"keyword\"", 17) == 0) {
            assert_non_null(strstr(buf, "\"keyword\":\""));
            assert_true(json_field_number(buf, "time", &time));
        } else {
            assert_int_equal(strncmp(buf, "{\"type\":\"speech\"", 16), 0);
            if (count < capacity) segments[count] = (segment){start, end};
            count++;
        }
    }
    return count;
}

static int split(char *line, const char *separators, char **fields, int capacity) {
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(line, separators, &save); tok && n < capacity;
         tok = strtok_r(NULL, separators, &save))
        fields[n++] = tok;
    return n;
}

static double number(const char *text) {
    char *end;
    double value = strtod(text, &end);
    if (end == text || *end != '\0') fail_msg("'%s' is not a number", text);
    return value;
}

static void check_rttm(char *text, int expected_segments) {
    int lines = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), lines++) {
        char *f[12];
        assert_int_equal(split(line, " ", f, 12), 10);
        assert_string_equal(f[0], "SPEAKER");
        assert_string_equal(f[1], "demo");
        assert_string_equal(f[2], "1");
        assert_true(number(f[3]) >= 0);
        assert_true(number(f[4]) > 0);
        assert_string_equal(f[5], "<NA>");
        assert_string_equal(f[6], "<NA>");
        assert_string_equal(f[7], "speech");
        assert_string_equal(f[8], "<NA>");
        assert_string_equal(f[9], "<NA>");
    }
    assert_int_equal(lines, expected_segments);
}

static void check_audacity(char *text, int expected_labels) {
    int lines = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), lines++) {
        char *f[4];
        assert_int_equal(split(line, "\t", f, 4), 3);
        assert_true(number(f[0]) <= number(f[1]));
        assert_true(strlen(f[2]) > 0);
    }
    assert_int_equal(lines, expected_labels);
}

/* Frames CSV: returns the rows; speech posteriors go to `speech` if given. */
static int check_frames(const char *csv, double *speech, int capacity) {
    char *text = strdup(csv);
    char *save = NULL;
    char *header = strtok_r(text, "\n", &save);
    assert_non_null(header);
    assert_int_equal(strncmp(header, "time_s,speech", 13), 0);
    int columns = 1;
    for (const char *c = header; *c; c++)
        columns += *c == ',';
    int rows = 0;
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[300];
        assert_int_equal(split(line, ",", f, 300), columns);
        /* time_s is the frame's start: one row per 10 ms from 0. */
        assert_true(fabs(number(f[0]) - rows * 0.01) < 1e-6);
        for (int i = 1; i < columns; i++) {
            double p = number(f[i]);
            assert_true(p >= 0 && p <= 1);
        }
        if (speech && rows < capacity) speech[rows] = number(f[1]);
        rows++;
    }
    free(text);
    return rows;
}

static void test_formats(void **state) {
    (void)state;
    run_result jsonl = EARSHOT("file", DEMO_CLIP);
    expect_success(&jsonl);
    segment segments[64];
    int speech_count = check_jsonl(jsonl.out, DEMO_CLIP, segments, 64);
    int event_count = 0;
    for (const char *c = jsonl.out; *c; c++)
        event_count += *c == '\n';

    run_result rttm = EARSHOT("file", "--format", "rttm", DEMO_CLIP);
    expect_success(&rttm);
    check_rttm(rttm.out, speech_count);

    run_result audacity = EARSHOT("file", "--format", "audacity", DEMO_CLIP);
    expect_success(&audacity);
    check_audacity(audacity.out, event_count);

    run_result frames = EARSHOT("file", "--format", "frames", DEMO_CLIP);
    expect_success(&frames);
    /* 8.72 s of audio: a row per 10 ms once the first 25 ms window is full. */
    assert_in_range(check_frames(frames.out, NULL, 0), 865, 872);

    /* -o writes the same bytes to a file and nothing to stdout. */
    char out_path[128];
    temp_path(out_path, sizeof out_path, "out.csv");
    run_result to_file = EARSHOT("file", "--format", "frames", "-o", out_path, DEMO_CLIP);
    expect_success(&to_file);
    assert_string_equal(to_file.out, "");
    char *written = read_whole(out_path);
    assert_string_equal(written, frames.out);
    free(written);
    /* -o - is stdout (a file named "-" was written before). */
    run_result to_dash = EARSHOT("file", "--format", "frames", "-o", "-", DEMO_CLIP);
    expect_success(&to_dash);
    assert_string_equal(to_dash.out, frames.out);
    free_result(&to_dash);

    free_result(&jsonl);
    free_result(&rttm);
    free_result(&audacity);
    free_result(&frames);
    free_result(&to_file);
}

/* Drops the lines starting with `prefix` (a new string). */
static char *without_lines(const char *text, const char *prefix) {
    char *out = malloc(strlen(text) + 1);
    assert_non_null(out);
    size_t len = 0;
    for (const char *line = text; *line;) {
        const char *next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        if (strncmp(line, prefix, strlen(prefix)) != 0) {
            memcpy(out + len, line, (size_t)(next - line));
            len += (size_t)(next - line);
        }
        line = next;
    }
    out[len] = '\0';
    return out;
}

static const char speech_start_prefix[] = "{\"type\":\"speech_start\",";

/* Each speech line of `out` follows its own speech_start line (same start,
 * sent min_speech_ms after it); returns the number of pairs. */
static int check_speech_start_pairs(const char *out) {
    const char *start_prefix = speech_start_prefix;
    int pairs = 0, pending = 0;
    double pending_start = -1, pending_time = -1;
    for (const char *line = out; *line;) {
        char buf[1024];
        next_json_line(&line, buf);
        double start = 0, end = 0, time = 0;
        if (strncmp(buf, start_prefix, strlen(start_prefix)) == 0) {
            if (pending) fail_msg("two speech_start lines in a row: %s", buf);
            assert_true(json_field_number(buf, "start", &start));
            assert_true(json_field_number(buf, "time", &time));
            assert_false(json_field_number(buf, "end", &end));
            assert_null(strstr(buf, "score"));
            assert_null(strstr(buf, "wallclock"));
            /* Confirmed once the default minimum speech has passed (demo.wav's
             * segments rise without dips). */
            es_vad_config defaults;
            es_vad_config_default(&defaults);
            assert_float_equal(time - start, defaults.min_speech_ms / 1000.0, 1e-6);
            pending = 1;
            pending_start = start;
            pending_time = time;
        } else if (strncmp(buf, "{\"type\":\"speech\",", 17) == 0) {
            if (!pending) fail_msg("a speech line without its speech_start: %s", buf);
            assert_true(json_field_number(buf, "start", &start));
            assert_true(json_field_number(buf, "end", &end));
            assert_float_equal(start, pending_start, 1e-9);
            assert_true(pending_time <= end);
            pending = 0;
            pairs++;
        }
    }
    assert_false(pending);
    return pairs;
}

/* The other formats ignore --speech-start; both live and offline commands
 * document it. */
static void check_speech_start_elsewhere(void) {
    const char *formats[] = {"rttm", "audacity", "frames"};
    for (int i = 0; i < 3; i++) {
        run_result a = EARSHOT("file", "--format", formats[i], DEMO_CLIP);
        run_result b = EARSHOT("file", "--format", formats[i], "--speech-start", DEMO_CLIP);
        expect_success(&a);
        expect_success(&b);
        assert_string_equal(a.out, b.out);
        free_result(&a);
        free_result(&b);
    }
    const char *commands[] = {"file", "mic"};
    for (int i = 0; i < 2; i++) {
        run_result help = EARSHOT(commands[i], "--help");
        expect_success(&help);
        assert_non_null(strstr(help.out, "--speech-start"));
        free_result(&help);
    }
}

/* --speech-start: a speech_start line before each speech line, with the same
 * start, sent once the segment was 70 ms long (the default min speech);
 * everything else byte for byte as without the flag, which adds nothing. */
static void test_speech_start_flag(void **state) {
    (void)state;
    const char *start_prefix = speech_start_prefix;
    run_result plain = EARSHOT("file", DEMO_CLIP);
    expect_success(&plain);
    assert_null(strstr(plain.out, "speech_start"));
    run_result with = EARSHOT("file", "--speech-start", DEMO_CLIP);
    expect_success(&with);

    char *stripped = without_lines(with.out, start_prefix);
    assert_string_equal(stripped, plain.out);
    free(stripped);

    int pairs = check_speech_start_pairs(with.out);
    segment segments[64];
    assert_int_equal(pairs, check_jsonl(plain.out, DEMO_CLIP, segments, 64));
    assert_true(pairs > 0);

    /* With padding the speech_start carries the padded start too. */
    run_result padded = EARSHOT("file", "--speech-start", "--speech-pad-ms", "200", DEMO_CLIP);
    expect_success(&padded);
    run_result padded_plain = EARSHOT("file", "--speech-pad-ms", "200", DEMO_CLIP);
    expect_success(&padded_plain);
    stripped = without_lines(padded.out, start_prefix);
    assert_string_equal(stripped, padded_plain.out);
    free(stripped);
    double first_start = -1, first_speech_start = -2;
    assert_true(json_field_number(padded.out, "start", &first_start));
    const char *first_speech = strstr(padded.out, "{\"type\":\"speech\",");
    assert_non_null(first_speech);
    assert_true(json_field_number(first_speech, "start", &first_speech_start));
    assert_float_equal(first_start, first_speech_start, 1e-9);

    check_speech_start_elsewhere();

    free_result(&plain);
    free_result(&with);
    free_result(&padded);
    free_result(&padded_plain);
}

/* NaN and infinite samples in a float file are silence, not poison: the
 * output equals that of the same file with zeros there (and the huge value
 * clipped as the pipeline clips it). */
static void test_non_finite_samples(void **state) {
    (void)state;
    char poisoned[128], clean[128];
    temp_path(poisoned, sizeof poisoned, "non-finite.wav");
    temp_path(clean, sizeof clean, "finite.wav");
    write_float_wav(poisoned, (const float[4]){NAN, INFINITY, -INFINITY, 1e30f});
    write_float_wav(clean, (const float[4]){0.0f, 0.0f, 0.0f, 1000.0f});
    run_result a = EARSHOT("file", "--format", "frames", poisoned);
    run_result b = EARSHOT("file", "--format", "frames", clean);
    expect_success(&a);
    expect_success(&b);
    assert_in_range(check_frames(a.out, NULL, 0), 190, 200);
    assert_string_equal(a.out, b.out);
    free_result(&a);
    free_result(&b);
}

/* ---- stdin, parallel files ------------------------------------------------------------ */

/* Replaces every occurrence of `from` by `to`. */
static char *replace_all(const char *text, const char *from, const char *to) {
    size_t from_len = strlen(from), to_len = strlen(to);
    char *out = malloc(strlen(text) * (to_len > from_len ? to_len : 1) + 1);
    char *w = out;
    for (const char *r = text; *r;) {
        if (strncmp(r, from, from_len) == 0) {
            memcpy(w, to, to_len);
            w += to_len;
            r += from_len;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return out;
}

static void test_stdin_matches_path(void **state) {
    (void)state;
    const char *formats[] = {"jsonl", "frames", "audacity"};
    for (int i = 0; i < 3; i++) {
        run_result by_path = EARSHOT("file", "--format", formats[i], DEMO_CLIP);
        run_result by_pipe = EARSHOT_STDIN(DEMO_CLIP, "file", "--format", formats[i], "-");
        expect_success(&by_path);
        expect_success(&by_pipe);
        assert_true(strlen(by_path.out) > 0);
        char *expected =
            replace_all(by_path.out, "\"source\":\"" DEMO_CLIP "\"", "\"source\":\"stdin\"");
        assert_string_equal(by_pipe.out, expected);
        free(expected);
        free_result(&by_path);
        free_result(&by_pipe);
    }
}

/* A FIFO named on the command line streams like stdin. */
static void test_fifo_path(void **state) {
    (void)state;
    char fifo[128];
    temp_path(fifo, sizeof fifo, "stream.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t writer = fork();
    assert_true(writer >= 0);
    if (writer == 0) {
        char *bytes = read_whole(DEMO_CLIP);
        FILE *f = fopen(DEMO_CLIP, "rb");
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        int fd = open(fifo, O_WRONLY);
        ssize_t done = fd >= 0 ? write(fd, bytes, (size_t)size) : -1;
        _exit(done == size ? 0 : 1);
    }
    run_result by_fifo = EARSHOT("file", "--format", "frames", fifo);
    int wstatus;
    assert_int_equal(waitpid(writer, &wstatus, 0), writer);
    run_result by_path = EARSHOT("file", "--format", "frames", DEMO_CLIP);
    expect_success(&by_fifo);
    expect_success(&by_path);
    assert_string_equal(by_fifo.out, by_path.out);
    free_result(&by_fifo);
    free_result(&by_path);
}

static void test_parallel_keeps_input_order(void **state) {
    (void)state;
    char stereo[128];
    make_variant("order-48k.wav", (const char *[]){"rate", "48000", "channels", "2", NULL}, stereo,
                 sizeof stereo);
    run_result demo = EARSHOT("file", DEMO_CLIP);
    run_result other = EARSHOT("file", stereo);
    run_result parallel = EARSHOT("file", "-j", "3", DEMO_CLIP, stereo, DEMO_CLIP, stereo);
    expect_success(&demo);
    expect_success(&other);
    expect_success(&parallel);
    assert_true(strlen(demo.out) > 0 && strlen(other.out) > 0);
    /* Each file's output whole and in input order, whatever finished first. */
    size_t expected_size = 2 * (strlen(demo.out) + strlen(other.out)) + 1;
    char *expected = malloc(expected_size);
    snprintf(expected, expected_size, "%s%s%s%s", demo.out, other.out, demo.out, other.out);
    assert_string_equal(parallel.out, expected);
    free(expected);
    free_result(&demo);
    free_result(&other);
    free_result(&parallel);
}

/* ---- other rates and channel counts ------------------------------------------------ */

/* Seconds of [from, to) that the segments cover. */
static double covered_s(const segment *segments, int count, double from, double to) {
    double total = 0;
    for (int i = 0; i < count; i++) {
        double a = segments[i].start_s > from ? segments[i].start_s : from;
        double b = segments[i].end_s < to ? segments[i].end_s : to;
        if (b > a) total += b - a;
    }
    return total;
}

/* Whether the built-in VAD finds the read sentence of demo.wav (0.85-3.55 s)
 * and not the silences between the keywords (tests/clips/demo.truth.tsv). A
 * random placeholder model does not, and then only resampling that keeps the
 * whole band (44.1/48 kHz) can be expected to agree with 16 kHz. The first
 * half second is left out: the front end's running normalisation has no
 * history there yet. */
/* Silences of demo.wav between its keywords, well inside (demo.truth.tsv). */
static const double silent_gaps[3][2] = {{3.75, 4.45}, {5.2, 5.8}, {6.65, 7.2}};

static int vad_is_trained(const segment *segments, int count) {
    if (covered_s(segments, count, 0.95, 3.45) < 0.8 * 2.5) return 0;
    for (int i = 0; i < 3; i++)
        if (covered_s(segments, count, silent_gaps[i][0], silent_gaps[i][1]) > 0.1) return 0;
    return 1;
}

typedef struct rate_reference {
    double speech[2000]; /* per-frame speech posterior at 16 kHz */
    int rows;
    segment segments[64];
    int segment_count;
    int trained;
} rate_reference;

/* 8 kHz: the same speech, not always the same segments. Without its upper
 * band the posterior dips deeper at a pause, and one near the detector's
 * minimum silence can split a segment (demo.wav's read sentence at 1.6 s:
 * 160 ms below threshold at 8 kHz, 130 ms at 16 kHz). Each 16 kHz segment
 * must be 90 % covered, and no speech found outside them (widened by the
 * tolerance) beyond 0.1 s in all. */
static void expect_same_speech(const char *name, const segment *segments, int count,
                               const rate_reference *ref) {
    double inside = 0;
    for (int i = 0; i < ref->segment_count; i++) {
        const segment *r = &ref->segments[i];
        const double found = covered_s(segments, count, r->start_s, r->end_s);
        if (found < 0.9 * (r->end_s - r->start_s))
            fail_msg("%s: %.2f s of the 16 kHz segment %.3f-%.3f found", name, found, r->start_s,
                     r->end_s);
        inside += covered_s(segments, count, r->start_s - SEGMENT_TOLERANCE_S,
                            r->end_s + SEGMENT_TOLERANCE_S);
    }
    const double outside = covered_s(segments, count, 0, 1e9) - inside;
    if (outside > 0.1) fail_msg("%s: %.2f s of speech where 16 kHz has none", name, outside);
}

/* How a rate's segments must match 16 kHz's: exactly (same count, boundaries
 * within the tolerance), or by the speech they cover (expect_same_speech). */
enum { SAME_SEGMENTS, SAME_SPEECH };

static void compare_rate(const char *name, const char *const *effects, double max_mean_diff,
                         int segments_match, const rate_reference *ref) {
    char path[128];
    make_variant(name, effects, path, sizeof path);

    run_result frames = EARSHOT("file", "--format", "frames", path);
    expect_success(&frames);
    double speech[2000];
    int rows = check_frames(frames.out, speech, 2000);
    assert_in_range(rows, ref->rows - 3, ref->rows + 3);
    int common = rows < ref->rows ? rows : ref->rows;
    double diff = 0;
    for (int i = 0; i < common; i++)
        diff += fabs(speech[i] - ref->speech[i]);
    diff /= common;
    if (max_mean_diff > 0 && diff > max_mean_diff)
        fail_msg("%s: mean speech posterior differs by %.4f from 16 kHz (allowed %.4f)", name, diff,
                 max_mean_diff);
    free_result(&frames);

    run_result jsonl = EARSHOT("file", path);
    expect_success(&jsonl);
    segment segments[64];
    int count = check_jsonl(jsonl.out, path, segments, 64);
    free_result(&jsonl);
    if (max_mean_diff <= 0) return; /* shape only */
    if (segments_match == SAME_SPEECH) {
        expect_same_speech(name, segments, count, ref);
        return;
    }
    if (count != ref->segment_count)
        fail_msg("%s: %d speech segments, 16 kHz has %d", name, count, ref->segment_count);
    for (int i = 0; i < count && i < 64; i++) {
        if (fabs(segments[i].start_s - ref->segments[i].start_s) > SEGMENT_TOLERANCE_S ||
            fabs(segments[i].end_s - ref->segments[i].end_s) > SEGMENT_TOLERANCE_S)
            fail_msg("%s: segment %d is %.3f-%.3f, at 16 kHz %.3f-%.3f", name, i,
                     segments[i].start_s, segments[i].end_s, ref->segments[i].start_s,
                     ref->segments[i].end_s);
    }
}

static void test_other_rates_agree(void **state) {
    (void)state;
    static rate_reference ref;
    run_result frames = EARSHOT("file", "--format", "frames", DEMO_CLIP);
    expect_success(&frames);
    ref.rows = check_frames(frames.out, ref.speech, 2000);
    free_result(&frames);
    run_result jsonl = EARSHOT("file", DEMO_CLIP);
    expect_success(&jsonl);
    ref.segment_count = check_jsonl(jsonl.out, DEMO_CLIP, ref.segments, 64);
    free_result(&jsonl);
    ref.trained = vad_is_trained(ref.segments, ref.segment_count);
    if (!ref.trained) print_message("built-in VAD looks untrained: 8 kHz checked for shape only\n");

    compare_rate("demo-44k1-stereo.wav", (const char *[]){"rate", "44100", "channels", "2", NULL},
                 MAX_MEAN_SPEECH_DIFF_WIDEBAND, SAME_SEGMENTS, &ref);
    compare_rate("demo-48k-stereo.wav", (const char *[]){"rate", "48000", "channels", "2", NULL},
                 MAX_MEAN_SPEECH_DIFF_WIDEBAND, SAME_SEGMENTS, &ref);
    compare_rate("demo-8k.wav", (const char *[]){"rate", "8000", NULL},
                 ref.trained ? MAX_MEAN_SPEECH_DIFF_8K : 0, SAME_SPEECH, &ref);
    /* FLAC: another container, the same samples. */
    compare_rate("demo.flac", (const char *[]){NULL}, 1e-6, SAME_SEGMENTS, &ref);
}

/* ---- regression: demo.wav against what it contains ------------------------------ */

/* earshot file --format FORMAT [candidate models] demo.wav */
static void clip_args(const char *args[10], const char *format, const char *clip) {
    int n = 0;
    args[n++] = "file";
    args[n++] = "--format";
    args[n++] = format;
    const char *vad = getenv("EARSHOT_TEST_VAD_MODEL"), *kws = getenv("EARSHOT_TEST_KWS_MODEL");
    if (vad) {
        args[n++] = "--vad-model";
        args[n++] = vad;
    }
    if (kws) {
        args[n++] = "--kws-model";
        args[n++] = kws;
    }
    args[n++] = clip;
    args[n] = NULL;
}

static void demo_args(const char *args[10], const char *format) {
    clip_args(args, format, DEMO_CLIP);
}

/* The highest keyword posterior of any frame: a random placeholder stays near
 * 1/outputs everywhere, a trained model is sure somewhere on demo.wav. */
static double max_keyword_posterior(void) {
    const char *args[10];
    demo_args(args, "frames");
    run_result r = run_earshot(NULL, args);
    expect_success(&r);
    double highest = 0;
    char *save = NULL;
    strtok_r(r.out, "\n", &save); /* header */
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[300];
        int columns = split(line, ",", f, 300);
        for (int i = 2; i < columns; i++)
            if (number(f[i]) > highest) highest = number(f[i]);
    }
    free_result(&r);
    return highest;
}

typedef struct truth {
    char kind[16];
    char label[32];
    double start_s, end_s;
} truth;

static int read_truth(const char *path, truth *items, int capacity) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        assert_true(count < capacity);
        truth *t = &items[count++];
        assert_int_equal(
            sscanf(line, "%15s %31s %lf %lf", t->kind, t->label, &t->start_s, &t->end_s), 4);
    }
    fclose(f);
    return count;
}

/* Speech where demo.truth.tsv has it and not elsewhere; keywords where it has
 * them. Needs trained models: with random placeholders it is skipped. */
static void test_demo_regression(void **state) {
    (void)state;
    truth items[16];
    int count = read_truth(DEMO_TRUTH, items, 16);
    /* A candidate model can be tried here before it becomes the built-in one:
     * EARSHOT_TEST_VAD_MODEL=vad.esm EARSHOT_TEST_KWS_MODEL=kws.esm daemon_cli test_demo */
    const char *args[10];
    demo_args(args, "jsonl");
    run_result r = run_earshot(NULL, args);
    expect_success(&r);
    segment segments[64];
    int segment_count = check_jsonl(r.out, DEMO_CLIP, segments, 64);
    if (!vad_is_trained(segments, segment_count)) {
        free_result(&r);
        print_message("built-in models look untrained: demo regression skipped\n");
        skip();
    }
    /* Every spoken part is mostly inside a segment ... */
    double speech_s = 0, found_in_speech_s = 0;
    for (int i = 0; i < count; i++) {
        if (strcmp(items[i].kind, "speech") != 0) continue;
        double length = items[i].end_s - items[i].start_s;
        double covered = covered_s(segments, segment_count, items[i].start_s, items[i].end_s);
        if (covered < 0.7 * length)
            fail_msg("speech '%s' %.2f-%.2f: only %.2f s of %.2f s inside segments", items[i].label,
                     items[i].start_s, items[i].end_s, covered, length);
        speech_s += length;
        /* ... and segments lie on speech, allowing padding and hangover. */
        found_in_speech_s +=
            covered_s(segments, segment_count, items[i].start_s - 0.35, items[i].end_s + 0.35);
    }
    /* From 0.5 s: see vad_is_trained() on the normalisation's first frames. */
    double found_s = covered_s(segments, segment_count, 0.5, 1e9);
    if (found_s - found_in_speech_s > 0.3)
        fail_msg("%.2f s of speech segments outside the speech (+-0.35 s)",
                 found_s - found_in_speech_s);
    assert_true(speech_s > 0);

    /* Keywords: found near where they are said, none in the silences. */
    if (max_keyword_posterior() < 0.5) {
        free_result(&r);
        print_message("keyword model looks untrained: demo keywords not checked\n");
        return;
    }
    int keywords = 0, found = 0;
    for (int i = 0; i < count; i++) {
        if (strcmp(items[i].kind, "keyword") != 0) continue;
        keywords++;
        char needle[64];
        snprintf(needle, sizeof needle, "\"keyword\":\"%s\"", items[i].label);
        for (const char *at = r.out; (at = strstr(at, needle)); at++) {
            double time = 0;
            assert_true(json_field_number(at, "time", &time));
            if (time >= items[i].start_s && time <= items[i].end_s + 0.6) {
                found++;
                break;
            }
        }
    }
    for (const char *at = r.out; (at = strstr(at, "\"type\":\"keyword\"")); at++) {
        double time = 0;
        assert_true(json_field_number(at, "time", &time));
        for (int g = 0; g < 3; g++)
            if (time >= silent_gaps[g][0] && time <= silent_gaps[g][1])
                fail_msg("a keyword fired at %.2f s, in silence", time);
    }
    print_message("demo regression: %d of %d keywords found\n", found, keywords);
    if (found < keywords - 1) fail_msg("only %d of %d keywords of demo.wav found", found, keywords);
    free_result(&r);
}

/* The keyword's event of real-keywords.wav's item `t`: fired from its start to
 * 0.6 s after its end (keyword models answer after the word). */
static bool fired_for(const char *out, const truth *t) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"keyword\":\"%s\"", t->label);
    for (const char *at = out; (at = strstr(at, needle)); at++) {
        double time = 0;
        assert_true(json_field_number(at, "time", &time));
        if (time >= t->start_s && time <= t->end_s + 0.6) return true;
    }
    return false;
}

/* Real people (Speech Commands test speakers, one per keyword; no model
 * trained on them): at least REAL_KEYWORDS_FOUND of the 20 keywords found and
 * at most REAL_WRONG_EVENTS keyword events that are none of them. The built-in
 * model of 2026-12-07 found 14 with 1 wrong event ("stop" for "three"): the
 * floors leave two keywords' and one event's room for a retrained model, so a
 * change that loses real voices fails here (models/kws.md). */
enum { REAL_KEYWORDS_FOUND = 12, REAL_WRONG_EVENTS = 2 };
static void test_real_voices_regression(void **state) {
    (void)state;
    if (max_keyword_posterior() < 0.5) skip(); /* untrained placeholder models */
    truth items[24];
    const int count = read_truth(REAL_TRUTH, items, 24);
    assert_int_equal(count, 20);
    const char *args[10];
    clip_args(args, "jsonl", REAL_CLIP);
    run_result r = run_earshot(NULL, args);
    expect_success(&r);
    int found = 0;
    for (int i = 0; i < count; i++) {
        const bool hit = fired_for(r.out, &items[i]);
        found += hit;
        if (!hit) print_message("real voices: '%s' missed\n", items[i].label);
    }
    int events = 0;
    for (const char *at = r.out; (at = strstr(at, "\"type\":\"keyword\"")); at++)
        events++;
    print_message("real voices: %d of %d keywords found, %d keyword events\n", found, count,
                  events);
    if (events - found > REAL_WRONG_EVENTS)
        fail_msg("%d keyword events besides the %d keywords found (at most %d)", events - found,
                 found, REAL_WRONG_EVENTS);
    if (found < REAL_KEYWORDS_FOUND)
        fail_msg("only %d of %d real speakers' keywords found (at least %d)", found, count,
                 REAL_KEYWORDS_FOUND);
    free_result(&r);
}

/* ---- model files ------------------------------------------------------------------ */

/* Writes built-in model `name` to a file, as a user's model file would be. */
static void write_builtin(const char *name, char *path, size_t size) {
    char file[64];
    snprintf(file, sizeof file, "%s.esm", name);
    temp_path(path, size, file);
    size_t bytes = 0;
    const unsigned char *image = es_builtin_model(name, &bytes);
    assert_non_null(image);
    write_bytes(path, image, bytes);
}

static void test_model_flags(void **state) {
    (void)state;
    char vad[128], kws[128];
    write_builtin("vad", vad, sizeof vad);
    write_builtin("kws", kws, sizeof kws);
    /* The built-in models from files: the same results as built in. */
    run_result builtin = EARSHOT("file", "--format", "frames", DEMO_CLIP);
    run_result files =
        EARSHOT("file", "--format", "frames", "--vad-model", vad, "--kws-model", kws, DEMO_CLIP);
    expect_success(&builtin);
    expect_success(&files);
    assert_string_equal(builtin.out, files.out);

    /* Two keyword models: both sets of columns, in order. */
    run_result twice =
        EARSHOT("file", "--format", "frames", "--kws-model", kws, "--kws-model", kws, DEMO_CLIP);
    expect_success(&twice);
    const char *header_end = strchr(builtin.out, '\n');
    size_t keyword_part = (size_t)(header_end - builtin.out) - strlen("time_s,speech");
    assert_int_equal(strchr(twice.out, '\n') - twice.out,
                     header_end - builtin.out + (long)keyword_part);
    free_result(&builtin);
    free_result(&files);
    free_result(&twice);

    /* A model for other features is refused, naming the file and the difference. */
    es_feature_spec spec;
    es_pipeline_feature_spec(NULL, &spec);
    spec.mel_bands = 64;
    es_model *wide = NULL;
    assert_int_equal(es_model_create(&spec, 64, &wide), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(wide, ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0), ES_RNN_OK);
    const char *labels[] = {"speech"};
    assert_int_equal(es_model_set_labels(wide, 1, labels), ES_RNN_OK);
    char wide_path[128];
    temp_path(wide_path, sizeof wide_path, "wide.esm");
    es_error err;
    assert_int_equal(es_model_save(wide, wide_path, &err), ES_RNN_OK);
    es_model_destroy(wide);
    char needle[160];
    snprintf(needle, sizeof needle, "earshot: %s: ", wide_path);
    run_result refused = EARSHOT("file", "--vad-model", wide_path, DEMO_CLIP);
    assert_int_equal(refused.status, 1);
    assert_non_null(strstr(refused.err, needle));
    assert_non_null(strstr(refused.err, "mel"));
    free_result(&refused);

    /* A keyword model where a VAD model belongs: no "speech" output. */
    expect_failure(EARSHOT("file", "--vad-model", kws, DEMO_CLIP), 1, "speech");
}

/* `earshot quantize`: the shipped keyword model, made float again
 * (es_model_dequantise keeps the values its int8 weights stand for) and
 * quantised by the command, is the shipped model again: each row's largest
 * weight sets the same scale, so every int8 weight comes back, and the
 * posteriors on the demo clip are the built-in model's to the last digit. */
static void test_quantize_command(void **state) {
    (void)state;
    char shipped[128], float_path[128], again[128];
    write_builtin("kws", shipped, sizeof shipped);
    temp_path(float_path, sizeof float_path, "kws-float.esm");
    temp_path(again, sizeof again, "kws-again.esm");
    es_model *m = NULL;
    es_error err;
    assert_int_equal(es_model_load_file(shipped, &m, &err), ES_RNN_OK);
    assert_true(es_model_is_quantised(m));
    assert_int_equal(es_model_dequantise(m), ES_RNN_OK);
    assert_false(es_model_is_quantised(m));
    assert_int_equal(es_model_save(m, float_path, &err), ES_RNN_OK);
    es_model_destroy(m);

    run_result quantized = EARSHOT("quantize", float_path, "-o", again);
    expect_success(&quantized);
    free_result(&quantized);
    assert_int_equal(es_model_load_file(again, &m, &err), ES_RNN_OK);
    assert_true(es_model_is_quantised(m));
    es_model_destroy(m);
    run_result builtin = EARSHOT("file", "--format", "frames", DEMO_CLIP);
    run_result requantized = EARSHOT("file", "--format", "frames", "--kws-model", again, DEMO_CLIP);
    expect_success(&builtin);
    expect_success(&requantized);
    assert_string_equal(builtin.out, requantized.out);
    free_result(&builtin);
    free_result(&requantized);

    /* No -o is a usage error; what is not a model is refused, naming the file. */
    expect_failure(EARSHOT("quantize", float_path), 2, "quantize");
    char needle[160];
    snprintf(needle, sizeof needle, "%s", DEMO_CLIP);
    expect_failure(EARSHOT("quantize", DEMO_CLIP, "-o", again), 1, needle);
}

/* ---- progress bar ---------------------------------------------------------------- */

/* On a terminal, a long input gets a progress bar with ETA on stderr, erased
 * at the end; the results on stdout are the same. */
static void test_progress_on_tty(void **state) {
    (void)state;
    char long_clip[128];
    /* 8.7 s x 8 = 70 s: above the one-minute threshold of the bar. */
    make_variant("long.wav", (const char *[]){"repeat", "7", NULL}, long_clip, sizeof long_clip);
    int master, slave;
    assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
    char out_path[128];
    temp_path(out_path, sizeof out_path, "tty-stdout.txt");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, STDOUT_FILENO);
        dup2(slave, STDERR_FILENO);
        close(master);
        execl(EARSHOT_BINARY, EARSHOT_BINARY, "file", "--format", "rttm", long_clip, (char *)NULL);
        _exit(127);
    }
    close(slave);
    char tty[16384];
    size_t got = 0;
    ssize_t n;
    /* read fails with EIO once the child has closed its side. */
    while (got < sizeof tty - 1 && (n = read(master, tty + got, sizeof tty - 1 - got)) > 0)
        got += (size_t)n;
    tty[got] = '\0';
    close(master);
    int wstatus;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    if (!strstr(tty, "ETA") || !strstr(tty, "%") || tty[0] != '\r')
        fail_msg("no progress bar on the terminal: \"%s\"", tty);
    /* It ends by erasing itself: the last thing written is a bare return. */
    assert_true(got > 0 && tty[got - 1] == '\r');

    run_result plain = EARSHOT("file", "--format", "rttm", long_clip);
    expect_success(&plain);
    char *on_tty = read_whole(out_path);
    assert_string_equal(on_tty, plain.out);
    free(on_tty);
    free_result(&plain);
}

/* ---- earshot bench ---------------------------------------------------------------------- */

static void test_bench_tsv(void **state) {
    (void)state;
    run_result r = EARSHOT("bench", "--seconds", "1", "--format", "tsv");
    expect_success(&r);
    static const char *const stages[] = {"frontend_16k_mono",
                                         "frontend_48k_stereo",
                                         "gru_2x128",
                                         "gru_2x128_offline",
                                         "lstm_2x128",
                                         "lstm_2x128_offline",
                                         "vad",
                                         "vad_offline",
                                         "kws",
                                         "kws_offline",
                                         "vad_int8",
                                         "vad_int8_offline",
                                         "kws_int8",
                                         "kws_int8_offline",
                                         "pipeline",
                                         "pipeline_int8"};
    enum { STAGES = sizeof stages / sizeof stages[0] };
    int line = 0;
    for (char *save = NULL, *text = strtok_r(r.out, "\n", &save); text;
         text = strtok_r(NULL, "\n", &save), line++) {
        char *f[5];
        assert_int_equal(split(text, "\t", f, 5), 4);
        assert_true(line < STAGES);
        assert_string_equal(f[0], stages[line]);
        assert_true(number(f[1]) > 0); /* x real time */
        assert_true(number(f[2]) > 0); /* ns per frame */
        assert_true(number(f[3]) > 0); /* peak RSS, kB */
    }
    assert_int_equal(line, STAGES);
    free_result(&r);
}

/* ---- fixtures -------------------------------------------------------------------------- */

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(temp_dir, sizeof temp_dir, "%s/earshot-cli-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(temp_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", temp_dir);
    return system(command) == 0 ? 0 : -1;
}

/* argv[1], if given, selects tests by name pattern (ctest runs the threaded
 * one alone under TSan). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bad_input_among_good),
        cmocka_unit_test(test_non_finite_samples),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_speech_start_flag),
        cmocka_unit_test(test_stdin_matches_path),
        cmocka_unit_test(test_fifo_path),
        cmocka_unit_test(test_parallel_keeps_input_order),
        cmocka_unit_test(test_other_rates_agree),
        cmocka_unit_test(test_model_flags),
        cmocka_unit_test(test_quantize_command),
        cmocka_unit_test(test_progress_on_tty),
        cmocka_unit_test(test_demo_regression),
        cmocka_unit_test(test_real_voices_regression),
        cmocka_unit_test(test_bench_tsv),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
