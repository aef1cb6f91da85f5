/*
 * Models and the AWQ pipeline: config.json validation, the reference model's perplexity and greedy
 * text (REFERENCE.md), quantization at G = 32 (AWQ beats RTN and the reference code; the written
 * checkpoint decodes bit for bit and runs the same through gemm_w4 and through dequantized
 * weights), planted-outlier models, and bad input (calibration, output directory, interruption).
 * Tests needing ../shared skip their body when AWQ_TEST_DATA is unset.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/context.h"
#include "format/safetensors.h"
#include "model/config.h"
#include "model/corpus.h"
#include "model/synth.h"
#include "quant/awq_layer.h"
#include "testutil.h"
#include "tokenizer/tokenizer.h"
#include "util/half.h"

static char *model_dir, *calib, *eval_text;

static int have_data(void)
{
    if (!model_dir)
        fprintf(stderr, "AWQ_TEST_DATA unset: skipping the parts that need the reference model\n");
    return model_dir != NULL;
}

static awq_context *ctx;
static awq_device *cpu;

static void open_cpu(void)
{
    ck_assert_int_eq(awq_context_create(NULL, &ctx), 0);
    ck_assert_int_eq(awq_device_open(ctx, "cpu", 0, &cpu), 0);
}

static void close_cpu(void)
{
    awq_device_close(cpu);
    awq_context_destroy(ctx);
    cpu = NULL;
    ctx = NULL;
}

static double ppl_of(const char *dir, int dequantize)
{
    awq_model_options mo;
    awq_model_options_init(&mo);
    mo.dequantize = dequantize;
    awq_model *m;
    ck_assert_msg(awq_model_load(cpu, dir, &mo, &m) == 0, "load %s: %s", dir, awq_device_last_error(cpu));
    awq_perplexity p;
    ck_assert_msg(awq_model_perplexity(m, eval_text, 512, &p) == 0, "ppl: %s", awq_model_last_error(m));
    awq_model_destroy(m);
    fprintf(stderr, "perplexity of %s%s: %.4f (%zu tokens)\n", dir, dequantize ? " (dequantized)" : "", p.ppl, p.n_tokens);
    return p.ppl;
}

/* ---- config.json ------------------------------------------------------------------------------ */

static int parse(const char *json, struct awq_model_config *c, struct awq_errbuf *e)
{
    return awq_config_parse(json, strlen(json), "config.json", c, e);
}

#define BASE "\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 172, " \
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 8, \"vocab_size\": 512"

