/*
 * `earshot daemon --config FILE`: options and messages of the service
 * (daemon/service/service.h does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "service.h"

/* The size of [events] socket in the config, which --socket replaces. */
#define SOCKET_PATH_SIZE ((size_t)ES_SERVICE_SOCKET_PATH_SIZE)

static const char daemon_usage[] =
    "Usage: earshot daemon --config FILE [--check-config] [--socket PATH]\n"
    "Runs the detection service: every source in the config is analysed\n"
    "continuously; events go to the event socket (see `earshot listen`) and,\n"
    "unless [events] stdout = no, to stdout as JSON lines.\n"
    "\n"
    "  -c, --config FILE   the configuration (reference: earshot.conf.example)\n"
    "      --check-config  validate the file and its models, then exit\n"
    "  -s, --socket PATH   event socket, overriding [events] socket\n"
    "  -h, --help          show this help\n"
    "\n"
    "Signals: SIGHUP reloads the config and models (a bad one is refused and\n"
    "the running one kept); SIGTERM or SIGINT drains and exits.\n"
    "Under systemd (Type=notify) it reports READY=1 once every source was\n"
    "started, STATUS= counters, and WATCHDOG=1 while every engine runs.\n"
    "\n"
    "Exit status: 0 stopped by a signal or config valid, 1 config, model or\n"
    "socket unusable, 2 usage error.\n";

enum { OPT_CHECK_CONFIG = 0x100 };

static int parse_daemon_args(int argc, char **argv, es_service_options *options) {
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    optind = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":c:s:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            options->config_path = optarg;
            break;
        case 's':
            options->socket_override = optarg;
            break;
        case OPT_CHECK_CONFIG:
            options->check_only = 1;
            break;
        case 'h':
            fputs(daemon_usage, stdout);
            return 1;
        default:
            es_cli_bad_option("daemon", opt, argv);
            return -1;
        }
    }
    if (optind < argc) {
        es_cli_error("daemon: unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!options->config_path) {
        es_cli_error("daemon: --config FILE is required (try 'earshot daemon --help')");
        return -1;
    }
    if (options->socket_override && (options->socket_override[0] != '/' ||
                                     strlen(options->socket_override) >= SOCKET_PATH_SIZE)) {
        es_cli_error("daemon: --socket: '%s' is not an absolute path of at most %zu bytes",
                     options->socket_override, SOCKET_PATH_SIZE - 1);
        return -1;
    }
    return 0;
}

/* --check-config's remarks that are no errors, on stdout. */
static void print_note(const char *note, void *user) {
    (void)user;
    printf("note: %s\n", note);
}

int es_cmd_daemon(int argc, char **argv) {
    es_service_options options = {.on_note = print_note};
    int parsed = parse_daemon_args(argc, argv, &options);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    es_service *svc = NULL;
    es_error err = {0};
    if (es_service_load(&options, &svc, &err) != 0) {
        /* By hand: the usual CLI message; under systemd: an error priority. */
        if (options.check_only || !getenv("NOTIFY_SOCKET"))
            es_cli_error("daemon: %s", err.why);
        else
            es_service_log_error(err.why);
        return ES_EXIT_FAILURE;
    }
    int status = ES_EXIT_OK;
    if (options.check_only)
        printf("%s: valid (%d sources, %d keyword models)\n", options.config_path,
               es_service_source_count(svc), es_service_keyword_model_count(svc));
    else
        status = es_service_run(svc) == 0 ? ES_EXIT_OK : ES_EXIT_FAILURE;
    es_service_destroy(svc);
    return status;
}
