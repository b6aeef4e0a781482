/* A scratch folder for tests that synthesise speech with espeak-ng and sox:
 * made only when both tools are installed (else `folder` stays empty and the
 * tests that need it skip), and removed with its contents afterwards. */
#ifndef ES_TEST_SYNTH_FOLDER_H
#define ES_TEST_SYNTH_FOLDER_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* folder: at least 64 bytes; name: a few letters that say whose it is. */
static inline int synth_folder_make(char *folder, size_t size, const char *name) {
    folder[0] = '\0';
    if (system("command -v espeak-ng >/dev/null 2>&1 && command -v sox >/dev/null 2>&1") != 0)
        return 0;
    snprintf(folder, size, "/tmp/earshot-%s-XXXXXX", name);
    return mkdtemp(folder) ? 0 : -1;
}

static inline int synth_folder_remove(const char *folder) {
    if (folder[0] == '\0') return 0;
    char command[4096 + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", folder);
    return system(command) == 0 ? 0 : -1;
}

#endif