START_TEST(test_config)
{
    struct awq_model_config c;
    struct awq_errbuf e;
    ck_assert_int_eq(parse("{" BASE "}", &c, &e), 0);
    ck_assert_int_eq(c.n_kv_heads, 8);
    ck_assert_int_eq(c.head_dim, 8);
    ck_assert_int_eq(c.quantized, 0);
    ck_assert_int_eq(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}", &c, &e), AWQ_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "intermediate_size"));
    ck_assert_int_eq(parse("{" BASE ", \"num_key_value_heads\": 3}", &c, &e), AWQ_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "num_key_value_heads"));
    ck_assert_int_eq(parse("{\"architectures\": [\"GPT2LMHeadModel\"], \"hidden_size\": 64}", &c, &e), AWQ_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(e.msg, "GPT2LMHeadModel"));
    ck_assert_int_eq(parse("{" BASE ", \"hidden_act\": \"gelu\"}", &c, &e), AWQ_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse("{" BASE ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}", &c, &e),
                     AWQ_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(e.msg, "yarn"));
    ck_assert_int_eq(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": -4, \"intermediate_size\": 8, "
                           "\"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"vocab_size\": 8}", &c, &e),
                     AWQ_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "hidden_size"));
    ck_assert_int_eq(parse("{" BASE ", \"hidden_size\": 32}", &c, &e), AWQ_ERR_BAD_JSON);   /* a key twice */
    ck_assert_int_eq(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 8, "
                           "\"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"vocab_size\": \"many\"}", &c, &e),
                     AWQ_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.msg, "vocab_size"));
    ck_assert_int_eq(parse("{" BASE ",}", &c, &e), AWQ_ERR_BAD_JSON);
    ck_assert_int_eq(parse("[1, 2]", &c, &e), AWQ_ERR_BAD_CONFIG);
    ck_assert_int_eq(parse("{" BASE ", \"quantization_config\": {\"quant_method\": \"gptq\"}}", &c, &e), AWQ_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse("{" BASE ", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
                           "\"group_size\": 48, \"zero_point\": true, \"version\": \"gemm\"}}", &c, &e),
                     AWQ_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse("{" BASE ", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
                           "\"group_size\": 32, \"zero_point\": true, \"version\": \"GEMM\", "
                           "\"modules_to_not_convert\": [\"mlp.down_proj\"]}}", &c, &e), 0);
    ck_assert(c.quantized && c.group_size == 32 && c.n_not_convert == 1);
    ck_assert(awq_config_not_converted(&c, "model.layers.3.mlp.down_proj"));
    ck_assert(!awq_config_not_converted(&c, "model.layers.3.mlp.up_proj"));
    /* Qwen2 implies q/k/v bias; Llama 3 rope scaling leaves high frequencies alone */
    ck_assert_int_eq(parse("{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                           "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 100}", &c, &e), 0);
    ck_assert(c.qkv_bias && !c.o_bias);
    ck_assert_int_eq(parse("{" BASE ", \"rope_theta\": 500000, \"rope_scaling\": {\"rope_type\": \"llama3\", "
                           "\"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4, "
                           "\"original_max_position_embeddings\": 8192}}", &c, &e), 0);
    float inv[4];
    awq_config_inv_freq(&c, inv);
    ck_assert_float_eq_tol(inv[0], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(inv[3], powf(500000.0f, -6.0f / 8) / 8, 1e-9f);
}
END_TEST

/* ---- the reference model ------------------------------------------------------------------------ */

START_TEST(test_reference_ppl_and_text)
{
    if (!have_data())
        return;
    open_cpu();
    double p = ppl_of(model_dir, 0);
    ck_assert_msg(fabs(p - 6.2491) <= 0.0005, "fp32 perplexity %.4f, REFERENCE.md says 6.2491", p);
    awq_model *m;
    ck_assert_int_eq(awq_model_load(cpu, model_dir, NULL, &m), 0);
    awq_generate_options g;
    awq_generate_options_init(&g);
    g.max_new_tokens = 40;
    char *text;
    ck_assert_int_eq(awq_model_generate(m, "Once upon a time", &g, &text), 0);
    ck_assert_str_eq(text, "Once upon a time, there was a little girl named Lily. She loved to play outside in "
                           "the park. One day, she saw a big, red ball.");
    awq_free(text);
    awq_model_destroy(m);
    close_cpu();
}
END_TEST

static int quantize(const char *out, awq_method method, int G, int n_samples)
{
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    o.method = method;
    o.group_size = G;
    o.calib_path = calib;
    o.n_samples = n_samples;
    return awq_quantize(cpu, model_dir, out, &o, NULL);
}

/* Decodes one AWQ linear from the checkpoint straight from the spec's bit layout. */
static void spec_dequant(const struct awq_st_tensor *qw, const struct awq_st_tensor *qz,
                         const struct awq_st_tensor *sc, int K, int N, int G, float *w /* [N, K] */)
{
    static const int order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
    const int32_t *q = qw->data, *z = qz->data;
    const uint16_t *s = sc->data;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N / 8; j++)
            for (int i = 0; i < 8; i++) {
                int n = 8 * j + order[i];
                unsigned code = ((uint32_t)q[(size_t)k * (N / 8) + j] >> (4 * i)) & 15u;
                unsigned zero = ((uint32_t)z[(size_t)(k / G) * (N / 8) + j] >> (4 * i)) & 15u;
                w[(size_t)n * K + k] = ((float)code - (float)zero) * awq_f16_to_f32(s[(size_t)(k / G) * N + n]);
            }
}

