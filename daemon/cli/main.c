/*
 * earshot — one binary, many subcommands (DESIGN.md, "Command line").
 * This file only dispatches; every subcommand lives in es_daemon.
 */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

#ifndef ES_VERSION
#define ES_VERSION "unknown"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"file", es_cmd_file, "analyse recorded audio: speech segments and keywords"},
    {"bench", es_cmd_bench, "measure the speed of each stage on this machine"},
    {"mic", es_cmd_mic, "detect speech and keywords live from an input device"},
    {"devices", es_cmd_devices, "list the audio input devices"},
    {"train", es_cmd_train, "train a speech or keyword model from a data manifest"},
    {"train-keyword", es_cmd_train_keyword, "make a keyword model from nothing but the phrase"},
    {"calibrate", es_cmd_calibrate, "set a keyword model's thresholds for a false-alarm budget"},
    {"quantize", es_cmd_quantize, "make a model with int8 weights (smaller, faster)"},
    {"daemon", es_cmd_daemon, "run the detection service (systemd/earshot.service)"},
    {"listen", es_cmd_listen, "print a running daemon's events as they happen"},
    {"wyoming", es_cmd_wyoming, "serve wake words and voice activity over the Wyoming protocol"},
    {"voices", es_cmd_voices, "print the training split of each voice (for the data recipe)"},
    /* ---- Add a row here when your subcommand's implementation lands (one row
     * per command, declared in commands.h): mic, devices, daemon, listen,
     * train, train-keyword. ---- */
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name) {
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_usage(FILE *out) {
    fprintf(out, "Usage: earshot COMMAND [options] [ARGS...]\n"
                 "Detects speech and spoken keywords in audio, live or recorded.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "  earshot help COMMAND     options of one command (or: COMMAND --help)\n"
                 "  earshot --version        print the version\n");
}

static int run_help(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stdout);
        return ES_EXIT_OK;
    }
    const command *cmd = find_command(argv[1]);
    if (!cmd) {
        es_cli_error("help: unknown command '%s' (try 'earshot help')", argv[1]);
        return ES_EXIT_USAGE;
    }
    char help_flag[] = "--help";
    char *help_argv[] = {argv[1], help_flag, NULL};
    return cmd->run(2, help_argv);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return ES_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("earshot %s\n", ES_VERSION);
        return ES_EXIT_OK;
    }
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return run_help(argc - 1, argv + 1);
    const command *cmd = find_command(name);
    if (!cmd) {
        es_cli_error("unknown command '%s' (try 'earshot help')", name);
        return ES_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
