/*
 * Training throughput: frames per second of forward + backward + update
 * (es_trainer_step) for the shipped keyword model's shape by default: 2 GRU
 * layers of 128 units over 40 log-mels, a dense softmax of 21, batches of
 * 32 sequences of 100 frames, 2 threads. Not a test: run it by hand.
 *
 *   train_bench [--type gru|lstm|rnn] [--units N] [--layers N] [--frames N]
 *               [--batch N] [--threads N] [--steps N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_train_fixtures.h"

static double seconds_on(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int units = 128, layers = 2, frames = 100, batch = 32, threads = 2, steps = 20;
    int inputs = 40, outputs = 21;
    es_layer_type type = ES_LAYER_GRU;
    for (int i = 1; i + 1 < argc; i += 2) {
        int value = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--units"))
            units = value;
        else if (!strcmp(argv[i], "--layers"))
            layers = value;
        else if (!strcmp(argv[i], "--frames"))
            frames = value;
        else if (!strcmp(argv[i], "--batch"))
            batch = value;
        else if (!strcmp(argv[i], "--threads"))
            threads = value;
        else if (!strcmp(argv[i], "--steps"))
            steps = value;
        else if (!strcmp(argv[i], "--type"))
            type = !strcmp(argv[i + 1], "lstm")  ? ES_LAYER_LSTM
                   : !strcmp(argv[i + 1], "rnn") ? ES_LAYER_RNN
                                                 : ES_LAYER_GRU;
        else {
            fprintf(stderr, "train_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (layers < 1 || layers > 8 || units < 1 || frames < 1 || batch < 1 || steps < 1) return 2;
    test_layer hidden[8];
    for (int l = 0; l < layers; l++)
        hidden[l] = (test_layer){type, units, ES_ACT_TANH, 0};
    es_model *m = test_model(inputs, hidden, layers, outputs, ES_ACT_SOFTMAX, 1);
    es_train_config config;
    es_train_config_default(&config);
    config.threads = threads;
    es_trainer *t = NULL;
    if (!m || es_trainer_create(m, &config, &t) != ES_RNN_OK) {
        fprintf(stderr, "train_bench: cannot create the model or trainer\n");
        return 1;
    }
    float *x = malloc(sizeof(float) * (size_t)batch * frames * inputs);
    int *classes = malloc(sizeof(int) * (size_t)batch * frames);
    es_sequence *seqs = malloc(sizeof(es_sequence) * batch);
    if (!x || !classes || !seqs) return 1;
    test_rng rng = {3};
    for (size_t i = 0; i < (size_t)batch * frames * inputs; i++)
        x[i] = test_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)batch * frames; i++)
        classes[i] = test_rng_below(&rng, outputs);
    for (int s = 0; s < batch; s++)
        seqs[s] = (es_sequence){.frames = frames,
                                .inputs = x + (size_t)s * frames * inputs,
                                .class_targets = classes + (size_t)s * frames};
    es_trainer_step(t, seqs, batch); /* warm-up: allocations, caches */
    double best = 1e30, total = 0.0;
    float loss = 0.0f;
    double cpu_start = seconds_on(CLOCK_PROCESS_CPUTIME_ID);
    for (int step = 0; step < steps; step++) {
        double start = seconds_on(CLOCK_MONOTONIC);
        loss = es_trainer_step(t, seqs, batch);
        double took = seconds_on(CLOCK_MONOTONIC) - start;
        total += took;
        best = took < best ? took : best;
    }
    double cpu = seconds_on(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    double per_step = (double)batch * frames;
    printf("%s %dx%d, %d inputs, %d outputs, %zu params; batch %d x %d frames, %d threads\n",
           type == ES_LAYER_GRU    ? "GRU"
           : type == ES_LAYER_LSTM ? "LSTM"
                                   : "RNN",
           layers, units, inputs, outputs, es_model_param_count(m), batch, frames, threads);
    printf("frames/s: mean %.0f, best step %.0f (%d steps, %.1f ms/step mean, loss %.3f)\n",
           per_step * steps / total, per_step / best, steps, 1e3 * total / steps, loss);
    /* On a shared machine the wall clock counts other processes' time too;
     * CPU time per frame, times the threads, is what idle cores would give. */
    printf("CPU: %.1f ms/step over all threads = %.0f frames per CPU-second "
           "(x %d threads = %.0f frames/s on idle cores)\n",
           1e3 * cpu / steps, per_step * steps / cpu, threads, threads * per_step * steps / cpu);
    es_trainer_destroy(t);
    es_model_destroy(m);
    free(x);
    free(classes);
    free(seqs);
    return 0;
}