/* Layer 0 of the checkpoint equals, bit for bit, what the pipeline computes for layer 0 alone. */
static void check_layer0(const char *out)
{
    struct awq_hmodel *hm;
    struct awq_errbuf e;
    ck_assert_int_eq(awq_hmodel_open(model_dir, &hm, &e), 0);
    struct awq_tok *tok;
    ck_assert_int_eq(awq_tok_load(model_dir, &tok, &e), 0);
    int32_t *ids;
    int n_blocks;
    struct awq_calib_stats cs;
    ck_assert_int_eq(awq_calib_blocks(tok, calib, AWQ_CALIB_FORMAT_AUTO, hm->cfg.vocab, 128, 512, &ids, &n_blocks, &cs, &e), 0);
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    o.group_size = 32;
    o.calib_path = calib;
    struct awq_calib_state s;
    ck_assert_int_eq(awq_calib_state_init(&s, cpu, &hm->cfg, n_blocks, 512), 0);
    ck_assert_int_eq(awq_calib_state_embed(&s, hm, ids), 0);
    struct awq_qlayer q;
    ck_assert_int_eq(awq_layer_run(&s, hm, 0, &o, &q, &e), 0);

    struct awq_safetensors *st;
    ck_assert_int_eq(awq_safetensors_open(out, &st, &e), 0);
    int packed = 0;
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        char name[160], prefix[96];
        awq_lin_prefix(0, (enum awq_lin)k, prefix, sizeof prefix);
        if (!q.lin[k].packed)
            continue;
        packed++;
        int K = q.lin[k].in, N = q.lin[k].out;
        snprintf(name, sizeof name, "%s.qweight", prefix);
        const struct awq_st_tensor *qw = awq_safetensors_find(st, name);
        snprintf(name, sizeof name, "%s.qzeros", prefix);
        const struct awq_st_tensor *qz = awq_safetensors_find(st, name);
        snprintf(name, sizeof name, "%s.scales", prefix);
        const struct awq_st_tensor *sc = awq_safetensors_find(st, name);
        ck_assert(qw && qz && sc);
        ck_assert_mem_eq(qw->data, q.lin[k].qweight, (size_t)K * N / 2);
        ck_assert_mem_eq(qz->data, q.lin[k].qzeros, (size_t)K / 32 * N / 2);
        ck_assert_mem_eq(sc->data, q.lin[k].scales, (size_t)K / 32 * N * 2);
        /* the spec-level decode agrees with the library's loader */
        float *a = malloc((size_t)K * N * 4), *b = malloc((size_t)K * N * 4);
        spec_dequant(qw, qz, sc, K, N, 32, a);
        struct awq_hlinear hl = { K, N, NULL, qw, qz, sc, NULL };
        ck_assert_int_eq(awq_hlinear_f32(&hl, 32, b, &e), 0);
        ck_assert_mem_eq(a, b, (size_t)K * N * 4);
        free(a);
        free(b);
    }
    ck_assert_int_eq(packed, 4);   /* q, k, v, o; gate/up (out 172) and down (in 172) are not packed */
    awq_safetensors_close(st);
    awq_qlayer_free(&q);
    awq_calib_state_free(&s);
    free(ids);
    awq_tok_free(tok);
    awq_hmodel_close(hm);
}

/* AWQ and RTN checkpoints at group size G in a new temporary folder (returned); the AWQ
 * perplexity must beat RTN's and the best reference-code row of REFERENCE.md for that G. */
