/*
 * libFuzzer target for the daemon's config parser: whatever the bytes,
 * parsing either succeeds with a config that passes its own checks, or fails
 * with a message that names the file (and a line within the text).
 * Registered by tests/daemon/service/CMakeLists.txt.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_lines(const uint8_t *data, size_t size) {
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    es_daemon_config config;
    es_error err = {0};
    int rc = es_daemon_config_parse((const char *)data, size, "fuzz.conf", &config, &err);
    if (rc != 0) {
        if (rc != ES_CONFIG_ERR || err.code != ES_CONFIG_ERR) abort();
        if (strncmp(err.why, "fuzz.conf:", 10) != 0) abort();
        /* "fuzz.conf:LINE: ..." names a line of the text; "fuzz.conf: ..." none. */
        char *end;
        long line = strtol(err.why + 10, &end, 10);
        if (end > err.why + 10 && *end == ':' && (line < 1 || line > count_lines(data, size)))
            abort();
        return 0;
    }
    if (config.source_count < 1 || config.source_count > ES_CONFIG_MAX_SOURCES) abort();
    for (int i = 0; i < config.source_count; i++)
        if (!config.sources[i].kind || !config.sources[i].target[0]) abort();
    if (es_vad_config_check(&config.vad, NULL) || es_kws_config_check(&config.kws, NULL)) abort();
    return 0;
}
