/*
 * Training batches, built ahead on threads of their own, and the validation
 * set (factory.h). Reading, resampling, augmenting and framing clips
 * costs more than a small model's gradient, so several batches are built
 * while the trainer's workers compute the current one. Each batch draws from
 * a generator seeded by its number, so what it holds does not depend on the
 * threads or their timing.
 */
#include <stdlib.h>
#include <string.h>

#include "train_model_internal.h"

static void build_batch(trainer_data *d, batch_slot *s) {
    sequence_builder *b = &d->builders[s->number % d->builder_count];
    const long epoch = s->number / d->batches_per_epoch;
    const int index = (int)(s->number % d->batches_per_epoch);
    const int ramp = d->opt->augment_ramp_epochs;
    es_augment_config_scale(&d->augment_full,
                            ramp > 0 ? (float)(epoch + 1) / (float)(ramp + 1) : 1.0f, &b->augment);
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(s->number + 1)));
    const int remaining = d->opt->clips_per_epoch - index * d->opt->batch_size;
    const int n = remaining < d->opt->batch_size ? remaining : d->opt->batch_size;
    s->count = 0;
    s->status = ES_RNN_OK;
    for (int i = 0; i < n; i++) {
        built_free(&s->seqs[i]);
        if (build_sequence(d, b, ES_SPLIT_TRAIN, &rng, 1, &s->seqs[i], &s->error) != 0) {
            s->status = ES_RNN_ERR_IO;
            return;
        }
        s->views[i] = s->seqs[i].seq;
        s->count++;
    }
}

static void *batch_builder(void *user) {
    batch_slot *s = user;
    build_batch(s->owner, s);
    return NULL;
}

static void finish_building(batch_slot *s) {
    if (s->building) pthread_join(s->thread, NULL);
    s->building = 0;
}

void finish_all_building(trainer_data *d) {
    for (int i = 0; i <= d->builder_count; i++)
        finish_building(&d->slots[i]);
}

static batch_slot *slot_of(trainer_data *d, long number) {
    return &d->slots[number % (d->builder_count + 1)];
}

int hard_round_before(const trainer_data *d, long number) {
    const int every = d->opt->hard_negative_epochs;
    const long epoch = number / d->batches_per_epoch;
    return every > 0 && number % d->batches_per_epoch == 0 && epoch > 0 && epoch % every == 0;
}

/* Without a thread, the batch is built when it is asked for. */
static void start_building(trainer_data *d, long number) {
    batch_slot *s = slot_of(d, number);
    if (s->claimed && s->number == number) return;
    finish_building(s);
    s->number = number;
    s->owner = d;
    s->building = pthread_create(&s->thread, NULL, batch_builder, s) == 0;
    s->claimed = s->building;
}

int next_train_batch(void *user, int epoch, int index, const es_sequence **batch, int *count) {
    trainer_data *d = user;
    if (d->hard_failed) return ES_RNN_ERR_NOMEM;
    if (index >= d->batches_per_epoch || stop_requested(d)) return 0;
    const long number = (long)(d->epoch_offset + epoch) * d->batches_per_epoch + index;
    batch_slot *s = slot_of(d, number);
    finish_building(s);
    if (!s->claimed || s->number != number) {
        /* Not built ahead (the first batch, or no thread to be had): built
         * here, with no builder busy on another batch that may share its state. */
        finish_all_building(d);
        s->number = number;
        build_batch(d, s);
    }
    s->claimed = 0;
    if (s->status != ES_RNN_OK) {
        d->failure = s->error; /* es_train_model reports it */
        return s->status;
    }
    /* The next builder_count batches on their way, in the other slots: the
     * trainer reads this one until the next call. Not past a hard-negative
     * round: the batches after it draw from what it finds. */
    for (long ahead = number + 1; ahead <= number + d->builder_count; ahead++) {
        if (hard_round_before(d, ahead)) break;
        start_building(d, ahead);
    }
    *batch = s->views;
    *count = s->count;
    return 1;
}

int next_valid_batch(void *user, int epoch, int index, const es_sequence **batch, int *count) {
    trainer_data *d = user;
    (void)epoch;
    const int start = index * d->opt->batch_size;
    if (start >= d->valid_count) return 0;
    const int left = d->valid_count - start;
    *batch = d->valid_seqs + start;
    *count = left < d->opt->batch_size ? left : d->opt->batch_size;
    return 1;
}

int build_valid_set(trainer_data *d, es_error *err) {
    const int has_valid = d->mf->kind_count[ES_SPLIT_VALID][ES_KIND_KEYWORD] +
                              d->mf->kind_count[ES_SPLIT_VALID][ES_KIND_SENTENCE] +
                              d->mf->kind_count[ES_SPLIT_VALID][ES_KIND_SPEECH] >
                          0;
    if (!has_valid) return 0;
    d->valid = calloc((size_t)d->opt->valid_clips, sizeof(built_sequence));
    d->valid_seqs = calloc((size_t)d->opt->valid_clips, sizeof(es_sequence));
    if (!d->valid || !d->valid_seqs)
        return es_error_set(err, ES_TRAIN_ERR_NOMEM, "validation set: out of memory");
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ 0x76616c6964ULL); /* the same draw whatever the epochs */
    for (int i = 0; i < d->opt->valid_clips; i++) {
        const int rc =
            build_sequence(d, &d->builders[0], ES_SPLIT_VALID, &rng, 0, &d->valid[i], err);
        if (rc != 0) return rc;
        d->valid_seqs[i] = d->valid[i].seq;
        d->valid_count++;
    }
    return 0;
}
