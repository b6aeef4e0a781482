/*
 * es_train_run: the epoch loop calls the data source anew each epoch,
 * reports progress, decays the learning rate, stops early after `patience`
 * epochs without a better validation metric and leaves the best weights in
 * the model, judges a running average of the weights when asked to while
 * training goes on from the last step's, stops when progress asks, and
 * passes a data source's error on; frozen layers (config.frozen_layers) stay
 * bit-identical through a run while the others learn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_train_fixtures.h"

#define BATCHES 3

typedef struct run_log {
    test_recall_batch data; /* regenerated for every batch */
    test_rng rng;
    int fail_at_epoch; /* the source reports an error in this epoch (-1: never) */
    int calls_per_epoch[16];
    /* progress */
    int reports, epoch_reports, stop_after_reports;
    float learning_rates[16];
    int eta_known;
    /* metric: scripted values, and the weights seen at each epoch's end */
    const float *metrics;
    int metric_calls;
    float *weights_at[16];
    size_t param_count;
} run_log;

static int next_batch(void *user, int epoch, int index, const es_sequence **batch, int *count) {
    run_log *log = user;
    if (epoch == log->fail_at_epoch) return ES_RNN_ERR_IO;
    if (index >= BATCHES) return 0;
    log->calls_per_epoch[epoch]++;
    test_make_recall_batch(&log->data, &log->rng);
    *batch = log->data.seqs;
    *count = TEST_RECALL_BATCH;
    return 1;
}

static int on_progress(const es_train_progress *p, void *user) {
    run_log *log = user;
    log->reports++;
    assert_true(p->batches_per_epoch == BATCHES);
    assert_true(p->batch >= 1 && p->batch <= BATCHES);
    assert_true(isfinite(p->train_loss) && p->elapsed_s >= 0.0);
    if (p->epoch_done) {
        assert_int_equal(p->epoch, log->epoch_reports);
        log->learning_rates[log->epoch_reports++] = p->learning_rate;
        log->eta_known += p->eta_s >= 0.0;
    }
    return log->stop_after_reports > 0 && log->reports >= log->stop_after_reports;
}

static float scripted_metric(es_model *m, void *user) {
    run_log *log = user;
    size_t bytes = sizeof(float) * log->param_count;
    log->weights_at[log->metric_calls] = malloc(bytes);
    assert_non_null(log->weights_at[log->metric_calls]);
    memcpy(log->weights_at[log->metric_calls], es_model_params(m), bytes);
    return log->metrics[log->metric_calls++];
}

typedef struct fixture {
    es_model *model;
    es_trainer *trainer;
    run_log log;
} fixture;

static void setup_averaged(fixture *f, int patience, float lr_decay, float average_decay) {
    memset(f, 0, sizeof *f);
    test_layer layers[] = {{ES_LAYER_GRU, 8, ES_ACT_TANH, 0}};
    f->model = test_model(TEST_RECALL_INPUTS, layers, 1, 2, ES_ACT_SOFTMAX, 3);
    assert_non_null(f->model);
    es_train_config config;
    es_train_config_default(&config);
    config.max_epochs = 10;
    config.patience = patience;
    config.lr_decay = lr_decay;
    config.threads = 1;
    config.average_decay = average_decay;
    assert_int_equal(es_trainer_create(f->model, &config, &f->trainer), ES_RNN_OK);
    f->log.rng.state = 7;
    f->log.fail_at_epoch = -1;
    f->log.param_count = es_model_param_count(f->model);
}

static void setup(fixture *f, int patience, float lr_decay) {
    setup_averaged(f, patience, lr_decay, 0.0f);
}

static void teardown(fixture *f) {
    for (int i = 0; i < 16; i++)
        free(f->log.weights_at[i]);
    es_trainer_destroy(f->trainer);
    es_model_destroy(f->model);
}

