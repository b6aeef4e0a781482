/*
 * Subcommands of the `earshot` binary. Each takes the arguments after its own
 * name (argv[0] is the subcommand's name) and returns the process exit status:
 * 0 success, 1 runtime failure, 2 usage error (DESIGN.md, "Command line").
 */
#ifndef ES_COMMANDS_H
#define ES_COMMANDS_H

int es_cmd_file(int argc, char **argv);          /* file_cmd.c */
int es_cmd_bench(int argc, char **argv);         /* bench_cmd.c */
int es_cmd_mic(int argc, char **argv);           /* mic_cmd.c */
int es_cmd_devices(int argc, char **argv);       /* mic_cmd.c */
int es_cmd_daemon(int argc, char **argv);        /* daemon_cmd.c */
int es_cmd_listen(int argc, char **argv);        /* listen_cmd.c */
int es_cmd_train(int argc, char **argv);         /* train_cmd.c */
int es_cmd_train_keyword(int argc, char **argv); /* train_keyword_cmd.c */
int es_cmd_calibrate(int argc, char **argv);     /* calibrate_cmd.c */
int es_cmd_quantize(int argc, char **argv);      /* quantize_cmd.c */
int es_cmd_wyoming(int argc, char **argv);       /* wyoming_cmd.c */
int es_cmd_voices(int argc, char **argv);        /* voices_cmd.c */

/* `earshot train`'s printing of a run (train_cmd.c), which train-keyword's
 * training step prints too: its progress hooks, and an error of
 * es_train_model as "earshot: WHY" or "earshot: train: WHY" (models/train/
 * train_model.h). SIGINT is answered by each command itself, through
 * es_train_params.stop. */
struct es_train_hooks;
struct es_error;
void es_train_cli_hooks(struct es_train_hooks *hooks);
void es_train_cli_report_error(const struct es_error *err);

#endif
