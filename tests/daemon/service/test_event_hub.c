/*
 * The event hub: every live subscriber gets every event, whole and in order;
 * a subscriber that never reads is dropped without stalling anyone; churn
 * leaks no file descriptors; publishing never blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "event_socket.h"

static int count_open_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.') count++;
    closedir(dir);
    return count - 1; /* the directory's own fd */
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void socket_path(char *path, size_t size, const char *tag) {
    snprintf(path, size, "/tmp/es-hub-%s-%ld.sock", tag, (long)getpid());
}

static int connect_to(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Waits until the hub reports `count` subscribers (connects are asynchronous). */
static void wait_for_subscribers(es_event_hub *hub, uint64_t count) {
    es_event_hub_stats stats;
    for (int i = 0; i < 2000; i++) {
        es_event_hub_get_stats(hub, &stats);
        if (stats.subscribers == count) return;
        sleep_ms(2);
    }
    fail_msg("hub has %llu subscribers, expected %llu", (unsigned long long)stats.subscribers,
             (unsigned long long)count);
}

/* Events of a realistic size, so that kernel socket buffers fill as they would. */
static int make_line(char *buf, size_t size, int seq) {
    return snprintf(buf, size,
                    "{\"type\":\"speech\",\"source\":\"t\",\"seq\":%d,\"pad\":\"%0300d\"}\n", seq,
                    0);
}

/* Reads lines until EOF and returns how many arrived, in order, from seq
 * `first` on; -1 after printing the first line out of place. Runs on reader
 * threads, so it must not use cmocka's asserts. */
static int read_sequence(int fd, int first) {
    FILE *in = fdopen(fd, "r");
    if (!in) return -1;
    char line[1024], want[1024];
    int got = 0;
    while (fgets(line, sizeof line, in)) {
        make_line(want, sizeof want, first + got);
        if (strcmp(line, want) != 0) {
            fprintf(stderr, "line %d: got %s expected %s", got, line, want);
            got = -1;
            break;
        }
        got++;
    }
    fclose(in);
    return got;
}

typedef struct reader {
    int fd;
    int first_seq;
    int received;
} reader;

static void *reader_thread(void *arg) {
    reader *r = arg;
    r->received = read_sequence(r->fd, r->first_seq);
    return NULL;
}

static void subscribers_get_every_event_in_order(void **state) {
    (void)state;
    int fds_before = count_open_fds();
    char path[108];
    socket_path(path, sizeof path, "order");
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    config.socket_mode = 0600;
    /* Room for the whole burst: this test is about order, not about dropping. */
    config.backlog_events = 2000;
    config.backlog_bytes = 1 << 20;
    es_event_hub *hub;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    enum { SUBSCRIBERS = 5, EVENTS = 2000 };
    reader readers[SUBSCRIBERS];
    pthread_t threads[SUBSCRIBERS];
    for (int i = 0; i < SUBSCRIBERS; i++) {
        readers[i] = (reader){.fd = connect_to(path), .first_seq = 0};
        assert_true(readers[i].fd >= 0);
    }
    wait_for_subscribers(hub, SUBSCRIBERS);
    for (int i = 0; i < SUBSCRIBERS; i++)
        pthread_create(&threads[i], NULL, reader_thread, &readers[i]);
    char line[1024];
    for (int seq = 0; seq < EVENTS; seq++) {
        int len = make_line(line, sizeof line, seq);
        while (es_event_hub_publish(hub, line, (size_t)len) != 0)
            sleep_ms(1); /* queue full: the test, unlike a detector, may retry */
    }
    es_event_hub_destroy(hub); /* lingers until backlogs are sent, then closes */
    for (int i = 0; i < SUBSCRIBERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(readers[i].received, EVENTS);
    }
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_open_fds(), fds_before);
}

