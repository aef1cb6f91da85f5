/* Helpers shared by the awq subcommands: argument parsing, messages, the progress display. */
#ifndef AWQ_CLI_UTIL_H
#define AWQ_CLI_UTIL_H

#include <stdio.h>

#include "awq.h"

/* "awq <cmd>: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict integer / float parsing of an option value; on failure prints why and returns -1. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
int cli_parse_size(const char *cmd, const char *opt, const char *s, unsigned long long *out); /* "5GB", "500MB" */

/* True when argv[i] is -h or --help. */
int cli_is_help(const char *arg);
/* --backend NAME / --device N of the commands that open one device: 1 when `opt` is one of them
 * (its value `val` taken), 0 when not (or `val` is NULL), -1 after printing an error. */
int cli_device_option(const char *cmd, const char *opt, const char *val, const char **backend, long *device);

/* Context options wired to the CLI: log messages to stderr (warnings and errors always; info with
 * verbose), a progress bar with ETA on a terminal, plain lines otherwise, Ctrl-C cancels. */
struct cli_ui {
    int verbose;
    int quiet;
    int tty;
    double start, last_draw;
    char last_stage[128];
};
void cli_ui_init(struct cli_ui *ui, int verbose, int quiet);
void cli_context_options(struct cli_ui *ui, awq_context_options *opt);
/* Ends a progress line (newline) if one is drawn. */
void cli_ui_done(struct cli_ui *ui);
/* Installs a SIGINT handler that makes the cancel callback return nonzero. */
void cli_install_sigint(void);
int cli_interrupted(void);

/* Monotonic seconds. */
double cli_now(void);

/* Opens the device named by --backend/--device (NULL/-1: default); prints errors. */
int cli_open_device(const char *cmd, awq_context *ctx, const char *backend, int device, awq_device **out);

#endif
