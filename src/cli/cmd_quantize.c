/* awq quantize MODEL_DIR --calib FILE --out DIR: AWQ (or RTN) to an AutoAWQ GEMM checkpoint. */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "cli/cli_util.h"
#include "cli/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: awq quantize MODEL_DIR --calib FILE --out DIR [options]\n\n"
            "Calibrates a Hugging Face Llama-family model on FILE and writes a 4-bit AWQ checkpoint in the\n"
            "AutoAWQ GEMM layout (read by vLLM, transformers and AutoAWQ) to DIR. The output appears only\n"
            "when complete: an interrupted run leaves an existing DIR untouched.\n\n"
            "options:\n"
            "  --calib FILE           calibration text (documents separated by blank lines, or one per\n"
            "                         line) or token ids (one document per line)\n"
            "  --calib-format F       auto (default), text or ids\n"
            "  --out DIR              output directory\n"
            "  --method M             awq (default) or rtn (round-to-nearest baseline; --calib optional)\n"
            "  --group-size G         32, 64 or 128 (default 128)\n"
            "  --n-samples N          calibration documents (default 128)\n"
            "  --seqlen N             tokens per calibration block (default 512)\n"
            "  --n-grid N             scale search grid points (default 20)\n"
            "  --alpha R              fixed scale ratio in [0, 1] instead of the search (fastest)\n"
            "  --duo-scaling          AutoAWQ's weight-aware scales: mean|x|^r / mean|w|^(1-r)\n"
            "  --no-clip              skip the clip search\n"
            "  --clip-tokens N        calibration tokens sampled for the clip search (default 512)\n"
            "  --shard-size SIZE      safetensors shard size, e.g. 5GB (default), 500MB\n"
            "  --keep-dtype           store unquantized tensors in their source dtype, not fp16\n"
            "  --backend NAME         cpu, cuda, opencl or vulkan (default: AWQ_BACKEND, else the best GPU)\n"
            "  --device N             device index within the backend\n"
            "  --json                 print the report as JSON on stdout instead of the table\n"
            "  -v, --verbose          log every block\n"
            "  -q, --quiet            no progress display\n");
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : -1;
}

