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

#include "clock.h"
#include "train_internal.h"

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

/* Parameters before `from` (frozen layers') are left out: decay * w + (1 -
 * decay) * w need not round back to w. */
static void average_update(weight_average *a, const float *params, size_t from, size_t n) {
    if (!a->mean) return;
    /* At first the average would mostly remember the random start: its decay
     * grows to the setting as (1 + k) / (10 + k) after k steps. */
    a->steps++;
    float decay = (1.0f + (float)a->steps) / (10.0f + (float)a->steps);
    if (decay > a->decay) decay = a->decay;
    for (size_t i = from; i < n; i++)
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

/* One run's state between its epochs. */
typedef struct train_run {
    es_trainer *t;
    es_model *m;
    const es_train_config *config;
    es_train_progress_fn progress;
    void *user;
    weight_average average;
    float *best; /* the weights of the best epoch so far */
    es_train_progress p;
    double start_s;
    int stale; /* epochs since the best */
} train_run;

static void report_time(train_run *run) {
    run->p.elapsed_s = es_monotonic_s() - run->start_s;
    run->p.eta_s = eta_seconds(&run->p, run->config->max_epochs);
}

/* Steps through one epoch's batches. Returns ES_RNN_OK, an error, or 1 when
 * the progress callback asked to stop. */
static int train_epoch(train_run *run, const es_train_data *train, int epoch) {
    double loss_sum = 0.0;
    int finite_batches = 0;
    run->p.epoch = epoch;
    run->p.epoch_done = 0;
    for (int index = 0;; index++) {
        const es_sequence *batch = NULL;
        int count = 0;
        int more = train->next(train->user, epoch, index, &batch, &count);
        if (more <= 0) return more;
        float loss;
        int status = es_trainer_step_checked(run->t, batch, count, &loss);
        if (status != ES_RNN_OK) return status;
        average_update(&run->average, run->m->params, es_trainer_frozen_params(run->t),
                       run->m->param_count);
        if (isfinite(loss)) loss_sum += loss, finite_batches++;
        run->p.batch = index + 1;
        run->p.train_loss = finite_batches ? (float)(loss_sum / finite_batches) : NAN;
        run->p.skipped_steps = es_trainer_skipped_steps(run->t);
        run->p.learning_rate = es_trainer_learning_rate(run->t);
        report_time(run);
        if (run->progress && run->progress(&run->p, run->user)) return 1;
    }
}

/* Validates the epoch's weights (the running average's, when kept) and
 * remembers them when they are the best so far. */
static int judge_epoch(train_run *run, const es_train_data *valid, es_train_metric_fn metric,
                       int epoch) {
    int status = average_swap(&run->average, run->m);
    if (status != ES_RNN_OK) return status;
    es_train_progress *p = &run->p;
    if (valid) status = validate(run->t, valid, epoch, &p->valid_loss, &p->valid_accuracy);
    if ((valid || metric) && status == ES_RNN_OK) {
        p->valid_metric = metric ? metric(run->m, run->user) : -p->valid_loss;
        if (p->valid_metric > p->best_metric) {
            p->best_metric = p->valid_metric;
            p->best_epoch = epoch;
            memcpy(run->best, run->m->params, sizeof(float) * run->m->param_count);
            run->stale = 0;
        } else {
            run->stale++;
        }
    }
    const int swapped_back = average_swap(&run->average, run->m);
    return status == ES_RNN_OK ? swapped_back : status;
}

/* The run's result in the model: the best epoch's weights when judged, the
 * running average's otherwise. */
static int finish_run(train_run *run, int judged) {
    if (judged && run->p.best_epoch >= 0) {
        memcpy(run->m->params, run->best, sizeof(float) * run->m->param_count);
        return es_model_refresh(run->m);
    }
    return judged ? ES_RNN_OK : average_swap(&run->average, run->m);
}

int es_train_run(es_trainer *t, const es_train_data *train, const es_train_data *valid,
                 es_train_metric_fn metric, es_train_progress_fn progress, void *user) {
    if (!train || !train->next) return ES_RNN_ERR_ARG;
    train_run run = {.t = t,
                     .m = es_trainer_model(t),
                     .config = es_trainer_config(t),
                     .progress = progress,
                     .user = user,
                     .start_s = es_monotonic_s()};
    const size_t n = run.m->param_count;
    run.average = (weight_average){NULL, run.config->average_decay, 0};
    run.best = malloc(sizeof(float) * n);
    if (run.config->average_decay > 0.0f) run.average.mean = malloc(sizeof(float) * n);
    if (!run.best || (run.config->average_decay > 0.0f && !run.average.mean)) {
        free(run.best);
        free(run.average.mean);
        return ES_RNN_ERR_NOMEM;
    }
    memcpy(run.best, run.m->params, sizeof(float) * n);
    if (run.average.mean) memcpy(run.average.mean, run.m->params, sizeof(float) * n);
    const int judged = valid != NULL || metric != NULL;
    run.p.batches_per_epoch = train->batches_per_epoch;
    run.p.valid_loss = run.p.valid_accuracy = run.p.valid_metric = NAN;
    run.p.best_metric = -INFINITY;
    run.p.best_epoch = -1;
    int status = ES_RNN_OK, epochs = 0;
    for (int epoch = 0; epoch < run.config->max_epochs; epoch++) {
        status = train_epoch(&run, train, epoch);
        if (status != ES_RNN_OK) break; /* a partial epoch is neither counted nor judged */
        epochs++;
        if ((status = judge_epoch(&run, valid, metric, epoch)) != ES_RNN_OK) break;
        run.p.epoch_done = 1;
        report_time(&run);
        const int stop = progress && progress(&run.p, user);
        es_trainer_set_learning_rate(t, es_trainer_learning_rate(t) * run.config->lr_decay);
        if (stop || (judged && run.stale >= run.config->patience)) break;
    }
    if (status == 1) status = ES_RNN_OK; /* stopped by the progress callback */
    const int finished = finish_run(&run, judged);
    if (status == ES_RNN_OK) status = finished;
    free(run.average.mean);
    free(run.best);
    return status != ES_RNN_OK ? status : epochs;
}
