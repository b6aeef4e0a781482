/*
 * The run (factory.h): settings resolved, the manifest read, the model
 * built (or started from --init's), the data prepared, then one or two loss
 * phases of es_train_run, the figures measured and the model written.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "stream.h"
#include "train_model_internal.h"

void es_train_params_default(es_train_params *p) {
    *p = (es_train_params){.task = ES_TRAIN_VAD,
                           .seed = 1,
                           .threads = 1,
                           .conv = -1,
                           .stack = 1,
                           .valid_clips = 400,
                           .warmup_epochs = 2,
                           .kws_frame_targets = 1,
                           .batch_size = 32,
                           .learning_rate = 0.002f,
                           .augment_ramp_epochs = -1,
                           .patience = 10,
                           .min_snr_db = -5.0f,
                           .recorded_weight = 1.0f};
}

/* The settings left to the task, and --small's. */
static void resolve_params(es_train_params *p) {
    const int kws = p->task == ES_TRAIN_KWS;
    if (p->clips_per_epoch == 0) p->clips_per_epoch = 2000;
    if (p->epochs == 0) p->epochs = p->minutes > 0 ? 100000 : 30;
    /* Keywords are learnt on clean audio first: under full augmentation from
     * the start, the 20-keyword model stayed near chance for 15 epochs of 2000
     * (valid recall at 5 % filler alarms 0.08); on clean audio it reached 0.46
     * in 11 (models/kws.md). */
    if (p->augment_ramp_epochs < 0) p->augment_ramp_epochs = kws ? 30 : 0;
    /* KWS sequences are short and its runs a million of them long. */
    if (p->lr_decay_sequences == 0) p->lr_decay_sequences = kws ? 10000 : 4000;
    if (p->keyword_weight == 0.0f) p->keyword_weight = kws ? 3.0f : 1.0f;
    if (p->conv < 0) p->conv = kws ? 0 : 32;
    if (p->small) {
        p->hidden = kws ? 16 : 8;
        if (p->conv > 0) p->conv = 8;
        p->clips_per_epoch = 16;
        p->valid_clips = 8;
        if (p->batch_size > 8) p->batch_size = 8;
    }
}

static int check_params(const es_train_params *p, es_error *err) {
    if (!p->manifest_path || !p->output_path)
        return es_error_set(err, ES_TRAIN_ERR_ARG, "a manifest and an output path are required");
    if (p->freeze < 0 || (p->freeze > 0 && !p->init_path))
        return es_error_set(err, ES_TRAIN_ERR_ARG, "--freeze needs --init (the layers it keeps)");
    if (p->batch_size < 1 || p->batch_size > ES_TRAIN_MAX_BATCH || p->threads < 1 ||
        p->valid_clips < 1 || p->clips_per_epoch < 1 || p->stack < 1 || p->epochs < 1)
        return es_error_set(err, ES_TRAIN_ERR_ARG,
                            "batch 1-%d, and threads, clips, epochs and stack of at least 1",
                            ES_TRAIN_MAX_BATCH);
    return 0;
}

int stop_requested(const trainer_data *d) {
    return d->opt->stop && *d->opt->stop;
}

/* ---- the model ---------------------------------------------------------------------- */

/* Units of each recurrent layer: --hidden, else those of --init's model's
 * first recurrent layer, else the task's default. */
static int recurrent_units(const es_train_params *opt, const es_model *init) {
    if (opt->hidden) return opt->hidden;
    for (int l = 0; init && l < es_model_layer_count(init); l++)
        if (es_model_layer_type(init, l) != ES_LAYER_CONV1D &&
            es_model_layer_type(init, l) != ES_LAYER_DENSE &&
            es_model_layer_type(init, l) != ES_LAYER_STACK)
            return es_model_layer_units(init, l);
    return opt->task == ES_TRAIN_VAD ? 48 : 128;
}

/* The layers after the front: VAD GRU -> DENSE 1 sigmoid; KWS GRU x 2 ->
 * DENSE softmax over the manifest's outputs. */
