/*
 * `earshot listen [--socket PATH]` — prints the daemon's events as they happen.
 *
 * A plain subscriber of the event socket: every line the daemon sends is
 * copied to stdout and flushed at once, so a pipe (`| jq`) sees each event
 * when it happens. Ends with status 0 when the daemon closes the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"

#define DEFAULT_SOCKET_PATH "/run/earshot/events.sock"

static const char listen_usage[] =
    "Usage: earshot listen [--socket PATH]\n"
    "Prints the events of a running `earshot daemon` as they happen, one JSON\n"
    "object per line.\n"
    "\n"
    "  -s, --socket PATH   the daemon's event socket (" DEFAULT_SOCKET_PATH ";\n"
    "                      earshot@NAME.service: /run/earshot/NAME/events.sock)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Example:\n"
    "  earshot listen | jq -r 'select(.type == \"keyword\") | .keyword'\n"
    "\n"
    "Exit status: 0 when the daemon closes the socket, 1 if it cannot be reached\n"
    "or output fails, 2 usage error.\n";

/* With stdout closed, the socket would be given descriptor 1 and every event
 * would be written back into the daemon's socket, forever: stdout must be
 * open for writing before the socket is made. */
static int check_stdout(void) {
    int flags = fcntl(STDOUT_FILENO, F_GETFL);
    if (flags < 0) {
        es_cli_error("listen: stdout: %s (nowhere to print the events)", strerror(errno));
        return -1;
    }
    if ((flags & O_ACCMODE) == O_RDONLY) {
        es_cli_error("listen: stdout: is open for reading only (nowhere to print the events)");
        return -1;
    }
    return 0;
}

static int connect_socket(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Copies everything the daemon sends to stdout until it hangs up. Events
 * are whole lines, so writing each read as it comes keeps lines whole. */
static int copy_events(int fd) {
    char buf[8192];
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got == 0) return ES_EXIT_OK;
        if (got < 0) {
            if (errno == EINTR) continue;
            es_cli_error("listen: reading the event socket: %s", strerror(errno));
            return ES_EXIT_FAILURE;
        }
        if (fwrite(buf, 1, (size_t)got, stdout) != (size_t)got || fflush(stdout) != 0) {
            es_cli_error("listen: writing to stdout: %s", strerror(errno));
            return ES_EXIT_FAILURE;
        }
    }
}

int es_cmd_listen(int argc, char **argv) {
    static const struct option options[] = {
        {"socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *path = DEFAULT_SOCKET_PATH;
    optind = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":s:h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'h':
            fputs(listen_usage, stdout);
            return ES_EXIT_OK;
        default:
            es_cli_bad_option("listen", opt, argv);
            return ES_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        es_cli_error("listen: unexpected argument '%s' (try 'earshot listen --help')",
                     argv[optind]);
        return ES_EXIT_USAGE;
    }
    if (check_stdout() != 0) return ES_EXIT_FAILURE;
    int fd = connect_socket(path);
    if (fd < 0) {
        int saved = errno;
        es_cli_error("listen: cannot connect to %s: %s%s", path, strerror(saved),
                     saved == ENOENT || saved == ECONNREFUSED ? " (is earshot daemon running?)"
                                                              : "");
        return ES_EXIT_FAILURE;
    }
    int status = copy_events(fd);
    close(fd);
    return status;
}