/* The per-block table: chosen ratio per scaled group, clipping, block output error RTN vs AWQ. */
static void print_table(const char *json)
{
    json_t *r = json_loads(json, 0, NULL);
    if (!r)
        return;
    static const char *groups[] = { "qkv", "v->o", "gate/up", "up->down" };
    static const char *clips[] = { "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };
    int awq = !strcmp(json_string_value(json_object_get(r, "method")) ?: "", "awq");
    json_t *layers = json_object_get(r, "layers"), *l;
    size_t i;
    printf("\n| block | qkv  | v->o | gate/up | up->down | clip shrink | clipped | err RTN    | err AWQ    | AWQ/RTN |\n");
    printf("|-------|------|------|---------|----------|-------------|---------|------------|------------|---------|\n");
    double sum_rtn = 0, sum_awq = 0;
    json_array_foreach(layers, i, l) {
        json_t *sc = json_object_get(l, "scales"), *cl = json_object_get(l, "clip");
        printf("| %5zu |", i);
        for (int g = 0; g < 4; g++) {
            double ratio = num(json_object_get(sc, groups[g]), "ratio");
            int w = g == 2 ? 7 : g == 3 ? 8 : 4;
            if (ratio < 0)
                printf(" %*s |", w, "-");
            else
                printf(" %*.2f |", w, ratio);
        }
        double shrink = 0, frac = 0;
        int n = 0;
        for (int c = 0; c < 5; c++) {
            json_t *o = json_object_get(cl, clips[c]);
            if (o) {
                shrink += num(o, "mean_shrink");
                frac += num(o, "clipped_fraction");
                n++;
            }
        }
        if (n)
            printf(" %11.3f | %6.1f%% |", shrink / n, 100 * frac / n);
        else
            printf(" %11s | %7s |", "-", "-");
        double er = num(l, "err_rtn"), ea = num(l, "err_awq");
        if (er >= 0)
            printf(" %10.3g |", er);
        else
            printf(" %10s |", "-");
        if (ea >= 0 && er > 0)
            printf(" %10.3g | %6.3f  |\n", ea, ea / er);
        else
            printf(" %10s | %7s |\n", "-", "-");
        sum_rtn += er > 0 ? er : 0;
        sum_awq += ea > 0 ? ea : 0;
    }
    json_t *d = json_object_get(r, "device");
    printf("\n%s %s, group size %lld, %.1f s on %s (%s), peak device memory %.1f MiB\n",
           awq ? "AWQ" : "RTN", awq ? "(scale + clip search)" : "", (long long)num(r, "group_size"), num(r, "seconds"),
           json_string_value(json_object_get(d, "backend")), json_string_value(json_object_get(d, "name")),
           num(d, "peak_memory_bytes") / 1048576.0);
    if (awq && sum_rtn > 0)
        printf("block output error, summed over blocks: RTN %.4g, AWQ %.4g (AWQ removes %.1f%% of it)\n", sum_rtn,
               sum_awq, 100 * (1 - sum_awq / sum_rtn));
    json_decref(r);
}

int awq_cmd_quantize(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *backend = NULL;
    long device = -1, v;
    int json = 0, verbose = 0, quiet = 0;
    double d;
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    int dev_opt;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--calib") && val) {
            o.calib_path = val;
        } else if (!strcmp(a, "--calib-format") && val) {
            if (!strcmp(val, "auto"))
                o.calib_format = AWQ_CALIB_FORMAT_AUTO;
            else if (!strcmp(val, "text"))
                o.calib_format = AWQ_CALIB_FORMAT_TEXT;
            else if (!strcmp(val, "ids"))
                o.calib_format = AWQ_CALIB_FORMAT_IDS;
            else {
                cli_error("quantize", "--calib-format must be auto, text or ids, not '%s'", val);
                return 2;
            }
        } else if (!strcmp(a, "--out") && val) {
            out = val;
        } else if (!strcmp(a, "--method") && val) {
            if (!strcmp(val, "awq"))
                o.method = AWQ_METHOD_AWQ;
            else if (!strcmp(val, "rtn"))
                o.method = AWQ_METHOD_RTN;
            else {
                cli_error("quantize", "--method must be awq or rtn, not '%s'", val);
                return 2;
            }
        } else if (!strcmp(a, "--group-size") && val) {
            if (cli_parse_int("quantize", a, val, 1, 1 << 20, &v) < 0)
                return 2;
            if (v != 32 && v != 64 && v != 128) {
                cli_error("quantize", "--group-size must be 32, 64 or 128, not %ld", v);
                return 2;
            }
            o.group_size = (int)v;
        } else if (!strcmp(a, "--n-samples") && val) {
            if (cli_parse_int("quantize", a, val, 1, 1 << 24, &v) < 0)
                return 2;
            o.n_samples = (int)v;
        } else if (!strcmp(a, "--seqlen") && val) {
            if (cli_parse_int("quantize", a, val, 2, 1 << 20, &v) < 0)
                return 2;
            o.seqlen = (int)v;
        } else if (!strcmp(a, "--n-grid") && val) {
            if (cli_parse_int("quantize", a, val, 1, 1000, &v) < 0)
                return 2;
            o.n_grid = (int)v;
        } else if (!strcmp(a, "--alpha") && val) {
            if (cli_parse_double("quantize", a, val, 0, 1, &d) < 0)
                return 2;
            o.alpha = d;
        } else if (!strcmp(a, "--clip-tokens") && val) {
            if (cli_parse_int("quantize", a, val, 1, 1 << 24, &v) < 0)
                return 2;
            o.clip_tokens = (int)v;
        } else if (!strcmp(a, "--shard-size") && val) {
            unsigned long long s;
            if (cli_parse_size("quantize", a, val, &s) < 0)
                return 2;
            o.shard_bytes = s;
        } else if ((dev_opt = cli_device_option("quantize", a, val, &backend, &device)) != 0) {
            if (dev_opt < 0)
                return 2;
        } else {
            takes = 0;
            if (!strcmp(a, "--duo-scaling"))
                o.duo_scaling = 1;
            else if (!strcmp(a, "--no-clip"))
                o.clip = 0;
            else if (!strcmp(a, "--keep-dtype"))
                o.keep_dtype = 1;
            else if (!strcmp(a, "--json"))
                json = 1;
            else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
                verbose = 1;
            else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
                quiet = 1;
            else if (a[0] == '-' && a[1]) {
                cli_error("quantize", "unknown option or missing value: '%s' (see awq quantize --help)", a);
                return 2;
            } else if (!model)
                model = a;
            else {
                cli_error("quantize", "unexpected argument '%s'", a);
                return 2;
            }
        }
        i += takes;
    }
    if (!model || !out) {
        usage(stderr);
        return 2;
    }
    if (o.method == AWQ_METHOD_AWQ && !o.calib_path) {
        cli_error("quantize", "AWQ needs calibration data: --calib FILE (or --method rtn)");
        return 2;
    }
    struct cli_ui ui;
    cli_ui_init(&ui, verbose, quiet);
    awq_context_options co;
    cli_context_options(&ui, &co);
    if (verbose)
        co.log_level = AWQ_LOG_INFO;
    cli_install_sigint();
    awq_context *ctx;
    awq_device *dev = NULL;
    if (awq_context_create(&co, &ctx) < 0)
        return 1;
    int rc = 1;
    awq_quantize_report *rep = NULL;
    if (cli_open_device("quantize", ctx, backend, (int)device, &dev) < 0)
        goto done;
    int st = awq_quantize(dev, model, out, &o, &rep);
    cli_ui_done(&ui);
    if (st < 0) {
        cli_error("quantize", "%s (%s)%s", awq_device_last_error(dev), awq_strerror(st),
                  st == AWQ_ERR_CANCELLED ? "; nothing was written" : "");
        rc = st == AWQ_ERR_CANCELLED ? 130 : 1;
        goto done;
    }
    if (json)
        printf("%s\n", awq_quantize_report_json(rep));
    else {
        print_table(awq_quantize_report_json(rep));
        printf("wrote %s\n", out);
    }
    rc = 0;
done:
    awq_quantize_report_destroy(rep);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    return rc;
}
