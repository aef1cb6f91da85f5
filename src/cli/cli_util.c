#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_util.h"

static void vmsg(const char *cmd, const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "awq %s: %s", cmd, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, "error: ", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, "warning: ", fmt, ap);
    va_end(ap);
}

int cli_is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int cli_device_option(const char *cmd, const char *opt, const char *val, const char **backend, long *device)
{
    if (!val)
        return 0;
    if (!strcmp(opt, "--backend")) {
        *backend = val;
        return 1;
    }
    if (!strcmp(opt, "--device"))
        return cli_parse_int(cmd, opt, val, 0, 1024, device) < 0 ? -1 : 1;
    return 0;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || errno || *end || v < lo || v > hi) {
        cli_error(cmd, "%s needs a whole number from %ld to %ld, not '%s'", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || errno || *end || !(v >= lo && v <= hi)) {
        cli_error(cmd, "%s needs a number from %g to %g, not '%s'", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_size(const char *cmd, const char *opt, const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    double mult = 1;
    if (s && !errno && end != s) {
        if (!strcasecmp(end, "") || !strcasecmp(end, "B"))
            mult = 1;
        else if (!strcasecmp(end, "KB") || !strcasecmp(end, "K"))
            mult = 1e3;
        else if (!strcasecmp(end, "MB") || !strcasecmp(end, "M"))
            mult = 1e6;
        else if (!strcasecmp(end, "GB") || !strcasecmp(end, "G"))
            mult = 1e9;
        else if (!strcasecmp(end, "KiB"))
            mult = 1024.0;
        else if (!strcasecmp(end, "MiB"))
            mult = 1048576.0;
        else if (!strcasecmp(end, "GiB"))
            mult = 1073741824.0;
        else
            mult = -1;
    }
    if (!s || errno || end == s || mult < 0 || !(v > 0) || v * mult > 1e15) {
        cli_error(cmd, "%s needs a size such as 5GB or 500MB, not '%s'", opt, s ? s : "");
        return -1;
    }
    *out = (unsigned long long)(v * mult);
    return 0;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupted)        /* a second Ctrl-C: stop now */
        _exit(130);
    interrupted = 1;
}

void cli_install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupted(void)
{
    return interrupted;
}

static int cancel_cb(void *user)
{
    (void)user;
    return interrupted;
}

static void log_cb(void *user, awq_log_level level, const char *msg)
{
    struct cli_ui *ui = user;
    if (ui->tty && ui->last_stage[0])
        fputs("\r\033[K", stderr);   /* the message replaces the progress line; it is redrawn */
    static const char *names[] = { "error", "warning", "info", "debug" };
    fprintf(stderr, "awq: %s: %s\n", names[level], msg);
}

static void fmt_time(char *out, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(out, n, "--:--");
    else if (s < 3600)
        snprintf(out, n, "%02d:%02d", (int)s / 60, (int)s % 60);
    else
        snprintf(out, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
}

static void progress_cb(void *user, const char *stage, double done, double total)
{
    struct cli_ui *ui = user;
    if (ui->quiet)
        return;
    double now = cli_now();
    int new_stage = strncmp(stage, ui->last_stage, sizeof ui->last_stage - 1) != 0;
    int finished = total > 0 && done >= total;
    if (!ui->tty) {
        /* plain lines: one at each new stage and when it finishes, at most every 5 s otherwise */
        if (new_stage || finished || now - ui->last_draw > 5) {
            fprintf(stderr, "%s: %.0f/%.0f (%.0f%%) elapsed %.0fs\n", stage, done, total,
                    total > 0 ? 100.0 * done / total : 0.0, now - ui->start);
            ui->last_draw = now;
        }
    } else if (new_stage || finished || now - ui->last_draw > 0.1) {
        double frac = total > 0 ? done / total : 0;
        double el = now - ui->start;
        char eta[32], ela[32];
        fmt_time(ela, sizeof ela, el);
        fmt_time(eta, sizeof eta, frac > 0.001 ? el * (1 - frac) / frac : NAN);
        int width = 30, fill = (int)(frac * width + 0.5);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r\033[K%-40.40s [%s] %5.1f%% %s ETA %s", stage, bar, 100 * frac, ela, eta);
        fflush(stderr);
        ui->last_draw = now;
    }
    snprintf(ui->last_stage, sizeof ui->last_stage, "%s", stage);
}

void cli_ui_init(struct cli_ui *ui, int verbose, int quiet)
{
    memset(ui, 0, sizeof *ui);
    ui->verbose = verbose;
    ui->quiet = quiet;
    ui->tty = isatty(STDERR_FILENO);
    ui->start = cli_now();
}

void cli_context_options(struct cli_ui *ui, awq_context_options *opt)
{
    awq_context_options_init(opt);
    opt->log = log_cb;
    opt->log_level = ui->verbose ? AWQ_LOG_DEBUG : (ui->quiet ? AWQ_LOG_ERROR : AWQ_LOG_WARN);
    opt->progress = progress_cb;
    opt->cancel = cancel_cb;
    opt->user = ui;
}

void cli_ui_done(struct cli_ui *ui)
{
    if (ui->tty && ui->last_stage[0] && !ui->quiet)
        fputc('\n', stderr);
    ui->last_stage[0] = '\0';
}

int cli_open_device(const char *cmd, awq_context *ctx, const char *backend, int device, awq_device **out)
{
    int st = awq_device_open(ctx, backend, device, out);
    if (st < 0)
        cli_error(cmd, "%s (%s)", awq_context_last_error(ctx), awq_strerror(st));
    return st;
}
