/*
 * train-keyword's clips (factory.h, steps 2-3): the render jobs and their
 * synthesis, `threads` at a time; data/'s keyword-free speech and noise
 * (read with the one manifest reader); and the training manifest of both.
 */
#define _XOPEN_SOURCE 700
#include <sys/wait.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "keyword_internal.h"
#include "stream.h"
#include "synth.h"

/* ---- rendering -------------------------------------------------------------------------- */

/* The manifest's kind of each clip kind (CLIP_*). */
const char *const clip_kinds[] = {"keyword", "sentence", "sentence", "noise", "speech"};

render_job *job_add(job_list *jobs, const voice *v, int kind, int split, const char *text,
                    es_rng *rng) {
    if (jobs->count == jobs->capacity) {
        const int capacity = jobs->capacity ? 2 * jobs->capacity : 1024;
        render_job *grown = realloc(jobs->items, sizeof(render_job) * (size_t)capacity);
        if (!grown) return NULL;
        jobs->items = grown;
        jobs->capacity = capacity;
    }
    render_job *j = &jobs->items[jobs->count];
    *j = (render_job){.voice = v, .kind = kind, .split = split, .text = strdup(text)};
    if (!j->text) return NULL;
    snprintf(j->path, sizeof j->path, "clips/%05d.wav", jobs->count);
    if (v && v->engine == ENGINE_ESPEAK) {
        j->rate = 120 + es_rng_below(rng, 91);
        j->pitch = 25 + es_rng_below(rng, 51);
    } else if (v) {
        const int f0_hz = strcmp(v->name, "slt") == 0 ? 170 : 105;
        j->rate = 80 + es_rng_below(rng, 46);
        j->pitch = (int)(f0_hz * es_rng_uniform(rng, 0.8, 1.25));
    }
    jobs->count++;
    return j;
}

static void job_command(const render_job *j, const char *work, char *cmd, size_t size) {
    char raw[4096 + 32], out[4096 + 80];
    snprintf(raw, sizeof raw, "%s/%s.raw.wav", work, j->path);
    snprintf(out, sizeof out, "%s/%s", work, j->path);
    cmd[0] = '\0';
    if (!j->voice) {
        /* Generated noise: the text names sox's synth arguments. */
        snprintf(cmd, size, "sox -R -n -r 16000 -c 1 -b 16 ");
        append_quoted(cmd, size, out);
        strncat(cmd, " synth ", size - strlen(cmd) - 1);
        strncat(cmd, j->text, size - strlen(cmd) - 1);
        return;
    }
    if (j->voice->engine == ENGINE_ESPEAK) {
        snprintf(cmd, size, "espeak-ng -v %s -s %d -p %d ", j->voice->name, j->rate, j->pitch);
        if (j->voice->made) {
            strncat(cmd, "--path=", size - strlen(cmd) - 1);
            char espeak_root[4096 + 16];
            snprintf(espeak_root, sizeof espeak_root, "%s/espeak", work);
            append_quoted(cmd, size, espeak_root);
            strncat(cmd, " ", size - strlen(cmd) - 1);
        }
        strncat(cmd, "-w ", size - strlen(cmd) - 1);
        append_quoted(cmd, size, raw);
        strncat(cmd, " -- ", size - strlen(cmd) - 1);
        append_quoted(cmd, size, j->text);
    } else {
        snprintf(cmd, size,
                 "flite -voice %s --setf duration_stretch=%.2f --setf "
                 "int_f0_target_mean=%d -t ",
                 j->voice->name, j->rate / 100.0, j->pitch);
        append_quoted(cmd, size, j->text);
        strncat(cmd, " -o ", size - strlen(cmd) - 1);
        append_quoted(cmd, size, raw);
        strncat(cmd, " >/dev/null", size - strlen(cmd) - 1);
    }
    /* As models/recipe/render.sh: 16 kHz mono 16-bit, silence trimmed at both ends. */
    strncat(cmd, " && sox -R -G -V1 ", size - strlen(cmd) - 1);
    append_quoted(cmd, size, raw);
    strncat(cmd, " -r 16000 -c 1 -b 16 ", size - strlen(cmd) - 1);
    append_quoted(cmd, size, out);
    strncat(cmd, " silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse; status=$?; rm -f ",
            size - strlen(cmd) - 1);
    append_quoted(cmd, size, raw);
    strncat(cmd, "; exit $status", size - strlen(cmd) - 1);
}