static char *quantize_and_compare(int G, double reference_best, double *p_awq)
{
    char *tmp = tu_tmpdir(G == 32 ? "q32" : "q64");
    char awq_dir[512], rtn_dir[512];
    snprintf(awq_dir, sizeof awq_dir, "%s/awq", tmp);
    snprintf(rtn_dir, sizeof rtn_dir, "%s/rtn", tmp);
    ck_assert_msg(quantize(awq_dir, AWQ_METHOD_AWQ, G, 128) == 0, "awq: %s", awq_device_last_error(cpu));
    ck_assert_msg(quantize(rtn_dir, AWQ_METHOD_RTN, G, 128) == 0, "rtn: %s", awq_device_last_error(cpu));
    double p_rtn = ppl_of(rtn_dir, 0);
    *p_awq = ppl_of(awq_dir, 0);
    ck_assert_msg(*p_awq <= p_rtn, "G=%d: AWQ %.4f is worse than RTN %.4f", G, *p_awq, p_rtn);
    ck_assert_msg(*p_awq <= reference_best, "G=%d: AWQ %.4f is worse than the reference code's %.4f", G,
                  *p_awq, reference_best);
    return tmp;
}

START_TEST(test_quantize_g64)
{
    if (!have_data())
        return;
    open_cpu();
    double p_awq;
    char *tmp = quantize_and_compare(64, 6.7160, &p_awq);
    tu_rmtree(tmp);
    free(tmp);
    close_cpu();
}
END_TEST

START_TEST(test_quantize_g32)
{
    if (!have_data())
        return;
    open_cpu();
    double p_awq;
    char *tmp = quantize_and_compare(32, 6.6551, &p_awq);
    char awq_dir[512];
    snprintf(awq_dir, sizeof awq_dir, "%s/awq", tmp);
    double p_deq = ppl_of(awq_dir, 1);
    ck_assert_msg(fabs(p_awq - p_deq) < 2e-4, "gemm_w4 path %.5f vs dequantized path %.5f", p_awq, p_deq);
    check_layer0(awq_dir);
    /* the checkpoint's config and tokenizer */
    struct awq_model_config c;
    struct awq_errbuf e;
    ck_assert_int_eq(awq_config_load(awq_dir, &c, &e), 0);
    ck_assert(c.quantized && c.group_size == 32);
    ck_assert(awq_config_not_converted(&c, "model.layers.0.mlp.down_proj"));
    ck_assert(!awq_config_not_converted(&c, "model.layers.0.self_attn.q_proj"));
    tu_rmtree(tmp);
    free(tmp);
    close_cpu();
}
END_TEST

/* ---- planted outliers -------------------------------------------------------------------------- */

START_TEST(test_planted_outliers)
{
    open_cpu();
    struct awq_synth_params p;
    awq_synth_defaults(&p);
    p.hidden = 256;
    p.intermediate = 640;
    p.n_layers = 2;
    p.seed = tu_seed();
    struct awq_synth *sm;
    struct awq_errbuf e;
    ck_assert_int_eq(awq_synth_create(&p, &sm, &e), 0);
    int n_blocks = 4, seqlen = 256;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_blocks * seqlen);
    awq_synth_tokens(p.seed, p.vocab, n_blocks, seqlen, ids);
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    o.seqlen = seqlen;
    o.group_size = 64;
    struct awq_qlayer ql[2];
    ck_assert_msg(awq_quantize_layers(cpu, &sm->hm, ids, n_blocks, &o, ql) == 0, "%s", awq_device_last_error(cpu));
    for (int i = 0; i < 2; i++) {
        fprintf(stderr, "planted outliers, block %d: RTN %.4g, AWQ %.4g\n", i, ql[i].rep.err_rtn, ql[i].rep.err_awq);
        ck_assert_msg(ql[i].rep.err_awq < 0.8 * ql[i].rep.err_rtn, "block %d: AWQ %.4g vs RTN %.4g", i,
                      ql[i].rep.err_awq, ql[i].rep.err_rtn);
        ck_assert(ql[i].rep.grp[AWQ_GRP_QKV].searched && ql[i].rep.grp[AWQ_GRP_QKV].ratio > 0);
        awq_qlayer_free(&ql[i]);
    }
    free(ids);
    awq_synth_free(sm);
    close_cpu();
}
END_TEST