static int add_task_layers(const es_train_params *opt, const train_clips *mf, int hidden,
                           es_model *m) {
    int rc;
    if (opt->task == ES_TRAIN_VAD) {
        const char *labels[] = {"speech"};
        if ((rc = es_model_add_layer(m, ES_LAYER_GRU, hidden, ES_ACT_TANH, 0)) ||
            (rc = es_model_add_layer(m, ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0)) ||
            (rc = es_model_set_labels(m, 1, labels)))
            return rc;
        return ES_RNN_OK;
    }
    if ((rc = es_model_add_layer(m, ES_LAYER_GRU, hidden, ES_ACT_TANH, 0)) ||
        (rc = es_model_add_layer(m, ES_LAYER_GRU, hidden, ES_ACT_TANH, 0)) ||
        (rc = es_model_add_layer(m, ES_LAYER_DENSE, mf->label_count, ES_ACT_SOFTMAX, 0)) ||
        (rc = es_model_set_labels(m, mf->label_count, mf->labels)))
        return rc;
    return ES_RNN_OK;
}

static int build_model(const es_train_params *opt, const train_clips *mf,
                       const es_frontend_config *frontend, const es_model *init, es_model **out,
                       es_error *err) {
    es_feature_spec spec;
    es_pipeline_feature_spec(frontend, &spec);
    es_model *m = NULL;
    int rc = es_model_create(&spec, frontend->mel_bands, &m);
    if (rc == ES_RNN_OK && opt->stack > 1)
        rc = es_model_add_layer(m, ES_LAYER_STACK, opt->stack * frontend->mel_bands, ES_ACT_LINEAR,
                                opt->stack);
    if (rc == ES_RNN_OK && opt->conv > 0)
        rc = es_model_add_layer(m, ES_LAYER_CONV1D, opt->conv, ES_ACT_RELU, 3);
    if (rc == ES_RNN_OK) rc = add_task_layers(opt, mf, recurrent_units(opt, init), m);
    if (rc != ES_RNN_OK) {
        es_model_destroy(m);
        return es_error_set(err, ES_TRAIN_ERR_MODEL, "cannot build the model: %s",
                            es_rnn_strerror(rc));
    }
    es_model_init_weights(m, opt->seed);
    *out = m;
    return 0;
}

/* --init: the model to start from, checked against the front end. */
static int load_init_model(const es_train_params *opt, const es_frontend_config *frontend,
                           es_model **out, es_error *err) {
    es_error load_err = {0};
    const char *role = opt->task == ES_TRAIN_VAD ? "vad" : "kws";
    if (es_pipeline_load_model(opt->init_path, role, frontend, out, &load_err) != ES_PIPELINE_OK)
        return es_error_set(err, ES_TRAIN_ERR_MODEL, "--init: %s", load_err.why);
    return 0;
}

/* Copies the matching layers of --init's model into the new one; none
 * matching is an error, since the run would silently start from scratch. */
static int start_from(const trainer_data *d, es_model *m, const es_model *init, es_error *err) {
    const es_train_params *opt = d->opt;
    const int copied = es_model_copy_matching_layers(m, init);
    if (copied < 0)
        return es_error_set(err, ES_TRAIN_ERR_MODEL, "--init: %s", es_rnn_strerror(copied));
    if (copied == 0)
        return es_error_set(
            err, ES_TRAIN_ERR_MODEL,
            "--init: %s: its first layer (%s %d) does not fit the %s model's (%s %d)",
            opt->init_path, es_layer_type_name(es_model_layer_type(init, 0)),
            es_model_layer_units(init, 0), opt->task == ES_TRAIN_VAD ? "vad" : "kws",
            es_layer_type_name(es_model_layer_type(m, 0)), es_model_layer_units(m, 0));
    if (opt->freeze > copied)
        return es_error_set(err, ES_TRAIN_ERR_MODEL,
                            "--freeze %d: only the first %d layers come from %s", opt->freeze,
                            copied, opt->init_path);
    if (d->hooks && d->hooks->started_from)
        d->hooks->started_from(opt->init_path, copied, es_model_layer_count(m), d->hooks->user);
    return 0;
}

