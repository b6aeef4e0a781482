/* Looks up the model images that embed_models.cmake generated at build time. */
#include <string.h>

#include "builtin.h"
#include "builtin_models_data.h"

const unsigned char *es_builtin_model(const char *name, size_t *size) {
    for (size_t i = 0; name && i < sizeof es_builtin_table / sizeof es_builtin_table[0]; i++) {
        if (strcmp(es_builtin_table[i].name, name) == 0) {
            if (size) *size = es_builtin_table[i].size;
            return es_builtin_table[i].bytes;
        }
    }
    if (size) *size = 0;
    return NULL;
}
