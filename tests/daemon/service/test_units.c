/*
 * The unit files: systemd accepts them (`systemd-analyze verify`) and their
 * sandbox rates an exposure of at most 2.0 (`systemd-analyze security`).
 * They are checked as the build generated them for this tree, with ExecStart
 * pointing at the built binary, because verify insists the binary exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNIT_DIR ES_BINARY_DIR "/systemd/test"
#define MAX_EXPOSURE 2.0

/* Runs a shell command; returns its exit status, output (stdout and stderr)
 * in `out`. */
static int run(const char *command, char *out, size_t size) {
    char full[2048];
    snprintf(full, sizeof full, "%s 2>&1", command);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, size - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int have_systemd_analyze(void) {
    char out[256];
    return run("systemd-analyze --version", out, sizeof out) == 0;
}

/* A private copy, so that instance names and edits do not touch the build. */
static void copy_unit(const char *from, const char *to_dir, const char *to_name,
                      const char *exec_start_override) {
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/%s", UNIT_DIR, from);
    snprintf(dst, sizeof dst, "%s/%s", to_dir, to_name);
    FILE *in = fopen(src, "r");
    assert_non_null(in);
    FILE *out = fopen(dst, "w");
    assert_non_null(out);
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        if (exec_start_override && strncmp(line, "ExecStart=", 10) == 0)
            fprintf(out, "ExecStart=%s\n", exec_start_override);
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
}

static int verify(const char *dir, const char *name, char *out, size_t size) {
    char command[1024];
    snprintf(command, sizeof command, "cd '%s' && systemd-analyze verify './%s'", dir, name);
    return run(command, out, size);
}

static void units_pass_verify(void **state) {
    (void)state;
    if (!have_systemd_analyze()) skip();
    char dir[] = "/tmp/es-units-XXXXXX";
    assert_non_null(mkdtemp(dir));
    copy_unit("earshot.service", dir, "earshot.service", NULL);
    copy_unit("earshot@.service", dir, "earshot@.service", NULL);
    copy_unit("earshot@.service", dir, "earshot@kitchen.service", NULL);
    copy_unit("earshot-wyoming.service", dir, "earshot-wyoming.service", NULL);
    const char *names[] = {"earshot.service", "earshot@.service", "earshot@kitchen.service",
                           "earshot-wyoming.service"};
    char out[8192];
    for (size_t i = 0; i < 4; i++) {
        int rc = verify(dir, names[i], out, sizeof out);
        /* Warnings (unknown keys, bad values) still exit 0: demand silence. */
        if (rc != 0 || out[0]) fail_msg("verify %s: exit %d: %s", names[i], rc, out);
    }
    /* The check is real: a unit whose binary is missing fails it. */
    copy_unit("earshot.service", dir, "broken.service", "/nonexistent/earshot daemon");
    assert_int_not_equal(verify(dir, "broken.service", out, sizeof out), 0);
    char cleanup[512];
    snprintf(cleanup, sizeof cleanup, "rm -rf '%s'", dir);
    assert_int_equal(system(cleanup), 0);
}

/* "→ Overall exposure level for earshot.service: 0.7 SAFE 😀" */
static double exposure(const char *unit_path) {
    char command[1024], out[16384];
    snprintf(command, sizeof command, "systemd-analyze security --offline=true '%s'", unit_path);
    int rc = run(command, out, sizeof out);
    const char *line = strstr(out, "Overall exposure level for ");
    if (!line) fail_msg("security %s: exit %d, no exposure line: %s", unit_path, rc, out);
    const char *colon = strchr(line, ':');
    assert_non_null(colon);
    return strtod(colon + 1, NULL);
}

static void sandbox_exposure_is_at_most_two(void **state) {
    (void)state;
    if (!have_systemd_analyze()) skip();
    char dir[] = "/tmp/es-units-XXXXXX";
    assert_non_null(mkdtemp(dir));
    copy_unit("earshot.service", dir, "earshot.service", NULL);
    copy_unit("earshot@.service", dir, "earshot@kitchen.service", NULL);
    copy_unit("earshot-wyoming.service", dir, "earshot-wyoming.service", NULL);
    const char *names[] = {"earshot.service", "earshot@kitchen.service", "earshot-wyoming.service"};
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        double level = exposure(path);
        printf("systemd-analyze security %s: exposure %.1f (limit %.1f)\n", names[i], level,
               MAX_EXPOSURE);
        assert_true(level > 0.0 && level <= MAX_EXPOSURE);
    }
    /* The figure responds to the sandbox: without it the unit rates far worse. */
    char path[512];
    snprintf(path, sizeof path, "%s/bare.service", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[Service]\nExecStart=/bin/true\n");
    fclose(f);
    assert_true(exposure(path) > 5.0);
    char cleanup[512];
    snprintf(cleanup, sizeof cleanup, "rm -rf '%s'", dir);
    assert_int_equal(system(cleanup), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(units_pass_verify),
        cmocka_unit_test(sandbox_exposure_is_at_most_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