static void socket_group_is_applied(void **state) {
    (void)state;
    char path[108], group[32];
    socket_path(path, sizeof path, "group");
    /* Our own group is the one group any process may give its files. */
    snprintf(group, sizeof group, "%u", (unsigned)getegid());
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    config.socket_mode = 0640;
    config.socket_group = group;
    es_event_hub *hub;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_gid, getegid());
    assert_int_equal(st.st_mode & 0777, 0640);
    es_event_hub_destroy(hub);
}

/* A subscriber that closed its sending side is still a reader; one that
 * closed altogether is gone. */
static void half_closed_subscribers_keep_reading(void **state) {
    (void)state;
    char path[108];
    socket_path(path, sizeof path, "half");
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    es_event_hub *hub;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);
    reader half = {.fd = connect_to(path)};
    int gone = connect_to(path);
    wait_for_subscribers(hub, 2);
    assert_int_equal(shutdown(half.fd, SHUT_WR), 0);
    close(gone);
    wait_for_subscribers(hub, 1);
    pthread_t thread;
    pthread_create(&thread, NULL, reader_thread, &half);
    char line[1024];
    for (int seq = 0; seq < 10; seq++) {
        int len = make_line(line, sizeof line, seq);
        assert_int_equal(es_event_hub_publish(hub, line, (size_t)len), 0);
    }
    es_event_hub_destroy(hub);
    pthread_join(thread, NULL);
    assert_int_equal(half.received, 10);
}

static void malformed_lines_are_refused(void **state) {
    (void)state;
    char path[108];
    socket_path(path, sizeof path, "lines");
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    es_event_hub *hub;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);
    assert_int_equal(es_event_hub_publish(hub, "no newline", 10), -1);
    assert_int_equal(es_event_hub_publish(hub, "two\nlines\n", 10), -1);
    assert_int_equal(es_event_hub_publish(hub, "", 0), -1);
    assert_int_equal(es_event_hub_publish(hub, "{}\n", 3), 0);
    es_event_hub_destroy(hub);
}

static void a_live_socket_is_not_stolen_but_a_stale_one_is_replaced(void **state) {
    (void)state;
    char path[108];
    socket_path(path, sizeof path, "stale");
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    es_event_hub *hub, *second;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);
    assert_int_equal(es_event_hub_create(&config, &second, &err), -EADDRINUSE);
    assert_int_equal(err.code, -EADDRINUSE);
    assert_non_null(strstr(err.why, "another process"));
    es_event_hub_destroy(hub);

    /* A socket file whose owner died without removing it. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    close(fd);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);
    es_event_hub_destroy(hub);

    /* A regular file is never removed. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(es_event_hub_create(&config, &hub, &err), -EADDRINUSE);
    assert_non_null(strstr(err.why, "not a socket"));
    unlink(path);

    config.socket_group = "no-such-group-earshot";
    assert_int_equal(es_event_hub_create(&config, &hub, &err), -EINVAL);
    assert_non_null(strstr(err.why, "no-such-group-earshot"));
    assert_int_equal(access(path, F_OK), -1);
}

/* ---- churn ------------------------------------------------------------------------ */

typedef struct churn {
    const char *path;
    atomic_int stop;
    atomic_int connections;
} churn;

/* Connects, reads a little, disconnects; over and over. */
static void *churn_thread(void *arg) {
    churn *c = arg;
    char buf[512];
    while (!atomic_load(&c->stop)) {
        int fd = connect_to(c->path);
        if (fd < 0) continue;
        atomic_fetch_add(&c->connections, 1);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1) > 0) {
            ssize_t ignored = read(fd, buf, sizeof buf);
            (void)ignored;
        }
        close(fd);
    }
    return NULL;
}

/* on_drop: how often, and the first reason (hub thread; read after destroy). */
typedef struct drops {
    atomic_int count;
    char first[256];
} drops;

static void record_drop(const char *why, void *user) {
    drops *d = user;
    if (atomic_fetch_add(&d->count, 1) == 0) snprintf(d->first, sizeof d->first, "%s", why);
}