static void test_early_stopping_keeps_the_best_weights(void **state) {
    (void)state;
    fixture f;
    setup(&f, 2, 0.5f);
    static const float metrics[] = {1.0f, 3.0f, 2.0f, 2.5f, 9.0f};
    f.log.metrics = metrics;
    es_train_data train = {next_batch, &f.log, BATCHES};
    int epochs = es_train_run(f.trainer, &train, NULL, scripted_metric, on_progress, &f.log);
    /* best at epoch 1; epochs 2 and 3 do not beat it; patience 2 stops there */
    assert_int_equal(epochs, 4);
    assert_int_equal(f.log.metric_calls, 4);
    for (int e = 0; e < 4; e++)
        assert_int_equal(f.log.calls_per_epoch[e], BATCHES);
    assert_int_equal(f.log.reports, 4 * BATCHES + 4);
    assert_int_equal(f.log.epoch_reports, 4);
    assert_true(f.log.eta_known == 4);
    for (int e = 1; e < 4; e++)
        assert_float_equal(f.log.learning_rates[e], 0.5f * f.log.learning_rates[e - 1], 1e-9);
    assert_memory_equal(es_model_params(f.model), f.log.weights_at[1],
                        sizeof(float) * f.log.param_count);
    assert_memory_not_equal(f.log.weights_at[3], f.log.weights_at[1],
                            sizeof(float) * f.log.param_count);
    teardown(&f);
}

/* The metric sees (and the model keeps) the average of the weights after
 * each step, D * average + (1 - D) * weights, while the steps go on from the
 * last step's weights: a second trainer stepping through the same batches by
 * hand, averaging as it goes, must meet the same figures. */
static void test_the_weight_average_is_judged_and_kept(void **state) {
    (void)state;
    /* 0.1: below the warm-up's (1 + k) / (10 + k), so the decay is 0.1 throughout */
    const float decay = 0.1f;
    fixture f;
    setup_averaged(&f, 2, 0.5f, decay);
    static const float metrics[] = {1.0f, 3.0f, 2.0f, 2.5f};
    f.log.metrics = metrics;
    es_train_data train = {next_batch, &f.log, BATCHES};
    assert_int_equal(es_train_run(f.trainer, &train, NULL, scripted_metric, NULL, &f.log), 4);

    fixture by_hand;
    setup(&by_hand, 2, 0.5f);
    const size_t n = by_hand.log.param_count;
    float *average = malloc(sizeof(float) * n);
    assert_non_null(average);
    memcpy(average, es_model_params(by_hand.model), sizeof(float) * n);
    for (int epoch = 0; epoch < 4; epoch++) {
        for (int b = 0; b < BATCHES; b++) {
            test_make_recall_batch(&by_hand.log.data, &by_hand.log.rng);
            assert_false(
                isnan(es_trainer_step(by_hand.trainer, by_hand.log.data.seqs, TEST_RECALL_BATCH)));
            const float *weights = es_model_params(by_hand.model);
            for (size_t i = 0; i < n; i++)
                average[i] = decay * average[i] + (1.0f - decay) * weights[i];
        }
        es_trainer_set_learning_rate(by_hand.trainer,
                                     0.5f * es_trainer_learning_rate(by_hand.trainer));
        for (size_t i = 0; i < n; i++)
            assert_float_equal(f.log.weights_at[epoch][i], average[i], 1e-6);
        /* the average is not the last step's weights */
        assert_memory_not_equal(f.log.weights_at[epoch], es_model_params(by_hand.model),
                                sizeof(float) * n);
    }
    /* epoch 1's average was the best */
    assert_memory_equal(es_model_params(f.model), f.log.weights_at[1], sizeof(float) * n);
    free(average);
    teardown(&by_hand);
    teardown(&f);
}

/* With a validation source and no metric, the metric is -validation loss:
 * training this task lowers it, so the best epoch is a late one. */
static void test_validation_loss_drives_the_choice(void **state) {
    (void)state;
    fixture f;
    setup(&f, 3, 1.0f);
    run_log valid_log = f.log;
    valid_log.rng.state = 99;
    es_train_data train = {next_batch, &f.log, BATCHES};
    es_train_data valid = {next_batch, &valid_log, BATCHES};
    int epochs = es_train_run(f.trainer, &train, &valid, NULL, on_progress, &f.log);
    assert_true(epochs >= 1 && epochs <= 10);
    assert_int_equal(valid_log.calls_per_epoch[0], BATCHES);
    assert_int_equal(f.log.epoch_reports, epochs);
    teardown(&f);
}

