/* awq demo: no download needed. Builds a small Llama-shaped model in memory with planted outlier
 * channels, calibrates on synthetic tokens, and runs RTN and AWQ on every usable backend, printing
 * how much of the output error of plain rounding AWQ removes there, with timings. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/context.h"
#include "format/checkpoint.h"
#include "model/synth.h"
#include "quant/awq_layer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: awq demo [options]\n\n"
               "Quantizes a synthetic Llama-shaped model (seeded random weights with a few outlier activation\n"
               "channels, as real LLMs have) with round-to-nearest and with AWQ, on every usable backend,\n"
               "and prints the block output error of each relative to the full-precision model.\n\n"
               "options:\n"
               "  --backend NAME     run only this backend (repeatable)\n"
               "  --layers N         decoder blocks (default 4)\n"
               "  --hidden N         hidden size, a multiple of 128 (default 512)\n"
               "  --group-size G     32, 64 or 128 (default 128)\n"
               "  --tokens N         calibration tokens, in blocks of 256 (default 2048)\n"
               "  --intermediate N   intermediate size, a multiple of 128 (default 11/4 of hidden)\n"
               "  --heads N          attention heads (default 8)   --kv-heads N   KV heads (default: heads)\n"
               "  --vocab N          vocabulary size (default 1024)\n"
               "  --seed N           weights and tokens seed (default 42)\n"
               "  --save DIR         write the synthetic model as a Hugging Face directory (fp16) and its\n"
               "                     calibration ids to DIR/calib-ids.txt, then exit (for timing awq quantize\n"
               "                     on a model of real shape)\n");
}

struct demo_opts {
    const char *backends[8];
    int n_backends, layers, hidden, intermediate, heads, kv_heads, vocab, group_size, tokens;
    long seed;
    const char *save;
};

/* Writes the synthetic model (fp16) and 128 documents of 512 random ids as calibration data. */
static int save_model(const struct demo_opts *d, struct awq_synth *sm)
{
    const struct awq_model_config *c = &sm->hm.cfg;
    char cfg[1024], path[4096];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d, "
             "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
             "\"num_key_value_heads\": %d, \"vocab_size\": %d, \"max_position_embeddings\": 4096, "
             "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\", "
             "\"tie_word_embeddings\": false, \"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"float16\"}",
             c->hidden, c->intermediate, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab);
    struct awq_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.unquantized = 1;
    ck.config_json = cfg;
    ck.shard_bytes = 5000000000ULL;
    ck.meta_keys[0] = "format";
    ck.meta_vals[0] = "pt";
    ck.n_meta = 1;
    struct awq_errbuf err;
    int st = 0;
    for (int i = 0; i < sm->n && st == 0; i++) {
        const struct awq_st_tensor *t = &sm->tensors[i];
        st = awq_ckpt_add_f32(&ck, t->name, AWQ_DTYPE_F16, t->ndim, t->shape, t->data, &err);
    }
    if (st == 0)
        st = awq_ckpt_write(&ck, NULL, d->save, NULL, NULL, &err);
    awq_ckpt_free(&ck);
    if (st < 0) {
        cli_error("demo", "%s", err.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/calib-ids.txt", d->save);
    FILE *f = fopen(path, "w");
    int32_t *ids = malloc(sizeof(int32_t) * 512);
    for (int doc = 0; f && ids && doc < 128; doc++) {
        awq_synth_tokens((uint64_t)d->seed + (uint64_t)doc, c->vocab, 1, 512, ids);
        for (int t = 0; t < 512; t++)
            fprintf(f, "%d%c", ids[t], t == 511 ? '\n' : ' ');
    }
    free(ids);
    if (!f || fclose(f) != 0) {
        cli_error("demo", "%s: cannot write", path);
        return 1;
    }
    printf("wrote %s (fp16) and %s\n", d->save, path);
    return 0;
}

static int run_backend(awq_context *ctx, const char *backend, const struct demo_opts *d, struct awq_synth *sm,
                       const int32_t *ids, int n_blocks)
{
    awq_device *dev;
    if (awq_device_open(ctx, backend, -1, &dev) < 0) {
        printf("| %-7s | %-28.28s | unavailable: %s\n", backend, "-", awq_context_last_error(ctx));
        return 1;
    }
    awq_device_info info;
    awq_device_get_info(dev, &info);
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    o.group_size = d->group_size;
    o.seqlen = 256;
    struct awq_qlayer *ql = calloc((size_t)d->layers, sizeof *ql);
    double t0 = cli_now();
    int st = ql ? awq_quantize_layers(dev, &sm->hm, ids, n_blocks, &o, ql) : AWQ_ERR_OUT_OF_MEMORY;
    double secs = cli_now() - t0;
    if (st < 0) {
        printf("| %-7s | %-28.28s | failed: %s\n", backend, info.name, awq_device_last_error(dev));
    } else {
        double rtn = 0, awq = 0, pw = 0;
        for (int i = 0; i < d->layers; i++) {
            rtn += ql[i].rep.err_rtn;
            awq += ql[i].rep.err_awq;
            pw += ql[i].rep.out_power;
        }
        printf("| %-7s | %-28.28s | %9.3e | %9.3e | %7.1f%% | %7.2f |\n", backend, info.name, rtn / pw, awq / pw,
               100.0 * (1 - awq / rtn), secs);
    }
    for (int i = 0; ql && i < d->layers; i++)
        awq_qlayer_free(&ql[i]);
    free(ql);
    awq_device_close(dev);
    return st < 0;
}

int awq_cmd_demo(int argc, char **argv)
{
    struct demo_opts d = { .layers = 4, .hidden = 512, .heads = 8, .group_size = 128, .tokens = 2048, .seed = 42 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--backend") && v && d.n_backends < 8) {
            d.backends[d.n_backends++] = v;
        } else if (!strcmp(a, "--layers") && v) {
            if (cli_parse_int("demo", a, v, 1, 64, &n) < 0)
                return 2;
            d.layers = (int)n;
        } else if (!strcmp(a, "--hidden") && v) {
            if (cli_parse_int("demo", a, v, 128, 8192, &n) < 0 || n % 128) {
                cli_error("demo", "--hidden must be a multiple of 128");
                return 2;
            }
            d.hidden = (int)n;
        } else if (!strcmp(a, "--intermediate") && v) {
            if (cli_parse_int("demo", a, v, 128, 65536, &n) < 0 || n % 128) {
                cli_error("demo", "--intermediate must be a multiple of 128");
                return 2;
            }
            d.intermediate = (int)n;
        } else if (!strcmp(a, "--heads") && v) {
            if (cli_parse_int("demo", a, v, 1, 256, &n) < 0)
                return 2;
            d.heads = (int)n;
        } else if (!strcmp(a, "--kv-heads") && v) {
            if (cli_parse_int("demo", a, v, 1, 256, &n) < 0)
                return 2;
            d.kv_heads = (int)n;
        } else if (!strcmp(a, "--vocab") && v) {
            if (cli_parse_int("demo", a, v, 16, 1 << 20, &n) < 0)
                return 2;
            d.vocab = (int)n;
        } else if (!strcmp(a, "--save") && v) {
            d.save = v;
        } else if (!strcmp(a, "--group-size") && v) {
            if (cli_parse_int("demo", a, v, 32, 128, &n) < 0 || (n != 32 && n != 64 && n != 128)) {
                cli_error("demo", "--group-size must be 32, 64 or 128");
                return 2;
            }
            d.group_size = (int)n;
        } else if (!strcmp(a, "--tokens") && v) {
            if (cli_parse_int("demo", a, v, 256, 1 << 20, &n) < 0)
                return 2;
            d.tokens = (int)n;
        } else if (!strcmp(a, "--seed") && v) {
            if (cli_parse_int("demo", a, v, 0, 0x7fffffffL, &n) < 0)
                return 2;
            d.seed = n;
        } else {
            cli_error("demo", "unknown option or missing value: '%s' (see awq demo --help)", a);
            return 2;
        }
        i++;
    }
    struct awq_synth_params p;
    awq_synth_defaults(&p);
    p.hidden = d.hidden;
    p.intermediate = d.intermediate ? d.intermediate : d.hidden * 11 / 4 / 128 * 128;
    p.n_layers = d.layers;
    p.n_heads = d.heads;
    p.n_kv_heads = d.kv_heads ? d.kv_heads : d.heads;
    if (d.vocab)
        p.vocab = d.vocab;
    p.seed = (uint64_t)d.seed;
    struct awq_errbuf err;
    struct awq_synth *sm;
    if (awq_synth_create(&p, &sm, &err) < 0) {
        cli_error("demo", "%s", err.msg);
        return 1;
    }
    if (d.save) {
        int rc = save_model(&d, sm);
        awq_synth_free(sm);
        return rc;
    }
    int n_blocks = d.tokens / 256;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_blocks * 256);
    if (!ids) {
        awq_synth_free(sm);
        return 1;
    }
    awq_synth_tokens((uint64_t)d.seed, p.vocab, n_blocks, 256, ids);
    printf("awq demo: a %d-layer Llama-shaped model (hidden %d, intermediate %d, %d heads), %d outlier channels "
           "per scaled group,\ncalibrated on %d tokens; group size %d. Error = block output MSE relative to the "
           "output's mean square,\nsummed over blocks (each block fed full-precision inputs).\n\n",
           p.n_layers, p.hidden, p.intermediate, p.n_heads, p.n_outliers, n_blocks * 256, d.group_size);
    printf("| backend | device                       | RTN error | AWQ error | removed  | AWQ (s) |\n");
    printf("|---------|------------------------------|-----------|-----------|----------|---------|\n");
    struct cli_ui ui;
    cli_ui_init(&ui, 0, 1);
    awq_context_options co;
    cli_context_options(&ui, &co);
    cli_install_sigint();
    awq_context *ctx;
    int failures = 0;
    if (awq_context_create(&co, &ctx) == 0) {
        for (int b = 0; b < awq_backend_count(ctx); b++) {
            const char *name = awq_backend_name(ctx, b);
            int wanted = d.n_backends == 0;
            for (int i = 0; i < d.n_backends; i++)
                wanted |= !strcmp(d.backends[i], name);
            if (!wanted)
                continue;
            if (awq_backend_device_count(ctx, b) <= 0) {
                printf("| %-7s | %-28s | unavailable: %s\n", name, "-", awq_context_last_error(ctx));
                failures += d.n_backends > 0;
                continue;
            }
            failures += run_backend(ctx, name, &d, sm, ids, n_blocks);
        }
        awq_context_destroy(ctx);
    }
    free(ids);
    awq_synth_free(sm);
    return failures ? 1 : 0;
}
