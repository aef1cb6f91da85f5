/* awq ppl MODEL_DIR TEXT_FILE: perplexity by the protocol of REFERENCE.md. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "cli/cli_util.h"
#include "cli/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: awq ppl MODEL_DIR TEXT_FILE [options]\n\n"
               "Perplexity of a model (unquantized, or an AWQ checkpoint) over a text file: every non-empty\n"
               "line is tokenized with BOS, the ids are concatenated and cut into windows; each window is\n"
               "scored on its tokens 2..window.\n\n"
               "options:\n"
               "  --window N       tokens per window (default 512)\n"
               "  --backend NAME   cpu, cuda, opencl or vulkan (default: AWQ_BACKEND, else the best GPU)\n"
               "  --device N       device index within the backend\n"
               "  --dequantize     run 4-bit layers as dequantized fp32 matrices (reference path)\n"
               "  --f16            keep unquantized weights in fp16 on the device\n"
               "  --json           print the result as JSON\n"
               "  -q, --quiet      no progress display\n");
}

int awq_cmd_ppl(int argc, char **argv)
{
    const char *pos[2] = { NULL, NULL }, *backend = NULL;
    int n_pos = 0, json = 0, quiet = 0;
    long window = 512, device = -1;
    awq_model_options mo;
    awq_model_options_init(&mo);
    int dev_opt;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--window") && v) {
            if (cli_parse_int("ppl", a, v, 2, 1 << 20, &window) < 0)
                return 2;
            i++;
        } else if ((dev_opt = cli_device_option("ppl", a, v, &backend, &device)) != 0) {
            if (dev_opt < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--dequantize")) {
            mo.dequantize = 1;
        } else if (!strcmp(a, "--f16")) {
            mo.f16_weights = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_error("ppl", "unknown option or missing value: '%s' (see awq ppl --help)", a);
            return 2;
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            cli_error("ppl", "unexpected argument '%s'", a);
            return 2;
        }
    }
    if (n_pos != 2) {
        usage(stderr);
        return 2;
    }
    struct cli_ui ui;
    cli_ui_init(&ui, 0, quiet);
    awq_context_options co;
    cli_context_options(&ui, &co);
    cli_install_sigint();
    awq_context *ctx;
    awq_device *dev = NULL;
    awq_model *m = NULL;
    if (awq_context_create(&co, &ctx) < 0)
        return 1;
    int rc = 1;
    double t0 = cli_now();
    if (cli_open_device("ppl", ctx, backend, (int)device, &dev) < 0)
        goto out;
    int st = awq_model_load(dev, pos[0], &mo, &m);
    cli_ui_done(&ui);
    if (st < 0) {
        cli_error("ppl", "%s (%s)", awq_device_last_error(dev), awq_strerror(st));
        goto out;
    }
    awq_perplexity p;
    st = awq_model_perplexity(m, pos[1], (int)window, &p);
    cli_ui_done(&ui);
    if (st < 0) {
        cli_error("ppl", "%s (%s)", awq_model_last_error(m), awq_strerror(st));
        goto out;
    }
    awq_device_info info;
    awq_device_get_info(dev, &info);
    if (json)
        printf("{\"perplexity\": %.6f, \"mean_nll\": %.8f, \"tokens\": %zu, \"scored\": %zu, \"windows\": %d, "
               "\"window\": %ld, \"backend\": \"%s\", \"seconds\": %.3f}\n",
               p.ppl, p.mean_nll, p.n_tokens, p.n_scored, p.n_windows, window, info.backend, cli_now() - t0);
    else
        printf("perplexity %.4f over %zu scored tokens (%d windows of %ld, %zu tokens) on %s in %.1f s\n", p.ppl,
               p.n_scored, p.n_windows, window, p.n_tokens, info.backend, cli_now() - t0);
    rc = 0;
out:
    awq_model_destroy(m);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    return rc;
}