static void test_progress_can_stop_and_errors_pass_on(void **state) {
    (void)state;
    fixture f;
    setup(&f, 5, 1.0f);
    f.log.stop_after_reports = 2; /* in the middle of epoch 0 */
    es_train_data train = {next_batch, &f.log, BATCHES};
    assert_int_equal(es_train_run(f.trainer, &train, NULL, NULL, on_progress, &f.log), 0);
    assert_int_equal(f.log.calls_per_epoch[0], 2);
    teardown(&f);

    setup(&f, 5, 1.0f);
    f.log.fail_at_epoch = 1;
    train.user = &f.log;
    assert_int_equal(es_train_run(f.trainer, &train, NULL, NULL, NULL, NULL), ES_RNN_ERR_IO);
    assert_int_equal(f.log.calls_per_epoch[0], BATCHES);
    teardown(&f);
}

/* GRU -> GRU -> DENSE with weight decay and a running average (either
 * would move a weight whose gradient is merely zero) and two threads. */
static es_trainer *frozen_trainer(es_model *m, int frozen_layers) {
    es_train_config config;
    es_train_config_default(&config);
    config.max_epochs = 3;
    config.threads = 2;
    config.weight_decay = 0.01f;
    config.average_decay = 0.9f;
    config.frozen_layers = frozen_layers;
    es_trainer *t = NULL;
    return es_trainer_create(m, &config, &t) == ES_RNN_OK ? t : NULL;
}

static es_model *two_gru_model(void) {
    test_layer layers[] = {{ES_LAYER_GRU, 8, ES_ACT_TANH, 0}, {ES_LAYER_GRU, 8, ES_ACT_TANH, 0}};
    return test_model(TEST_RECALL_INPUTS, layers, 2, 2, ES_ACT_SOFTMAX, 5);
}

/* The frozen layers' weights after es_train_run are those before it, bit for
 * bit; every layer above them changed. A frozen layer gets a zero gradient
 * and the layers above it the very gradient they get unfrozen. */
static void test_frozen_layers_stay_as_they_were(void **state) {
    (void)state;
    for (int frozen = 1; frozen <= 2; frozen++) {
        es_model *m = two_gru_model();
        assert_non_null(m);
        const size_t n = es_model_param_count(m);
        float *before = malloc(sizeof(float) * n);
        assert_non_null(before);
        memcpy(before, es_model_params(m), sizeof(float) * n);
        es_trainer *t = frozen_trainer(m, frozen);
        assert_non_null(t);
        run_log log = {.rng = {.state = 11}, .fail_at_epoch = -1};
        es_train_data train = {next_batch, &log, BATCHES};
        assert_int_equal(es_train_run(t, &train, NULL, NULL, NULL, NULL), 3);
        const float *after = es_model_params(m);
        for (int l = 0; l < es_model_layer_count(m); l++) {
            const es_layer *layer = &m->layers[l];
            const size_t bytes = sizeof(float) * layer->param_count;
            if (l < frozen)
                assert_memory_equal(after + layer->param_offset, before + layer->param_offset,
                                    bytes);
            else
                assert_memory_not_equal(after + layer->param_offset, before + layer->param_offset,
                                        bytes);
        }
        es_trainer_destroy(t);
        free(before);
        es_model_destroy(m);
    }

    es_model *m = two_gru_model();
    assert_non_null(m);
    const size_t n = es_model_param_count(m);
    es_trainer *all = frozen_trainer(m, 0), *head = frozen_trainer(m, 1);
    assert_non_null(all);
    assert_non_null(head);
    test_rng rng = {.state = 3};
    test_recall_batch batch;
    test_make_recall_batch(&batch, &rng);
    float *g_all = malloc(sizeof(float) * n), *g_head = malloc(sizeof(float) * n);
    assert_non_null(g_all);
    assert_non_null(g_head);
    es_trainer_gradient(all, batch.seqs, TEST_RECALL_BATCH, g_all);
    es_trainer_gradient(head, batch.seqs, TEST_RECALL_BATCH, g_head);
    const size_t split = m->layers[1].param_offset;
    for (size_t i = 0; i < split; i++)
        assert_true(g_head[i] == 0.0f);
    assert_memory_equal(g_head + split, g_all + split, sizeof(float) * (n - split));
    free(g_all);
    free(g_head);
    es_trainer_destroy(all);
    es_trainer_destroy(head);

    /* The last layer always trains. */
    assert_null(frozen_trainer(m, 3));
    es_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_layers_stay_as_they_were),
        cmocka_unit_test(test_early_stopping_keeps_the_best_weights),
        cmocka_unit_test(test_the_weight_average_is_judged_and_kept),
        cmocka_unit_test(test_validation_loss_drives_the_choice),
        cmocka_unit_test(test_progress_can_stop_and_errors_pass_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