/* Per-band mean and standard deviation of the features of a few training
 * sequences (their own draw: the training draw stays what it was), folded
 * into the first layer so training starts on standardised inputs. */
static int standardise_model_inputs(trainer_data *d, es_model *m, es_error *err) {
    enum { STATS_SEQUENCES = 64 };
    const int bands = d->frontend_config.mel_bands;
    double sum[ES_MAX_MEL_BANDS] = {0}, sum_sq[ES_MAX_MEL_BANDS] = {0};
    long frames = 0;
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ 0x7374617473ULL);
    for (int i = 0; i < STATS_SEQUENCES; i++) {
        built_sequence b = {0};
        const int rc = build_sequence(d, &d->builders[0], ES_SPLIT_TRAIN, &rng, 1, &b, err);
        if (rc != 0) return rc;
        for (int t = 0; t < b.seq.frames; t++)
            for (int k = 0; k < bands; k++) {
                const double x = b.inputs[(size_t)t * bands + k];
                sum[k] += x;
                sum_sq[k] += x * x;
            }
        frames += b.seq.frames;
        built_free(&b);
    }
    float mean[ES_MAX_MEL_BANDS], std[ES_MAX_MEL_BANDS];
    for (int k = 0; k < bands; k++) {
        mean[k] = (float)(sum[k] / (double)frames);
        const double variance = sum_sq[k] / (double)frames - (double)mean[k] * mean[k];
        std[k] = (float)sqrt(variance > 1e-6 ? variance : 1e-6);
    }
    if (es_model_standardise_inputs(m, mean, std) != ES_RNN_OK)
        return es_error_set(err, ES_TRAIN_ERR_MODEL, "cannot standardise the model's inputs");
    return 0;
}

/* ---- the data ----------------------------------------------------------------------- */

static void trainer_data_free(trainer_data *d) {
    finish_all_building(d);
    for (int s = 0; s <= d->builder_count; s++)
        for (int i = 0; i < ES_TRAIN_MAX_BATCH; i++)
            built_free(&d->slots[s].seqs[i]);
    for (int i = 0; i < d->valid_count; i++)
        built_free(&d->valid[i]);
    free(d->valid);
    free(d->valid_seqs);
    noise_pool_free(&d->noises[0]);
    noise_pool_free(&d->noises[1]);
    for (int i = 0; i < d->builder_count; i++) {
        free(d->builders[i].clean.data);
        es_frontend_destroy(d->builders[i].frontend);
    }
}

/* Augmentation, labels and the batch builders' front ends. */
static int prepare_builders(trainer_data *d, es_error *err) {
    const es_train_params *opt = d->opt;
    es_augment_config_default(&d->augment_full);
    d->augment_full.snr_db_min = opt->min_snr_db;
    d->augment_full.envelope_probability = opt->envelope_probability;
    es_speech_label_config_default(&d->labels);
    d->labels.sample_rate_hz = d->frontend_config.sample_rate_hz;
    d->labels.window_samples = d->frontend_config.window_samples;
    d->labels.hop_samples = d->frontend_config.hop_samples;
    d->batches_per_epoch = (opt->clips_per_epoch + opt->batch_size - 1) / opt->batch_size;
    if (opt->task == ES_TRAIN_KWS && d->mf->kind_count[ES_SPLIT_TRAIN][ES_KIND_KEYWORD] == 0)
        return es_error_set(err, ES_TRAIN_ERR_DATA, "%s: no keyword clips in the train split",
                            opt->manifest_path);
    d->builder_count = opt->threads < MAX_BUILDERS ? opt->threads : MAX_BUILDERS;
    for (int i = 0; i < d->builder_count; i++) {
        d->builders[i].augment = d->augment_full;
        if (es_frontend_create(&d->frontend_config, &d->builders[i].frontend) != ES_DSP_OK)
            return es_error_set(err, ES_TRAIN_ERR_MODEL, "cannot create the front end");
    }
    return 0;
}

