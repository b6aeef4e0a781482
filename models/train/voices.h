/*
 * voices — which split (train, valid or test) a synthetic voice belongs to.
 *
 * A voice is in exactly one split (models/MANIFEST.md), and the split is a
 * function of the voice's name alone, so that the data recipe
 * (models/recipe/plan.pl, through `earshot voices --split`) and
 * `earshot train-keyword` agree without sharing a table:
 *
 * - espeak-ng voices named ACCENT+VARIANT go by their variant (everything
 *   after the first '+'): FNV-1a (32-bit) of the variant's bytes, mod 10:
 *   0 valid, 1 test, anything else train. Splitting by variant rather than
 *   by voice means a held-out variant is never heard in training with any
 *   accent, so valid and test measure voices the model has not met.
 * - plain accents ("en-us": no variant) and every other engine's voices
 *   (flite's "kal", "slt") train: there are too few of them to hold out.
 *
 * The rule is data: changing it moves voices between splits and so changes
 * every model trained afterwards (tests/models/train/test_voices.c pins it).
 */
#ifndef ES_VOICES_H
#define ES_VOICES_H

#include "manifest.h" /* es_split, es_split_names */

/* The split of VOICE of ENGINE ("espeak", "flite"; case matters). */
es_split es_voice_split(const char *engine, const char *voice);

#endif
