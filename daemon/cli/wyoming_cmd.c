/*
 * `earshot wyoming` — the Wyoming server (service.h) on its own: loads the
 * models the flags name, serves until SIGINT or SIGTERM, logs to stderr with
 * the daemon's sd-daemon priority prefixes.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "service.h"

#ifndef ES_VERSION
#define ES_VERSION "unknown"
#endif

static const char wyoming_usage[] =
    "Usage: earshot wyoming [--uri tcp://HOST:PORT] [options]\n"
    "Serves keyword (wake word) detection and voice activity over the Wyoming\n"
    "protocol, as Home Assistant's Wyoming integration and satellites use it:\n"
    "describe/info, detect, audio-start/-chunk/-stop in, detection,\n"
    "not-detected, voice-started/-stopped out. Each client is its own stream.\n"
    "Stop with Ctrl-C or SIGTERM.\n"
    "\n"
    "  --uri tcp://HOST:PORT      where to listen (default " ES_WYOMING_DEFAULT_URI ");\n"
    "                             PORT 0 picks a free port (logged)\n"
    "  --max-clients N            connections served at once (default 64)\n"
    "  --client-timeout-ms N      a client silent this long is dropped (default 30000)\n"
    "  --language CODE            language listed for every keyword (default en)\n"
    "  -h, --help                 show this help\n"
    "\n"
    "%s"
    "\n"
    "Example:\n"
    "  earshot wyoming --uri tcp://0.0.0.0:10400\n"
    "  (Home Assistant: Settings > Devices & services > Add integration >\n"
    "   Wyoming Protocol, host and port of this machine)\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 model or address unusable, 2 usage error.\n";

enum { OPT_URI = 0x2000, OPT_MAX_CLIENTS, OPT_CLIENT_TIMEOUT_MS, OPT_LANGUAGE };

/* The server's threads log through this: one write per line, so that lines
 * of different clients never interleave. */
static void log_line(int priority, const char *line, void *user) {
    (void)user;
    char out[600];
    int n = snprintf(out, sizeof out, "<%d>earshot: %s\n", priority, line);
    if (n > (int)sizeof out - 1) n = (int)sizeof out - 1;
    ssize_t ignored = write(STDERR_FILENO, out, (size_t)n);
    (void)ignored;
}

static int parse_args(int argc, char **argv, es_wyoming_config *config,
                      es_cli_detector_flags *flags) {
    static const struct option options[] = {
        {"uri", required_argument, NULL, OPT_URI},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"client-timeout-ms", required_argument, NULL, OPT_CLIENT_TIMEOUT_MS},
        {"language", required_argument, NULL, OPT_LANGUAGE},
        {"help", no_argument, NULL, 'h'},
        ES_CLI_DETECTOR_LONG_OPTIONS,
        {0},
    };
    optind = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        int handled = es_cli_detector_option(flags, opt, optarg);
        if (handled < 0) return -1;
        if (handled > 0) continue;
        switch (opt) {
        case OPT_URI: {
            char host[256];
            int port;
            es_error err = {0};
            if (es_wyoming_parse_uri(optarg, host, sizeof host, &port, &err) != 0) {
                es_cli_error("wyoming: --uri: %s", err.why);
                return -1;
            }
            config->uri = optarg;
            break;
        }
        case OPT_MAX_CLIENTS:
            if (es_cli_parse_int("--max-clients", optarg, 1, 65536, &config->max_clients) != 0)
                return -1;
            break;
        case OPT_CLIENT_TIMEOUT_MS:
            if (es_cli_parse_int("--client-timeout-ms", optarg, 1, 3600000,
                                 &config->client_timeout_ms) != 0)
                return -1;
            break;
        case OPT_LANGUAGE:
            config->language = optarg;
            break;
        case 'h':
            printf(wyoming_usage, es_cli_detector_help);
            return 1;
        default:
            return es_cli_bad_option("wyoming", opt, argv);
        }
    }
    if (optind < argc) {
        es_cli_error("wyoming: unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return es_cli_detector_check(flags);
}

/* Blocks until SIGINT or SIGTERM (blocked before the server's threads start,
 * so only this thread takes them). */
static int wait_for_stop(const sigset_t *handled) {
    int sig = 0;
    while (sigwait(handled, &sig) != 0)
        ;
    return sig;
}

int es_cmd_wyoming(int argc, char **argv) {
    es_wyoming_config config;
    es_wyoming_config_default(&config);
    config.version = ES_VERSION;
    es_cli_detector_flags flags;
    es_cli_detector_flags_default(&flags);
    int parsed = parse_args(argc, argv, &config, &flags);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;

    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    es_cli_models models;
    int status = es_cli_models_load(&flags, &frontend, &models);
    if (status != ES_EXIT_OK) return status;
    config.vad_model = models.vad;
    config.kws_model_count = models.kws_count;
    for (int k = 0; k < models.kws_count; k++)
        config.kws_models[k] = models.kws[k];
    config.vad = flags.vad;
    config.kws = flags.kws;
    config.on_log = log_line;

    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &handled, NULL);
    signal(SIGPIPE, SIG_IGN);

    es_wyoming_server *server = NULL;
    es_error err = {0};
    if (es_wyoming_server_create(&config, &server, &err) != 0) {
        es_cli_error("wyoming: %s", err.why);
        es_cli_models_destroy(&models);
        return ES_EXIT_FAILURE;
    }
    char line[512];
    char host[256];
    int port;
    es_wyoming_parse_uri(config.uri, host, sizeof host, &port, NULL);
    snprintf(line, sizeof line, "wyoming: listening on tcp://%s:%d (%d keyword models)", host,
             es_wyoming_server_port(server), models.kws_count);
    log_line(ES_WYOMING_LOG_INFO, line, NULL);

    int sig = wait_for_stop(&handled);
    es_wyoming_stats stats;
    es_wyoming_server_get_stats(server, &stats);
    es_wyoming_server_destroy(server);
    snprintf(line, sizeof line,
             "wyoming: %s: stopped (%llu clients served, %llu dropped, %llu refused, %llu "
             "detections)",
             strsignal(sig), (unsigned long long)stats.accepted, (unsigned long long)stats.dropped,
             (unsigned long long)stats.rejected, (unsigned long long)stats.detections);
    log_line(ES_WYOMING_LOG_INFO, line, NULL);
    es_cli_models_destroy(&models);
    return ES_EXIT_OK;
}