/* Noise pools and the validation set, then the model's input standardisation
 * (a copied first layer carries its own). */
static int prepare_data(trainer_data *d, es_model *model, int from_init, es_error *err) {
    int rc;
    if ((rc = noise_pool_load(d->mf, ES_SPLIT_TRAIN, &d->noises[0], err)) != 0 ||
        (rc = noise_pool_load(d->mf, ES_SPLIT_VALID, &d->noises[1], err)) != 0 ||
        (rc = build_valid_set(d, err)) != 0)
        return rc;
    const es_train_hooks *hooks = d->hooks;
    if (hooks && hooks->sets) hooks->sets(d->valid_count, d->opt->clips_per_epoch, hooks->user);
    if (!from_init && (rc = standardise_model_inputs(d, model, err)) != 0) return rc;
    if (hooks && hooks->model)
        hooks->model(es_model_param_count(model), es_model_output_size(model), hooks->user);
    return 0;
}

/* ---- the run ------------------------------------------------------------------------- */

/* KWS with max-pooling starts from per-frame targets: the max-pool loss
 * scores one keyword frame per sequence, which barely moves an untrained
 * model (Sun et al. 2016 also start from a cross-entropy model). */
typedef struct loss_phases {
    es_loss losses[2];
    int epochs[2];
    int count;
} loss_phases;

static loss_phases plan_phases(const es_train_params *opt) {
    loss_phases p = {.count = 1};
    p.losses[0] = opt->task == ES_TRAIN_VAD ? ES_LOSS_SIGMOID_CE : ES_LOSS_SOFTMAX_CE;
    p.epochs[0] = opt->epochs;
    if (opt->task == ES_TRAIN_KWS && !opt->kws_frame_targets) {
        const int warmup = opt->warmup_epochs < opt->epochs ? opt->warmup_epochs : opt->epochs - 1;
        p.epochs[0] = warmup;
        p.losses[1] = ES_LOSS_KWS_MAXPOOL;
        p.epochs[1] = opt->epochs - warmup;
        p.count = 2;
    }
    return p;
}

static void phase_config(const es_train_params *opt, es_loss loss, int epochs, int phase,
                         es_train_config *config) {
    es_train_config_default(config);
    config->loss = loss;
    config->batch_size = opt->batch_size;
    config->learning_rate = opt->learning_rate;
    config->keyword_weight = opt->keyword_weight;
    config->negative_peak_weight = opt->negative_peak_weight;
    config->patience = opt->patience;
    config->average_decay = opt->average_decay;
    config->frozen_layers = opt->freeze;
    /* 5 % less per opt->lr_decay_sequences, whatever the epoch size. */
    config->lr_decay = (float)pow(0.95, (double)opt->clips_per_epoch / opt->lr_decay_sequences);
    config->max_epochs = epochs;
    config->threads = opt->threads;
    config->seed = opt->seed + (uint64_t)phase;
}

/* Runs one phase's epochs; returns es_train_run's result (epochs run, or
 * a negative code) or the trainer's creation error. */
static int run_phase(trainer_data *d, es_model *model, const loss_phases *phases, int phase,
                     es_trainer **trainer, es_error *err) {
    es_train_config config;
    phase_config(d->opt, phases->losses[phase], phases->epochs[phase], phase, &config);
    if (phases->count > 1 && d->hooks && d->hooks->phase)
        d->hooks->phase(config.loss == ES_LOSS_KWS_MAXPOOL, config.max_epochs, d->hooks->user);
    es_trainer_destroy(*trainer);
    *trainer = NULL;
    int rc = es_trainer_create(model, &config, trainer);
    if (rc != ES_RNN_OK)
        return es_error_set(err, ES_TRAIN_ERR_MODEL, "cannot create the trainer: %s",
                            es_rnn_strerror(rc));
    const es_train_data train_data = {next_train_batch, d, d->batches_per_epoch};
    const es_train_data valid_data = {next_valid_batch, d, 0};
    rc = es_train_run(*trainer, &train_data, d->valid_count ? &valid_data : NULL,
                      d->valid_count ? validation_metric : NULL, report_progress, d);
    if (rc < 0) {
        /* A batch or a hard-negative round that failed says why itself. */
        if (d->failure.code != 0) {
            if (err) *err = d->failure;
            return d->failure.code;
        }
        return es_error_set(err, ES_TRAIN_ERR_MODEL, "training failed: %s", es_rnn_strerror(rc));
    }
    d->epoch_offset += rc;
    return 0;
}

