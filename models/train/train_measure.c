/*
 * Measuring a model in training (factory.h): the validation figures of
 * each task, the metric early stopping follows, checkpoints at an epoch's
 * end, and the progress es_train_run reports (with the time budget and the
 * caller's stop flag deciding when to end).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "train_model_internal.h"

es_train_vad_figures vad_measure(const trainer_data *d, es_model *m) {
    long counts[2][2] = {{0, 0}, {0, 0}}; /* [truth][decision] */
    for (int i = 0; i < d->valid_count; i++) {
        const es_sequence *s = &d->valid_seqs[i];
        float *out = malloc(sizeof(float) * (size_t)s->frames);
        if (!out || es_model_forward_sequence(m, s->inputs, s->frames, out) != ES_RNN_OK) {
            free(out);
            return (es_train_vad_figures){NAN, NAN, NAN};
        }
        for (int t = 0; t < s->frames; t++)
            counts[s->targets[t] > 0.5f][out[t] > 0.5f]++;
        free(out);
    }
    const long speech = counts[1][0] + counts[1][1], other = counts[0][0] + counts[0][1];
    return (es_train_vad_figures){
        .accuracy =
            (float)(counts[0][0] + counts[1][1]) / (float)(speech + other > 0 ? speech + other : 1),
        .speech_recall = speech ? (float)counts[1][1] / (float)speech : NAN,
        .false_speech = other ? (float)counts[0][1] / (float)other : NAN,
    };
}