static double clip_duration_s(const char *path) {
    es_audio_file *file = NULL;
    if (es_audio_file_open(path, &file, NULL) != 0) return 0.0;
    const es_audio_info *info = es_audio_file_info(file);
    const double seconds = info->frames > 0 ? (double)info->frames / info->sample_rate_hz : 0.0;
    es_audio_file_close(file);
    return seconds;
}

/* espeak-ng's own voices speak in a process forked from this one (synth.h);
 * flite, the made variants (their data is in the work folder) and generated
 * noise run as commands. */
static int in_process(const render_job *j) {
    return j->voice && j->voice->engine == ENGINE_ESPEAK && !j->voice->made;
}

static void render_child(const keyword_ctx *ctx, const render_job *j, const char *work,
                         const char *cmd) {
    if (in_process(j)) {
        char path[4096 + 80];
        es_error err;
        snprintf(path, sizeof path, "%s/%s", work, j->path);
        if (es_synth_espeak_clip(j->voice->name, j->rate, j->pitch, j->text, path, &err) == 0)
            _exit(0);
        /* Told here, in the child: the parent only counts the clip as failed. */
        if (ctx->hooks && ctx->hooks->render_failed)
            ctx->hooks->render_failed(err.why, ctx->hooks->user);
        _exit(1);
    }
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

/* Makes every job's clip, `workers` at a time, reporting progress with an ETA. */
int render_all(const keyword_ctx *ctx, job_list *jobs, const char *work, int workers,
               es_error *err) {
    const double started = es_monotonic_s();
    if (es_synth_start(err) != 0) {
        if (err) err->code = ES_KEYWORD_ERR_FAILED;
        return ES_KEYWORD_ERR_FAILED;
    }
    pid_t running[MAX_WORKERS] = {0};
    int owner[MAX_WORKERS] = {0};
    int next = 0, done = 0, failed = 0, active = 0;
    const int report_every = jobs->count / 10 > 0 ? jobs->count / 10 : 1;
    char *cmd = malloc(16384);
    if (!cmd) return -1;
    while (done < jobs->count && !kw_stopped(ctx)) {
        while (active < workers && next < jobs->count) {
            if (!in_process(&jobs->items[next])) job_command(&jobs->items[next], work, cmd, 16384);
            fflush(NULL); /* nothing buffered twice */
            const pid_t pid = fork();
            if (pid < 0) {
                free(cmd);
                return es_error_set(err, ES_KEYWORD_ERR_FAILED, "cannot start the synthesiser: %s",
                                    strerror(errno));
            }
            if (pid == 0) render_child(ctx, &jobs->items[next], work, cmd);
            for (int s = 0; s < MAX_WORKERS; s++)
                if (running[s] == 0) {
                    running[s] = pid;
                    owner[s] = next;
                    break;
                }
            active++;
            next++;
        }
        int status = 0;
        const pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int s = 0; s < MAX_WORKERS; s++) {
            if (running[s] != pid) continue;
            running[s] = 0;
            active--;
            done++;
            render_job *j = &jobs->items[owner[s]];
            char path[4096 + 80];
            snprintf(path, sizeof path, "%s/%s", work, j->path);
            const int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            j->duration_s = ok ? clip_duration_s(path) : 0.0;
            if (j->duration_s < 0.1) {
                j->duration_s = 0.0;
                failed++;
            }
            if (done % report_every == 0 || done == jobs->count) {
                const double elapsed = es_monotonic_s() - started;
                char spent[32], eta[32];
                format_duration(elapsed, spent, sizeof spent);
                format_duration(elapsed / done * (jobs->count - done), eta, sizeof eta);
                kw_note(ctx, "rendered %d/%d clips, %s, ETA %s", done, jobs->count, spent, eta);
            }
        }
    }
    free(cmd);
    if (kw_stopped(ctx)) {
        /* The clips being made finish first (each takes a moment): the
         * folder can only go once nothing writes into it. */
        for (int s = 0; s < MAX_WORKERS; s++)
            while (running[s] > 0 && waitpid(running[s], NULL, 0) < 0 && errno == EINTR)
                ;
        return es_error_set(err, ES_KEYWORD_ERR_STOPPED, "stopped");
    }
    if (failed > jobs->count / 4)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED,
                            "%d of %d clips failed to render (is espeak-ng working?)", failed,
                            jobs->count);
    if (failed) kw_note(ctx, "%d clips were silent or failed and are left out", failed);
    return 0;
}

