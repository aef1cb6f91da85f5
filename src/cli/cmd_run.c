/* awq run MODEL_DIR -p PROMPT: text generation with a KV cache. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "cli/cli_util.h"
#include "cli/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: awq run MODEL_DIR -p PROMPT [options]\n\n"
               "Generates text from a prompt (BOS + prompt), greedy unless --temperature is given.\n\n"
               "options:\n"
               "  -p, --prompt TEXT    the prompt (required)\n"
               "  -n, --tokens N       new tokens at most (default 128)\n"
               "  --temperature T      sampling temperature (default 0: greedy)\n"
               "  --top-p P            nucleus sampling mass (default 1)\n"
               "  --seed N             sampling seed (default 0)\n"
               "  --ignore-eos         keep going after the end-of-sequence token\n"
               "  --backend NAME       cpu, cuda, opencl or vulkan\n"
               "  --device N           device index within the backend\n"
               "  --dequantize         run 4-bit layers as dequantized fp32 matrices\n");
}

static int print_piece(void *user, int token, const char *piece)
{
    (void)user;
    (void)token;
    fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

int awq_cmd_run(int argc, char **argv)
{
    const char *dir = NULL, *prompt = NULL, *backend = NULL;
    long device = -1, n = 128, seed = 0;
    double temp = 0, top_p = 1;
    awq_model_options mo;
    awq_model_options_init(&mo);
    awq_generate_options g;
    awq_generate_options_init(&g);
    int dev_opt;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && v) {
            prompt = v;
            i++;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "--tokens")) && v) {
            if (cli_parse_int("run", a, v, 0, 1 << 20, &n) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--temperature") && v) {
            if (cli_parse_double("run", a, v, 0, 100, &temp) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--top-p") && v) {
            if (cli_parse_double("run", a, v, 0, 1, &top_p) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            if (cli_parse_int("run", a, v, 0, 0x7fffffffL, &seed) < 0)
                return 2;
            i++;
        } else if ((dev_opt = cli_device_option("run", a, v, &backend, &device)) != 0) {
            if (dev_opt < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--ignore-eos")) {
            g.stop_at_eos = 0;
        } else if (!strcmp(a, "--dequantize")) {
            mo.dequantize = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_error("run", "unknown option or missing value: '%s' (see awq run --help)", a);
            return 2;
        } else if (!dir) {
            dir = a;
        } else {
            cli_error("run", "unexpected argument '%s'", a);
            return 2;
        }
    }
    if (!dir || !prompt) {
        usage(stderr);
        return 2;
    }
    g.max_new_tokens = (int)n;
    g.temperature = (float)temp;
    g.top_p = (float)top_p;
    g.seed = (uint64_t)seed;
    struct cli_ui ui;
    cli_ui_init(&ui, 0, 1);
    awq_context_options co;
    cli_context_options(&ui, &co);
    cli_install_sigint();
    awq_context *ctx;
    awq_device *dev = NULL;
    awq_model *m = NULL;
    char *text = NULL;
    if (awq_context_create(&co, &ctx) < 0)
        return 1;
    int rc = 1;
    if (cli_open_device("run", ctx, backend, (int)device, &dev) < 0)
        goto out;
    int st = awq_model_load(dev, dir, &mo, &m);
    if (st < 0) {
        cli_error("run", "%s (%s)", awq_device_last_error(dev), awq_strerror(st));
        goto out;
    }
    fputs(prompt, stdout);
    g.on_token = print_piece;
    st = awq_model_generate(m, prompt, &g, &text);
    putchar('\n');
    if (st < 0) {
        cli_error("run", "%s (%s)", awq_model_last_error(m), awq_strerror(st));
        goto out;
    }
    rc = 0;
out:
    awq_free(text);
    awq_model_destroy(m);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    return rc;
}