static int compare_floats(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The peak posteriors of the validation set: of each keyword sequence's
 * keyword in its labelled window, of each filler sequence's keywords. */
typedef struct kws_peaks {
    float *keyword, *filler;
    int keyword_count, filler_count;
} kws_peaks;

static float keyword_peak(const es_sequence *s, const float *out, int outputs) {
    /* Up to the end of the frames the loss labels with the keyword. */
    const int labelled_end =
        s->kw_end + ES_KEYWORD_DECISION_DELAY_FRAMES + ES_KEYWORD_TARGET_FRAMES;
    const int end = labelled_end < s->frames ? labelled_end : s->frames;
    float peak = 0.0f;
    for (int t = s->kw_start; t < end; t++)
        peak = fmaxf(peak, out[(size_t)t * outputs + s->keyword]);
    return peak;
}

static float filler_peak(const es_sequence *s, const float *out, int outputs) {
    float peak = 0.0f;
    for (int t = 0; t < s->frames; t++)
        for (int k = 1; k < outputs; k++)
            peak = fmaxf(peak, out[(size_t)t * outputs + k]);
    return peak;
}

static int collect_peaks(const trainer_data *d, es_model *m, kws_peaks *p) {
    const int outputs = es_model_output_size(m);
    for (int i = 0; i < d->valid_count; i++) {
        const es_sequence *s = &d->valid_seqs[i];
        float *out = malloc(sizeof(float) * (size_t)s->frames * outputs);
        if (!out || es_model_forward_sequence(m, s->inputs, s->frames, out) != ES_RNN_OK) {
            free(out);
            return -1;
        }
        if (s->keyword > 0)
            p->keyword[p->keyword_count++] = keyword_peak(s, out, outputs);
        else
            p->filler[p->filler_count++] = filler_peak(s, out, outputs);
        free(out);
    }
    return 0;
}

static es_train_kws_figures kws_figures_of(kws_peaks *p) {
    int hits = 0, alarms = 0;
    double keyword_peaks = 0.0, filler_peaks = 0.0;
    for (int i = 0; i < p->keyword_count; i++) {
        hits += p->keyword[i] > 0.5f;
        keyword_peaks += p->keyword[i];
    }
    for (int i = 0; i < p->filler_count; i++) {
        alarms += p->filler[i] > 0.5f;
        filler_peaks += p->filler[i];
    }
    float recall_at_5_percent = 0.0f;
    if (p->filler_count > 0 && p->keyword_count > 0) {
        qsort(p->filler, (size_t)p->filler_count, sizeof(float), compare_floats);
        const float threshold = p->filler[(int)(0.95 * (p->filler_count - 1))];
        int above = 0;
        for (int i = 0; i < p->keyword_count; i++)
            above += p->keyword[i] > threshold;
        recall_at_5_percent = (float)above / (float)p->keyword_count;
    }
    const int kw = p->keyword_count, fl = p->filler_count;
    return (es_train_kws_figures){
        .recall_at_5_percent = recall_at_5_percent,
        .recall = kw ? (float)hits / kw : 0.0f,
        .false_alarms = fl ? (float)alarms / fl : 0.0f,
        .mean_keyword_peak = kw ? (float)(keyword_peaks / kw) : 0.0f,
        .mean_filler_peak = fl ? (float)(filler_peaks / fl) : 0.0f,
    };
}

es_train_kws_figures kws_measure(const trainer_data *d, es_model *m) {
    kws_peaks p = {.keyword = malloc(sizeof(float) * (size_t)(d->valid_count + 1)),
                   .filler = malloc(sizeof(float) * (size_t)(d->valid_count + 1))};
    es_train_kws_figures f = {NAN, NAN, NAN, NAN, NAN};
    if (p.keyword && p.filler && collect_peaks(d, m, &p) == 0) f = kws_figures_of(&p);
    free(p.keyword);
    free(p.filler);
    return f;
}

/* MODEL.esm -> MODEL.epochE.esm (no extension: MODEL.epochE). */
static int checkpoint_path(const char *model_path, int epoch, char *out, size_t size) {
    const char *slash = strrchr(model_path, '/');
    const char *dot = strrchr(model_path, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : model_path))
        dot = model_path + strlen(model_path);
    const int n =
        snprintf(out, size, "%.*s.epoch%d%s", (int)(dot - model_path), model_path, epoch, dot);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* A checkpoint that cannot be written is told, and training goes on. */
static void save_checkpoint(const trainer_data *d, const es_model *m) {
    char path[4096];
    es_error err, save_err;
    if (checkpoint_path(d->opt->output_path, d->epochs_validated, path, sizeof path) != 0)
        es_error_set(&err, ES_TRAIN_ERR_OUTPUT, "%s: the checkpoint's name is too long",
                     d->opt->output_path);
    else if (es_model_save(m, path, &save_err) != ES_RNN_OK)
        es_error_set(&err, ES_TRAIN_ERR_OUTPUT, "%s: %s", path, save_err.why);
    else
        return;
    if (d->hooks && d->hooks->checkpoint_failed) d->hooks->checkpoint_failed(&err, d->hooks->user);
}

float validation_metric(es_model *m, void *user) {
    trainer_data *d = user;
    /* An epoch's end, and the model as trained so far: the time for a round. */
    d->epochs_validated++;
    if (d->opt->checkpoint_epochs > 0 && d->epochs_validated % d->opt->checkpoint_epochs == 0)
        save_checkpoint(d, m);
    if (d->opt->task == ES_TRAIN_KWS && d->epochs_validated < d->opt->epochs &&
        hard_round_before(d, (long)d->epochs_validated * d->batches_per_epoch) &&
        mine_hard_negatives(d, m, &d->failure) != 0)
        d->hard_failed = 1;
    if (d->valid_count == 0) return NAN;
    if (d->opt->task == ES_TRAIN_VAD) return vad_measure(d, m).accuracy;
    return kws_measure(d, m).recall_at_5_percent;
}

int report_progress(const es_train_progress *p, void *user) {
    trainer_data *d = user;
    const double budget_s = d->opt->minutes > 0 ? d->opt->minutes * 60.0 : INFINITY;
    const double total_elapsed_s = es_monotonic_s() - d->started_s;
    const es_train_hooks *hooks = d->hooks;
    es_train_epoch_report report = {.epoch = d->epoch_offset + p->epoch + 1,
                                    .batch = p->batch,
                                    .batches = p->batches_per_epoch,
                                    .train_loss = p->train_loss,
                                    .elapsed_s = total_elapsed_s};
    if (!p->epoch_done) {
        if (hooks && hooks->batch) hooks->batch(&report, hooks->user);
        /* A budget overrun by more than an epoch's worth stops mid-epoch. */
        return stop_requested(d) || total_elapsed_s > budget_s + d->last_epoch_s;
    }
    report.valid_loss = p->valid_loss;
    report.valid_accuracy = p->valid_accuracy;
    report.valid_metric = p->valid_metric;
    report.best_metric = p->best_metric;
    report.best_epoch = d->epoch_offset + p->best_epoch + 1;
    report.learning_rate = p->learning_rate;
    /* The time budget ends a run sooner than its epoch limit would. */
    report.eta_s = fmin(p->eta_s, budget_s - total_elapsed_s);
    if (hooks && hooks->epoch) hooks->epoch(&report, hooks->user);
    d->last_epoch_s = p->elapsed_s / (p->epoch + 1);
    if (total_elapsed_s + d->last_epoch_s > budget_s) {
        d->stopped_for_time = 1;
        return 1;
    }
    return stop_requested(d);
}
