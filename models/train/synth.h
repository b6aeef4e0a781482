/*
 * espeak-ng inside this process, for train-keyword's thousands of short
 * clips: what `espeak-ng -v VOICE -s RATE -p PITCH -w RAW -- TEXT` followed by
 * `sox RAW -r 16000 -c 1 -b 16 CLIP silence 1 0.01 -45d reverse silence 1
 * 0.01 -45d reverse` made, without starting two programs and a shell per
 * clip (27 + 13 + 8 ms of process start-up against about 2 ms of synthesis).
 *
 * espeak-ng keeps state from one utterance to the next (the same text
 * twice gives different samples), so each clip is made in a process forked
 * from one where es_synth_start ran: every clip starts from the state a fresh
 * `espeak-ng` starts from, and a clip's samples do not depend on which
 * worker made it or what that worker made before.
 */
#ifndef ES_SYNTH_H
#define ES_SYNTH_H

#include <stddef.h>

#include "error.h"

/* What failed, for the calls that return an error (with `err` saying more). */
enum {
    ES_SYNTH_ERR_ESPEAK = -1, /* espeak-ng: no data, no such voice, or it cannot say the text */
    ES_SYNTH_ERR_NOMEM = -2,
    ES_SYNTH_ERR_IO = -3, /* the clip cannot be written */
};

/* Loads espeak-ng's data (the system's). Returns 0 or ES_SYNTH_ERR_ESPEAK.
 * Once per process, before forking the workers. */
int es_synth_start(es_error *err);

/* Speaks TEXT (espeak-ng's input: [[...]] is phoneme input) in VOICE
 * ("accent+variant", as `espeak-ng -v` takes it) at RATE words per minute
 * and PITCH (0-99), and writes PATH: 16 kHz mono 16-bit WAV, the silence
 * under -45 dBFS cut from both ends, the level lowered if resampling would
 * clip. Returns 0 or an ES_SYNTH_ERR_* code; `err` names the voice, the
 * text or the path at fault. */
int es_synth_espeak_clip(const char *voice, int rate, int pitch, const char *text, const char *path,
                         es_error *err);

/* The trimming alone, on 16 kHz samples: the first and one past the last
 * sample kept (sox's `silence 1 0.01 -45d`, from each end: the first run of
 * 10 ms whose 20 ms RMS is above -45 dBFS starts the clip). */
void es_synth_trim(const float *samples, size_t count, size_t *begin, size_t *end);

#endif
