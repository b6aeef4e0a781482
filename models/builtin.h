/*
 * The default models, compiled into the binary so `earshot` runs with no
 * other files. Each is a model file image (see rnn/model_file.c) to hand to
 * es_model_load_memory().
 */
#ifndef ES_BUILTIN_H
#define ES_BUILTIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The bytes of built-in model `name` ("vad" or "kws") and their count in
 * *size; NULL (and *size 0) for an unknown name. The bytes are static. */
const unsigned char *es_builtin_model(const char *name, size_t *size);

#ifdef __cplusplus
}
#endif
#endif