/* Publishes `events` numbered lines, retrying those a full queue refuses
 * (returns how many times it was refused); halfway, the stalled subscriber
 * must have been dropped. */
static uint64_t publish_paced(es_event_hub *hub, int events) {
    char line[1024];
    uint64_t refused = 0;
    for (int seq = 0; seq < events; seq++) {
        int len = make_line(line, sizeof line, seq);
        while (es_event_hub_publish(hub, line, (size_t)len) != 0) {
            refused++;
            sleep_ms(1);
        }
        /* Paced like a busy detector, so live readers can keep up even
         * on a loaded machine under sanitizers. */
        if (seq % 4 == 0) sleep_ms(1);
        if (seq == events / 2) {
            /* Everyone keeps getting events while the stalled one is full:
             * it must be gone by now. */
            es_event_hub_stats stats;
            es_event_hub_get_stats(hub, &stats);
            assert_true(stats.dropped_slow >= 1);
        }
    }
    return refused;
}

static void churn_and_a_stalled_subscriber_never_cost_live_ones_an_event(void **state) {
    (void)state;
    int fds_before = count_open_fds();
    char path[108];
    socket_path(path, sizeof path, "churn");
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    config.backlog_events = 256;
    config.backlog_bytes = 128 * 1024;
    /* Issue 35, item 10: each drop is reported, with who and why. */
    drops dropped = {.first = ""};
    atomic_init(&dropped.count, 0);
    config.on_report = record_drop;
    config.on_report_user = &dropped;
    es_event_hub *hub;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);

    /* One subscriber that never reads, with the smallest receive buffer. */
    int stalled = connect_to(path);
    int tiny = 1;
    setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
    enum { READERS = 3, EVENTS = 3000 };
    reader readers[READERS];
    pthread_t reader_threads[READERS];
    for (int i = 0; i < READERS; i++) {
        readers[i] = (reader){.fd = connect_to(path), .first_seq = 0};
        assert_true(readers[i].fd >= 0);
    }
    wait_for_subscribers(hub, READERS + 1);
    for (int i = 0; i < READERS; i++)
        pthread_create(&reader_threads[i], NULL, reader_thread, &readers[i]);

    churn c = {.path = path};
    pthread_t churners[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&churners[i], NULL, churn_thread, &c);

    uint64_t refused = publish_paced(hub, EVENTS);
    /* At least 200 connect/disconnect cycles while events flowed. */
    while (atomic_load(&c.connections) < 200)
        sleep_ms(5);
    atomic_store(&c.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(churners[i], NULL);

    es_event_hub_stats stats;
    es_event_hub_get_stats(hub, &stats);
    assert_int_equal(stats.published, EVENTS);
    assert_true(stats.dropped_slow >= 1);
    assert_true(stats.accepted >= 200 + READERS + 1);
    printf("hub: %llu accepted, %llu dropped slow, %llu publishes refused by a full queue\n",
           (unsigned long long)stats.accepted, (unsigned long long)stats.dropped_slow,
           (unsigned long long)refused);

    es_event_hub_destroy(hub);
    assert_int_equal(atomic_load(&dropped.count), stats.dropped_slow);
    char who[64];
    snprintf(who, sizeof who, "subscriber (pid %ld) dropped as slow: ", (long)getpid());
    if (!strstr(dropped.first, who) || !strstr(dropped.first, "unread"))
        fail_msg("drop reason '%s' lacks '%s'", dropped.first, who);
    for (int i = 0; i < READERS; i++) {
        pthread_join(reader_threads[i], NULL);
        assert_int_equal(readers[i].received, EVENTS);
    }
    /* The stalled subscriber sees the hub hang up on it. */
    char buf[65536];
    ssize_t n;
    while ((n = read(stalled, buf, sizeof buf)) > 0)
        ;
    assert_int_equal(n, 0);
    close(stalled);
    assert_int_equal(count_open_fds(), fds_before);
}