static int run_phases(trainer_data *d, es_model *model, es_error *err) {
    const loss_phases phases = plan_phases(d->opt);
    es_trainer *trainer = NULL;
    int rc = 0;
    if (d->hooks && d->hooks->training) d->hooks->training(1, d->hooks->user);
    d->started_s = es_monotonic_s();
    for (int phase = 0; phase < phases.count && rc == 0; phase++) {
        if (phases.epochs[phase] <= 0) continue;
        if (stop_requested(d) || d->stopped_for_time) break;
        rc = run_phase(d, model, &phases, phase, &trainer, err);
    }
    finish_all_building(d);
    if (d->hooks && d->hooks->training) d->hooks->training(0, d->hooks->user);
    es_trainer_destroy(trainer);
    return rc;
}

/* The figures at the end, then the model written. */
static int finish(trainer_data *d, es_model *model, es_error *err) {
    es_train_outcome outcome = {.params = d->opt,
                                .epochs = d->epoch_offset,
                                .interrupted = stop_requested(d),
                                .stopped_for_time = d->stopped_for_time,
                                .validated = d->valid_count > 0};
    if (outcome.validated && d->opt->task == ES_TRAIN_KWS)
        outcome.kws = kws_measure(d, model);
    else if (outcome.validated)
        outcome.vad = vad_measure(d, model);
    if (d->hooks && d->hooks->finished) d->hooks->finished(&outcome, d->hooks->user);
    es_error save_err;
    if (es_model_save(model, d->opt->output_path, &save_err) != ES_RNN_OK)
        return es_error_set(err, ES_TRAIN_ERR_OUTPUT, "%s: %s", d->opt->output_path, save_err.why);
    if (d->hooks && d->hooks->saved) d->hooks->saved(d->opt->output_path, d->hooks->user);
    return 0;
}

/* The model before the data work: a wrong --init fails at once. */
static int make_model(trainer_data *d, es_model **model, es_error *err) {
    es_model *init = NULL;
    int rc = 0;
    if (d->opt->init_path) rc = load_init_model(d->opt, &d->frontend_config, &init, err);
    if (rc == 0) rc = build_model(d->opt, d->mf, &d->frontend_config, init, model, err);
    if (rc == 0 && init) rc = start_from(d, *model, init, err);
    es_model_destroy(init);
    return rc;
}

int es_train_model(const es_train_params *params, const es_train_hooks *hooks, es_error *err) {
    es_train_params opt = *params;
    resolve_params(&opt);
    int rc = check_params(&opt, err);
    if (rc != 0) return rc;
    train_clips mf;
    if ((rc = train_clips_read(&opt, &mf, err)) != 0) {
        train_clips_free(&mf);
        return rc;
    }
    if (hooks && hooks->data) {
        es_train_data_summary summary;
        train_clips_summary(&opt, &mf, &summary);
        hooks->data(&summary, hooks->user);
    }
    trainer_data d = {.opt = &opt, .hooks = hooks, .mf = &mf};
    es_frontend_config_default(&d.frontend_config);
    es_model *model = NULL;
    if ((rc = make_model(&d, &model, err)) == 0 && (rc = prepare_builders(&d, err)) == 0 &&
        (rc = prepare_data(&d, model, opt.init_path != NULL, err)) == 0 &&
        (rc = run_phases(&d, model, err)) == 0)
        rc = finish(&d, model, err);
    es_model_destroy(model);
    trainer_data_free(&d);
    train_clips_free(&mf);
    return rc;
}
