/*
 * es_train_run: epochs of es_trainer_step over a batch source, validation
 * after each, early stopping that keeps the best weights, learning-rate
 * decay, an optional running average of the weights, and progress reports
 * with an ETA.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train_internal.h"

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double eta_seconds(const es_train_progress *p, int max_epochs) {
    double done, total;
    if (p->batches_per_epoch > 0) {
        done = (double)p->epoch * p->batches_per_epoch + p->batch;
        total = (double)max_epochs * p->batches_per_epoch;
    } else {
        done = p->epoch + (p->epoch_done ? 1 : 0);
        total = max_epochs;
    }
    return done > 0 ? p->elapsed_s / done * (total - done) : -1.0;
}

/* Mean loss and accuracy over every batch of `valid`'s epoch `epoch`. */
static int validate(es_trainer *t, const es_train_data *valid, int epoch, float *loss,
                    float *accuracy) {
    double loss_sum = 0.0, correct_sum = 0.0, weight = 0.0;
    for (int index = 0;; index++) {
        const es_sequence *batch = NULL;
        int count = 0;
        int more = valid->next(valid->user, epoch, index, &batch, &count);
        if (more < 0) return more;
        if (more == 0) break;
        float batch_accuracy = 0.0f;
        float batch_loss = es_trainer_loss(t, batch, count, &batch_accuracy);
        if (isnan(batch_loss)) return ES_RNN_ERR_ARG;
        /* Batches weigh by their sequences: close to per-frame for similar lengths. */
        loss_sum += (double)batch_loss * count;
        correct_sum += (double)batch_accuracy * count;
        weight += count;
    }
    *loss = weight > 0 ? (float)(loss_sum / weight) : NAN;
    *accuracy = weight > 0 ? (float)(correct_sum / weight) : NAN;
    return ES_RNN_OK;
}

/* The running average of the weights (config.average_decay). */
typedef struct weight_average {
    float *mean; /* NULL when off */
    float decay;
    long steps;
} weight_average;

static void average_update(weight_average *a, const float *params, size_t n) {
    if (!a->mean) return;
    /* At first the average would mostly remember the random start: its decay
     * grows to the setting as (1 + k) / (10 + k) after k steps. */
    a->steps++;
    float decay = (1.0f + (float)a->steps) / (10.0f + (float)a->steps);
    if (decay > a->decay) decay = a->decay;
    for (size_t i = 0; i < n; i++)
        a->mean[i] = decay * a->mean[i] + (1.0f - decay) * params[i];
}

/* Puts the average into the model and the model's weights into the average's
 * place; a second call undoes it. */
static int average_swap(weight_average *a, es_model *m) {
    if (!a->mean) return ES_RNN_OK;
    for (size_t i = 0; i < m->param_count; i++) {
        const float held = m->params[i];
        m->params[i] = a->mean[i];
        a->mean[i] = held;
    }
    return es_model_refresh(m);
}

int es_train_run(es_trainer *t, const es_train_data *train, const es_train_data *valid,
                 es_train_metric_fn metric, es_train_progress_fn progress, void *user) {
    es_model *m = es_trainer_model(t);
    const es_train_config *config = es_trainer_config(t);
    if (!train || !train->next) return ES_RNN_ERR_ARG;
    size_t n = m->param_count;
    float *best = malloc(sizeof(float) * n);
    if (!best) return ES_RNN_ERR_NOMEM;
    memcpy(best, m->params, sizeof(float) * n);
    weight_average average = {NULL, config->average_decay, 0};
    if (config->average_decay > 0.0f) {
        if (!(average.mean = malloc(sizeof(float) * n))) {
            free(best);
            return ES_RNN_ERR_NOMEM;
        }
        memcpy(average.mean, m->params, sizeof(float) * n);
    }
    int judged = valid != NULL || metric != NULL;
    es_train_progress p = {0};
    p.batches_per_epoch = train->batches_per_epoch;
    p.valid_loss = p.valid_accuracy = p.valid_metric = NAN;
    p.best_metric = -INFINITY;
    p.best_epoch = -1;
    double start = seconds_now();
    int status = ES_RNN_OK, epochs = 0, stale = 0, stop = 0;
    for (int epoch = 0; epoch < config->max_epochs && !stop; epoch++) {
        double loss_sum = 0.0;
        int finite_batches = 0;
        p.epoch = epoch;
        p.epoch_done = 0;
        for (int index = 0;; index++) {
            const es_sequence *batch = NULL;
            int count = 0;
            int more = train->next(train->user, epoch, index, &batch, &count);
            if (more < 0) status = more;
            if (more <= 0) break;
            float loss;
            status = es_trainer_step_checked(t, batch, count, &loss);
            if (status != ES_RNN_OK) break;
            average_update(&average, m->params, n);
            if (isfinite(loss)) loss_sum += loss, finite_batches++;
            p.batch = index + 1;
            p.train_loss = finite_batches ? (float)(loss_sum / finite_batches) : NAN;
            p.skipped_steps = es_trainer_skipped_steps(t);
            p.learning_rate = es_trainer_learning_rate(t);
            p.elapsed_s = seconds_now() - start;
            p.eta_s = eta_seconds(&p, config->max_epochs);
            if (progress && progress(&p, user)) {
                stop = 1;
                break;
            }
        }
        if (status != ES_RNN_OK || stop) break; /* a partial epoch is neither counted nor judged */
        epochs++;
        if ((status = average_swap(&average, m)) != ES_RNN_OK) break;
        if (valid) status = validate(t, valid, epoch, &p.valid_loss, &p.valid_accuracy);
        if (judged && status == ES_RNN_OK) {
            p.valid_metric = metric ? metric(m, user) : -p.valid_loss;
            if (p.valid_metric > p.best_metric) {
                p.best_metric = p.valid_metric;
                p.best_epoch = epoch;
                memcpy(best, m->params, sizeof(float) * n);
                stale = 0;
            } else {
                stale++;
            }
        }
        const int swapped_back = average_swap(&average, m);
        if (status == ES_RNN_OK) status = swapped_back;
        if (status != ES_RNN_OK) break;
        p.epoch_done = 1;
        p.elapsed_s = seconds_now() - start;
        p.eta_s = eta_seconds(&p, config->max_epochs);
        if (progress && progress(&p, user)) stop = 1;
        es_trainer_set_learning_rate(t, es_trainer_learning_rate(t) * config->lr_decay);
        if (judged && stale >= config->patience) break;
    }
    if (judged && p.best_epoch >= 0) {
        memcpy(m->params, best, sizeof(float) * n);
        int refreshed = es_model_refresh(m);
        if (status == ES_RNN_OK) status = refreshed;
    } else if (!judged) {
        int swapped = average_swap(&average, m);
        if (status == ES_RNN_OK) status = swapped;
    }
    free(average.mean);
    free(best);
    return status != ES_RNN_OK ? status : epochs;
}