/* ---- data/: keyword-free speech and noise from scripts/data.sh ------------------------- */

/* Lower-case letters and single spaces: "Open, Sesame!" -> "open sesame". */
static void plain_words(const char *text, char *out, size_t size) {
    size_t n = 0;
    int space = 1;
    for (const char *c = text; *c && n + 2 < size; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch | 0x20);
        if ((ch >= 'a' && ch <= 'z') || ch == '\'') {
            out[n++] = ch;
            space = 0;
        } else if (!space) {
            out[n++] = ' ';
            space = 1;
        }
    }
    out[n] = '\0';
}

/* Clip paths (data/-relative) of jobs whose text says the phrase, even as the
 * start of a longer word ("computers"): those are not keyword-free. */
static char **clips_saying(const char *data_dir, const char *phrase, int *count) {
    *count = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/text/jobs.tsv", data_dir);
    FILE *file = fopen(path, "r");
    if (!file) return NULL;
    char **found = NULL;
    char *line = NULL;
    size_t line_size = 0;
    char words[4096], needle[MAX_PHRASE_BYTES + 3];
    snprintf(needle, sizeof needle, " %s", phrase);
    while (getline(&line, &line_size, file) != -1) {
        char *fields[7];
        int n = 0;
        for (char *save = NULL, *f = strtok_r(line, "\t", &save); f && n < 7;
             f = strtok_r(NULL, "\t", &save))
            fields[n++] = f;
        if (n < 6) continue;
        words[0] = ' ';
        plain_words(fields[5], words + 1, sizeof words - 1);
        if (!strstr(words, needle)) continue;
        char **grown = realloc(found, sizeof(char *) * (size_t)(*count + 1));
        if (!grown) break;
        found = grown;
        /* As the manifest reader resolves data/'s relative paths. */
        char clip[4096 + 600];
        snprintf(clip, sizeof clip, "%s/clips/%s.wav", data_dir, fields[0]);
        found[(*count)++] = strdup(clip);
    }
    free(line);
    fclose(file);
    return found;
}

/* The clip kind a line of data/ stands for here: its sentences and its own
 * keywords are keyword-free sentences, unless they say the phrase. */
static int data_kind(const es_manifest_clip *c, const char *phrase) {
    switch (c->kind) {
    case ES_KIND_KEYWORD:
        return phrase_has_word(phrase, c->label) ? -1 : CLIP_SENTENCE;
    case ES_KIND_SENTENCE:
        return CLIP_SENTENCE;
    case ES_KIND_SPEECH:
        return CLIP_SPEECH;
    default:
        return CLIP_NOISE;
    }
}

static int data_set_add(data_set *set, const es_manifest_clip *c, int kind) {
    if (set->count == set->capacity) {
        const int capacity = set->capacity ? 2 * set->capacity : 4096;
        data_clip *grown = realloc(set->items, sizeof(data_clip) * (size_t)capacity);
        if (!grown) return -1;
        set->items = grown;
        set->capacity = capacity;
    }
    char *clip_path = strdup(c->path);
    if (!clip_path) return -1;
    set->items[set->count++] = (data_clip){clip_path, (int)c->split, kind};
    return 0;
}

int load_data_set(const char *data_dir, const char *phrase, data_set *set, es_error *err) {
    memset(set, 0, sizeof *set);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", data_dir);
    es_manifest manifest;
    if (es_manifest_read(path, &manifest, err) != ES_MANIFEST_OK) {
        es_manifest_free(&manifest);
        if (err) err->code = ES_KEYWORD_ERR_FAILED;
        return ES_KEYWORD_ERR_FAILED;
    }
    int saying_count = 0;
    char **saying = clips_saying(data_dir, phrase, &saying_count);
    int rc = 0;
    for (int i = 0; i < manifest.count && rc == 0; i++) {
        const es_manifest_clip *c = &manifest.clips[i];
        const int kind = data_kind(c, phrase);
        if (kind < 0) continue;
        int says_phrase = 0;
        for (int k = 0; k < saying_count && !says_phrase; k++)
            says_phrase = strcmp(saying[k], c->path) == 0;
        if (says_phrase) {
            set->excluded++;
            continue;
        }
        rc = data_set_add(set, c, kind);
    }
    es_manifest_free(&manifest);
    free_list(saying, saying_count);
    if (rc) return es_error_set(err, ES_KEYWORD_ERR_FAILED, "%s: out of memory", path);
    return 0;
}

