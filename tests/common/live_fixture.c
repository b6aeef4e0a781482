/*
 * Live capture test fixture (live_fixture.h).
 */
#include "live_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsp.h"

int live_fixture_create(live_fixture *f) {
    snprintf(f->dir, sizeof f->dir, "/tmp/earshot-live-XXXXXX");
    return mkdtemp(f->dir) ? 0 : -1;
}

void live_fixture_destroy(live_fixture *f) {
    if (!f->dir[0]) return;
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", f->dir);
    live_fixture_run(command);
    f->dir[0] = '\0';
}

void live_fixture_path(const live_fixture *f, const char *name, char *path, size_t size) {
    snprintf(path, size, "%s/%s", f->dir, name);
}

int live_fixture_use_raw(live_fixture *f, const char *raw_path, int rate_hz, int channels) {
    char config_path[512];
    live_fixture_path(f, "asound.conf", config_path, sizeof config_path);
    FILE *config = fopen(config_path, "w");
    if (!config) return -1;
    fprintf(config,
            "pcm.!default {\n"
            "  type plug\n"
            "  slave {\n"
            "    pcm { type file  slave.pcm { type null }  file \"/dev/null\"  infile \"%s\" }\n"
            "    format FLOAT_LE  rate %d  channels %d\n"
            "  }\n"
            "  hint { show on description \"recorded clip as capture\" }\n"
            "}\n",
            raw_path, rate_hz, channels);
    if (fclose(config) != 0) return -1;
    setenv("ALSA_CONFIG_PATH", config_path, 1);
    setenv("JACK_NO_START_SERVER", "1", 1);
    /* A JACK server someone runs on this machine must not add devices. */
    setenv("JACK_DEFAULT_SERVER", "earshot-test-no-server", 1);
    return 0;
}

int live_fixture_write_raw(const char *path, const float *samples, size_t count) {
    FILE *out = fopen(path, "wb");
    if (!out) return -1;
    size_t written = fwrite(samples, sizeof *samples, count, out);
    return fclose(out) == 0 && written == count ? 0 : -1;
}

static es_model *random_model(int hidden_units, es_activation output_activation, int outputs,
                              const char *const *labels, uint64_t seed) {
    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    es_feature_spec spec = {
        .sample_rate_hz = (uint32_t)frontend.sample_rate_hz,
        .fft_size = (uint32_t)frontend.fft_size,
        .window_samples = (uint32_t)frontend.window_samples,
        .hop_samples = (uint32_t)frontend.hop_samples,
        .mel_bands = (uint32_t)frontend.mel_bands,
        .normalisation = (uint32_t)frontend.normalisation,
    };
    es_model *m = NULL;
    if (es_model_create(&spec, frontend.mel_bands, &m) != ES_RNN_OK) return NULL;
    if (es_model_add_layer(m, ES_LAYER_GRU, hidden_units, ES_ACT_TANH, 0) != ES_RNN_OK ||
        es_model_add_layer(m, ES_LAYER_DENSE, outputs, output_activation, 0) != ES_RNN_OK ||
        es_model_set_labels(m, outputs, labels) != ES_RNN_OK) {
        es_model_destroy(m);
        return NULL;
    }
    es_model_init_weights(m, seed);
    return m;
}

es_model *live_fixture_vad_model(uint64_t seed) {
    static const char *const labels[] = {"speech"};
    return random_model(24, ES_ACT_SIGMOID, 1, labels, seed);
}

es_model *live_fixture_kws_model(uint64_t seed) {
    static const char *const labels[] = {"filler", "left", "stop"};
    return random_model(24, ES_ACT_SOFTMAX, 3, labels, seed);
}

int live_fixture_run(const char *command) {
    int status = system(command);
    if (status == -1 || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* Empties `path` now, so that the caller never reads a previous run's output
 * in the moment before the child opens it. */
static void truncate_output(const char *path) {
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) close(fd);
}

pid_t live_fixture_spawn(const char *const *args, const char *out_path, const char *err_path) {
    truncate_output(out_path);
    truncate_output(err_path);
    pid_t pid = fork();
    if (pid != 0) return pid;
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(127);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execvp(args[0], (char *const *)args);
    _exit(127);
}

int live_fixture_wait(pid_t pid, double timeout_s) {
    double give_up = live_fixture_now_s() + timeout_s;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (live_fixture_now_s() > give_up) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        live_fixture_sleep_s(0.01);
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

char *live_fixture_read(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) text = malloc((size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, f) == (size_t)size) {
        text[size] = '\0';
    } else {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

double live_fixture_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void live_fixture_sleep_s(double seconds) {
    struct timespec pause = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&pause, NULL);
}