/* ---- bad input ------------------------------------------------------------------------------------ */

static int calls;

static int cancel_after_two_blocks(void *user)
{
    (void)user;
    return ++calls > 40;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

START_TEST(test_bad_input)
{
    if (!have_data())
        return;
    open_cpu();
    char *tmp = tu_tmpdir("bad");
    char path[512], out[1024];
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    o.group_size = 32;
    snprintf(out, sizeof out, "%s/out", tmp);
    /* calibration: empty, and shorter than one block */
    snprintf(path, sizeof path, "%s/empty.txt", tmp);
    ck_assert_int_eq(tu_write_file(path, "", 0), 0);
    o.calib_path = path;
    ck_assert_int_eq(awq_quantize(cpu, model_dir, out, &o, NULL), AWQ_ERR_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(awq_device_last_error(cpu), "fewer than one block"));
    snprintf(path, sizeof path, "%s/short.txt", tmp);
    ck_assert_int_eq(tu_write_file(path, "Once upon a time.\n\nThe end.\n", 28), 0);
    ck_assert_int_eq(awq_quantize(cpu, model_dir, out, &o, NULL), AWQ_ERR_BAD_INPUT);
    snprintf(path, sizeof path, "%s/ids.txt", tmp);
    ck_assert_int_eq(tu_write_file(path, "1 2 3\n1 99999\n", 14), 0);
    ck_assert_int_eq(awq_quantize(cpu, model_dir, out, &o, NULL), AWQ_ERR_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(awq_device_last_error(cpu), "99999"));
    o.calib_path = "/nonexistent/calib.txt";
    ck_assert_int_eq(awq_quantize(cpu, model_dir, out, &o, NULL), AWQ_ERR_NOT_FOUND);
    o.calib_path = calib;
    /* output: parent missing, a file in the way, a directory that is not a model */
    ck_assert_int_eq(awq_quantize(cpu, model_dir, "/nonexistent/dir/out", &o, NULL), AWQ_ERR_IO);
    snprintf(path, sizeof path, "%s/file", tmp);
    ck_assert_int_eq(tu_write_file(path, "x", 1), 0);
    ck_assert_int_eq(awq_quantize(cpu, model_dir, path, &o, NULL), AWQ_ERR_IO);
    snprintf(path, sizeof path, "%s/notes", tmp);
    mkdir(path, 0755);
    snprintf(out, sizeof out, "%s/notes/a.txt", tmp);
    ck_assert_int_eq(tu_write_file(out, "keep", 4), 0);
    ck_assert_int_eq(awq_quantize(cpu, model_dir, path, &o, NULL), AWQ_ERR_IO);
    ck_assert_ptr_nonnull(strstr(awq_device_last_error(cpu), "not a model directory"));
    /* model: missing directory, a config without a required field */
    snprintf(out, sizeof out, "%s/out", tmp);
    ck_assert_int_eq(awq_quantize(cpu, "/nonexistent/model", out, &o, NULL), AWQ_ERR_NOT_FOUND);
    snprintf(path, sizeof path, "%s/model", tmp);
    mkdir(path, 0755);
    snprintf(out, sizeof out, "%s/config.json", path);
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}";
    ck_assert_int_eq(tu_write_file(out, cfg, strlen(cfg)), 0);
    snprintf(out, sizeof out, "%s/out", tmp);
    ck_assert_int_eq(awq_quantize(cpu, path, out, &o, NULL), AWQ_ERR_BAD_CONFIG);
    ck_assert_int_eq(count_entries(tmp), 6);   /* nothing written by the failures */

    /* tensors: one missing, one of the wrong shape (a copy of the real model, edited) */
    struct awq_safetensors *st;
    struct awq_errbuf e;
    ck_assert_int_eq(awq_safetensors_open(model_dir, &st, &e), 0);
    for (int variant = 0; variant < 2; variant++) {
        char dir[600], file[700], src[700];
        snprintf(dir, sizeof dir, "%s/broken%d", tmp, variant);
        mkdir(dir, 0755);
        struct awq_st_writer *w;
        ck_assert_int_eq(awq_st_writer_create(&w), 0);
        for (size_t i = 0; i < awq_safetensors_count(st); i++) {
            const struct awq_st_tensor *t = awq_safetensors_at(st, i);
            int victim = !strcmp(t->name, "model.layers.2.mlp.up_proj.weight");
            if (victim && variant == 0)
                continue;   /* missing */
            int64_t shape[8];
            memcpy(shape, t->shape, sizeof shape);
            size_t bytes = t->nbytes;
            if (victim) {   /* [172, 64] stored as [64, 172]: same bytes, wrong shape */
                shape[0] = t->shape[1];
                shape[1] = t->shape[0];
            }
            ck_assert_int_eq(awq_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data, bytes, &e), 0);
        }
        snprintf(file, sizeof file, "%s/model.safetensors", dir);
        ck_assert_int_eq(awq_st_writer_save(w, file, &e), 0);
        awq_st_writer_destroy(w);
        char *cfgtext;
        size_t cfglen;
        snprintf(src, sizeof src, "%s/config.json", model_dir);
        FILE *f = fopen(src, "rb");
        ck_assert_ptr_nonnull(f);
        cfgtext = malloc(1 << 16);
        cfglen = fread(cfgtext, 1, 1 << 16, f);
        fclose(f);
        snprintf(file, sizeof file, "%s/config.json", dir);
        ck_assert_int_eq(tu_write_file(file, cfgtext, cfglen), 0);
        free(cfgtext);
        snprintf(out, sizeof out, "%s/out%d", tmp, variant);
        int st2 = awq_quantize(cpu, dir, out, &o, NULL);
        ck_assert_int_eq(st2, variant == 0 ? AWQ_ERR_NOT_FOUND : AWQ_ERR_BAD_SHAPE);
        ck_assert_ptr_nonnull(strstr(awq_device_last_error(cpu), "model.layers.2.mlp.up_proj.weight"));
        tu_rmtree(dir);
    }
    awq_safetensors_close(st);
    ck_assert_int_eq(count_entries(tmp), 6);
    close_cpu();

    /* interruption: an existing output stays as it was, no temporary directory is left */
    awq_context_options co;
    awq_context_options_init(&co);
    co.cancel = cancel_after_two_blocks;
    ck_assert_int_eq(awq_context_create(&co, &ctx), 0);
    ck_assert_int_eq(awq_device_open(ctx, "cpu", 0, &cpu), 0);
    snprintf(path, sizeof path, "%s/prev", tmp);
    mkdir(path, 0755);
    snprintf(out, sizeof out, "%s/config.json", path);
    ck_assert_int_eq(tu_write_file(out, "{}", 2), 0);
    o.n_samples = 16;
    calls = 0;
    ck_assert_int_eq(awq_quantize(cpu, model_dir, path, &o, NULL), AWQ_ERR_CANCELLED);
    ck_assert_int_eq(count_entries(path), 1);
    ck_assert_int_eq(count_entries(tmp), 7);
    close_cpu();
    tu_rmtree(tmp);
    free(tmp);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_planted_outliers);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_reference_ppl_and_text);
    tcase_add_test(tc, test_quantize_g32);
    tcase_add_test(tc, test_quantize_g64);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    model_dir = tu_data_path("models/stories260K");
    calib = tu_data_path("data/tinystories-calib.txt");
    eval_text = tu_data_path("data/tinystories-eval.txt");
    SRunner *sr = srunner_create(model_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(model_dir);
    free(calib);
    free(eval_text);
    return failed ? 1 : 0;
}