void data_set_free(data_set *set) {
    for (int i = 0; i < set->count; i++)
        free(set->items[i].path);
    free(set->items);
}

/* ---- the training manifest ----------------------------------------------------------------- */

/* Absolute form of `path` (relative to the current directory) for the manifest. */
void absolute_path(const char *path, char *out, size_t size) {
    if (path[0] == '/') {
        snprintf(out, size, "%s", path);
        return;
    }
    char cwd[2048];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    snprintf(out, size, "%s/%s", cwd, path);
}

/* Draws of the trainer are uniform over a kind's lines, so line counts set the
 * mix: confusables are repeated until they make up about `share` of the
 * keyword-free sentences of their split. */
static int confusable_repeats(const job_list *jobs, const data_set *data, int split, double share) {
    int confusable = 0, sentences = 0;
    for (int i = 0; i < jobs->count; i++) {
        const render_job *j = &jobs->items[i];
        if (j->split != split || j->duration_s <= 0) continue;
        confusable += j->kind == CLIP_CONFUSABLE;
        sentences += j->kind == CLIP_SENTENCE;
    }
    for (int i = 0; data && i < data->count; i++)
        sentences += data->items[i].split == split && data->items[i].kind == CLIP_SENTENCE;
    if (confusable == 0) return 0;
    const int repeats = (int)lround(share / (1.0 - share) * sentences / confusable);
    return repeats < 1 ? 1 : repeats > 50 ? 50 : repeats;
}

/* Without valid lines the trainer runs every epoch and keeps the last
 * weights: --small does so, as early stopping on a handful of clips would
 * keep an untrained first epoch. */
int write_manifest(const char *path, const char *work, const char *phrase, const job_list *jobs,
                   const data_set *data, int last_split, es_error *err) {
    FILE *file = fopen(path, "w");
    if (!file)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED, "cannot create %s: %s", path,
                            strerror(errno));
    fprintf(file, "# earshot training manifest v1 (models/MANIFEST.md), made by "
                  "earshot train-keyword\n# path\tsplit\tkind\tlabel\tstart_s\tend_s\tvoice\n");
    for (int split = ES_SPLIT_TRAIN; split <= last_split; split++) {
        const int repeats = confusable_repeats(jobs, data, split, 0.35);
        for (int i = 0; i < jobs->count; i++) {
            const render_job *j = &jobs->items[i];
            if (j->split != split || j->duration_s <= 0) continue;
            const char *engine = !j->voice                           ? "noise"
                                 : j->voice->engine == ENGINE_ESPEAK ? "espeak"
                                                                     : "flite";
            const char *voice = j->voice ? j->voice->name : "generated";
            if (j->kind == CLIP_POSITIVE)
                fprintf(file, "%s/%s\t%s\tkeyword\t%s\t0.000\t%.3f\t%s:%s\n", work, j->path,
                        es_split_names[split], phrase, j->duration_s, engine, voice);
            else
                for (int r = 0; r < (j->kind == CLIP_CONFUSABLE ? repeats : 1); r++)
                    fprintf(file, "%s/%s\t%s\t%s\t-\t-\t-\t%s:%s\n", work, j->path,
                            es_split_names[split], clip_kinds[j->kind], engine, voice);
        }
        for (int i = 0; data && i < data->count; i++) {
            const data_clip *c = &data->items[i];
            if (c->split != split) continue;
            char clip_path[4096];
            absolute_path(c->path, clip_path, sizeof clip_path);
            fprintf(file, "%s\t%s\t%s\t-\t-\t-\tdata:%s\n", clip_path, es_split_names[split],
                    clip_kinds[c->kind], es_split_names[split]);
        }
    }
    if (fclose(file) != 0) return es_error_set(err, ES_KEYWORD_ERR_FAILED, "cannot write %s", path);
    return 0;
}
