/*
 * `earshot voices --split` — the split of each voice, for the data recipe.
 *
 * Reads ENGINE<TAB>VOICE lines on stdin (models/recipe/plan.pl's VOICES) and
 * writes each with a third column, its split (models/train/factory.h), so
 * that the recipe and train-keyword use the one rule. Comment (#) and blank
 * lines are copied as they are.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "factory.h"

static const char voices_usage[] =
    "Usage: earshot voices --split < VOICES\n"
    "Prints each voice of VOICES (lines ENGINE<TAB>VOICE, e.g. \"espeak\\ten-us+m3\")\n"
    "with a third column: its split, train, valid or test. espeak-ng voices go by\n"
    "their variant (after the '+'), all others train (models/train/factory.h).\n"
    "scripts/data.sh makes models/recipe/plan.pl's voice list with it.\n"
    "\n"
    "  --split      add the split column (the only mode)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit status: 0 success, 1 a malformed line or failed output, 2 usage error.\n";

/* One line without its newline: copied when a comment or blank, else
 * printed with its split. -1 (message printed) when it is not ENGINE<TAB>VOICE. */
static int print_with_split(char *line, long number) {
    const char first = line[strspn(line, " \t")];
    if (first == '\0' || first == '#') {
        puts(line);
        return 0;
    }
    char *tab = strchr(line, '\t');
    if (!tab || tab == line || tab[1] == '\0' || strchr(tab + 1, '\t')) {
        es_cli_error("voices: stdin line %ld: expected ENGINE<TAB>VOICE, found '%s'", number, line);
        return -1;
    }
    *tab = '\0';
    printf("%s\t%s\t%s\n", line, tab + 1, es_split_names[es_voice_split(line, tab + 1)]);
    return 0;
}

int es_cmd_voices(int argc, char **argv) {
    enum { OPT_SPLIT = 256 };
    static const struct option options[] = {
        {"split", no_argument, NULL, OPT_SPLIT},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int split = 0;
    optind = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_SPLIT:
            split = 1;
            break;
        case 'h':
            fputs(voices_usage, stdout);
            return ES_EXIT_OK;
        default:
            es_cli_bad_option("voices", opt, argv);
            return ES_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        es_cli_error("voices: unexpected argument '%s' (the voices come on stdin)", argv[optind]);
        return ES_EXIT_USAGE;
    }
    if (!split) {
        es_cli_error("voices: nothing to do without --split (try 'earshot voices --help')");
        return ES_EXIT_USAGE;
    }
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    long number = 0;
    int status = ES_EXIT_OK;
    while (status == ES_EXIT_OK && (length = getline(&line, &capacity, stdin)) >= 0) {
        number++;
        if (length > 0 && line[length - 1] == '\n') line[length - 1] = '\0';
        if (print_with_split(line, number) != 0) status = ES_EXIT_FAILURE;
    }
    free(line);
    if (status == ES_EXIT_OK && (ferror(stdin) || fflush(stdout) != 0 || ferror(stdout))) {
        es_cli_error("voices: reading stdin or writing stdout failed");
        status = ES_EXIT_FAILURE;
    }
    return status;
}