static void max_subscribers_turns_extra_connections_away(void **state) {
    (void)state;
    char path[108];
    socket_path(path, sizeof path, "max");
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    config.max_subscribers = 2;
    es_event_hub *hub;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);
    int a = connect_to(path), b = connect_to(path);
    wait_for_subscribers(hub, 2);
    int extra = connect_to(path);
    char byte;
    assert_int_equal(read(extra, &byte, 1), 0); /* closed at once */
    es_event_hub_stats stats;
    es_event_hub_get_stats(hub, &stats);
    assert_int_equal(stats.rejected, 1);
    close(a);
    wait_for_subscribers(hub, 1);
    close(b);
    close(extra);
    es_event_hub_destroy(hub);
}

/* With the process out of file descriptors, a pending connection keeps the
 * listener readable; the hub must wait, not spin, and accept it once fds
 * are free again. */
static void running_out_of_fds_does_not_spin_the_hub(void **state) {
    (void)state;
    char path[108];
    socket_path(path, sizeof path, "emfile");
    es_event_hub_config config;
    es_event_hub_config_default(&config);
    config.socket_path = path;
    es_event_hub *hub;
    es_error err;
    assert_int_equal(es_event_hub_create(&config, &hub, &err), 0);

    struct rlimit saved, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    tight = saved;
    tight.rlim_cur = (rlim_t)count_open_fds() + 16;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    int fillers[64], filled = 0;
    while (filled < 64 && (fillers[filled] = dup(0)) >= 0)
        filled++;
    assert_true(filled < 64);
    close(fillers[--filled]); /* room for the client's socket, none for accept */
    int client = connect_to(path);
    assert_true(client >= 0);

    struct timespec cpu0, cpu1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    sleep_ms(500);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    double cpu_ms =
        (double)(cpu1.tv_sec - cpu0.tv_sec) * 1e3 + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e6;
    printf("hub out of fds: %.1f ms of CPU in 500 ms\n", cpu_ms);
    while (filled > 0)
        close(fillers[--filled]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_true(cpu_ms < 50.0); /* spinning burns what the machine gives it: 200+ */
    wait_for_subscribers(hub, 1);
    close(client);
    es_event_hub_destroy(hub);
}

/* ---- queue ------------------------------------------------------------------------- */

typedef struct producer {
    es_line_queue *queue;
    int id;
    int count;
} producer;

static void *producer_thread(void *arg) {
    producer *p = arg;
    char line[64];
    for (int i = 0; i < p->count; i++) {
        int len = snprintf(line, sizeof line, "%d %d\n", p->id, i);
        while (es_line_queue_push(p->queue, line, (size_t)len) != 0)
            sched_yield();
    }
    return NULL;
}

static void queue_keeps_each_producers_order_across_threads(void **state) {
    (void)state;
    es_line_queue *q;
    assert_int_equal(es_line_queue_create(8, &q), 0);
    enum { PRODUCERS = 4, COUNT = 20000 };
    producer producers[PRODUCERS];
    pthread_t threads[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        producers[i] = (producer){.queue = q, .id = i, .count = COUNT};
        pthread_create(&threads[i], NULL, producer_thread, &producers[i]);
    }
    int next[PRODUCERS] = {0};
    char buf[ES_EVENT_LINE_MAX];
    for (int received = 0; received < PRODUCERS * COUNT;) {
        long len = es_line_queue_pop(q, buf);
        if (len < 0) {
            sched_yield();
            continue;
        }
        buf[len] = '\0';
        int id, seq;
        assert_int_equal(sscanf(buf, "%d %d", &id, &seq), 2);
        assert_int_equal(seq, next[id]);
        next[id]++;
        received++;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(es_line_queue_pop(q, buf), -1);
    es_line_queue_destroy(q);
}

static void a_full_queue_refuses_and_counts(void **state) {
    (void)state;
    es_line_queue *q;
    assert_int_equal(es_line_queue_create(4, &q), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(es_line_queue_push(q, "x\n", 2), 0);
    assert_int_equal(es_line_queue_push(q, "y\n", 2), -1);
    char big[ES_EVENT_LINE_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_int_equal(es_line_queue_push(q, big, sizeof big), -1);
    assert_int_equal(es_line_queue_lost(q), 2);
    char buf[ES_EVENT_LINE_MAX];
    assert_int_equal(es_line_queue_pop(q, buf), 2);
    assert_int_equal(es_line_queue_push(q, "z\n", 2), 0);
    es_line_queue_destroy(q);
}

static void line_writer_writes_everything_before_it_stops(void **state) {
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    es_line_writer *w;
    es_error err;
    assert_int_equal(es_line_writer_create(pipefd[1], 4096, &w, &err), 0);
    reader r = {.fd = pipefd[0], .first_seq = 0};
    pthread_t t;
    pthread_create(&t, NULL, reader_thread, &r);
    char line[1024];
    for (int seq = 0; seq < 1000; seq++) {
        int len = make_line(line, sizeof line, seq);
        assert_int_equal(es_line_writer_publish(w, line, (size_t)len), 0);
    }
    es_line_writer_destroy(w);
    close(pipefd[1]);
    pthread_join(t, NULL);
    assert_int_equal(r.received, 1000);
}

static int64_t monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Issue 35, item 4: a reader that never reads used to leave the writer
 * thread in a blocking write() that destroy waited on forever. Now the
 * lines that do not fit are lost and counted, and destroy returns within
 * its linger (200 ms without room). */
static void line_writer_drops_and_counts_for_a_stalled_reader(void **state) {
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    es_line_writer *w;
    es_error err;
    assert_int_equal(es_line_writer_create(pipefd[1], 64, &w, &err), 0);
    char line[1000];
    memset(line, 'x', sizeof line);
    line[sizeof line - 1] = '\n';
    /* 200 kB for a 64 kB pipe and a queue of 64 lines. */
    int published = 0;
    for (int i = 0; i < 200; i++) {
        published += es_line_writer_publish(w, line, sizeof line) == 0;
        sleep_ms(1);
    }
    int64_t start = monotonic_ms();
    uint64_t lost = es_line_writer_destroy(w);
    int64_t took = monotonic_ms() - start;
    printf("stalled reader: %d of 200 lines queued, %llu lost, destroy took %lld ms\n", published,
           (unsigned long long)lost, (long long)took);
    assert_true(took < 1000);
    /* Whatever did not reach the pipe is counted: the pipe holds the rest. */
    char buf[65536 * 4];
    ssize_t got = read(pipefd[0], buf, sizeof buf);
    assert_true(got > 0 && got % (ssize_t)sizeof line == 0);
    assert_int_equal(lost + (uint64_t)(got / (ssize_t)sizeof line), 200);
    close(pipefd[0]);
    close(pipefd[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(subscribers_get_every_event_in_order),
        cmocka_unit_test(socket_group_is_applied),
        cmocka_unit_test(half_closed_subscribers_keep_reading),
        cmocka_unit_test(malformed_lines_are_refused),
        cmocka_unit_test(a_live_socket_is_not_stolen_but_a_stale_one_is_replaced),
        cmocka_unit_test(churn_and_a_stalled_subscriber_never_cost_live_ones_an_event),
        cmocka_unit_test(max_subscribers_turns_extra_connections_away),
        cmocka_unit_test(running_out_of_fds_does_not_spin_the_hub),
        cmocka_unit_test(queue_keeps_each_producers_order_across_threads),
        cmocka_unit_test(a_full_queue_refuses_and_counts),
        cmocka_unit_test(line_writer_writes_everything_before_it_stops),
        cmocka_unit_test(line_writer_drops_and_counts_for_a_stalled_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
