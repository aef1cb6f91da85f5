/* awq_quantize: the whole pipeline — calibration data, block-by-block AWQ (or RTN), the report,
 * and the checkpoint. */
#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/context.h"
#include "format/checkpoint.h"
#include "model/corpus.h"
#include "quant/awq_layer.h"
#include "tokenizer/tokenizer.h"

struct awq_quantize_report {
    char *json;
};

AWQ_API void awq_quantize_options_init(awq_quantize_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->method = AWQ_METHOD_AWQ;
    o->group_size = 128;
    o->n_samples = 128;
    o->seqlen = 512;
    o->n_grid = 20;
    o->alpha = -1;
    o->clip = 1;
    o->clip_tokens = 512;
    o->shard_bytes = 5000000000ULL;
}

AWQ_API const char *awq_quantize_report_json(const awq_quantize_report *r)
{
    return r ? r->json : NULL;
}

AWQ_API void awq_quantize_report_destroy(awq_quantize_report *r)
{
    if (!r)
        return;
    free(r->json);
    free(r);
}


static int check_options(const awq_quantize_options *o, struct awq_errbuf *err)
{
    if (o->method != AWQ_METHOD_AWQ && o->method != AWQ_METHOD_RTN)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "unknown method %d", (int)o->method);
    if (o->group_size != 32 && o->group_size != 64 && o->group_size != 128)
        return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "group size %d (supported: 32, 64, 128)", o->group_size);
    if (o->method == AWQ_METHOD_AWQ && (!o->calib_path || !*o->calib_path))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "AWQ needs calibration data (a text or token-id file)");
    if (o->n_samples < 1 || o->seqlen < 2 || o->seqlen > (1 << 20) || o->n_grid < 1 || o->n_grid > 1000 ||
        o->alpha > 1 || o->clip_tokens < 1 || o->shard_bytes < 1024 ||
        (unsigned)o->calib_format > AWQ_CALIB_FORMAT_IDS)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "options out of range (n_samples >= 1, 2 <= seqlen <= "
                           "2^20, 1 <= n_grid <= 1000, alpha <= 1, clip_tokens >= 1, shard size >= 1 KiB)");
    return 0;
}

/* FNV-1a over the calibration token ids: the fingerprint recorded in the checkpoint. */
static uint64_t fingerprint(const int32_t *ids, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)ids;
    for (size_t i = 0; i < n * sizeof *ids; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Embeds the calibration tokens into s->h (the table goes up as fp32 and is freed after). */
int awq_calib_state_embed(struct awq_calib_state *s, const struct awq_hmodel *hm, const int32_t *ids)
{
    struct awq_device *dev = s->dev;
    const struct awq_st_tensor *t = hm->embed;
    float *tab = malloc(t->numel * sizeof(float));
    if (!tab)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for the embedding table");
    awq_buffer *bt = NULL, *bi = NULL;
    int st = awq_st_tensor_to_f32(t, tab, &dev->err);
    if (st == 0)
        st = awq_upload_f32(dev, tab, t->numel, &bt);
    free(tab);
    if (st == 0)
        st = awq_buffer_create(dev, (size_t)s->T * sizeof(int32_t), &bi);
    if (st == 0)
        st = awq_buffer_write(bi, 0, ids, (size_t)s->T * sizeof(int32_t));
    struct awq_embed_args e = { .T = s->T, .C = hm->cfg.hidden, .vocab = hm->cfg.vocab, .table_type = AWQ_DTYPE_F32,
                                .table = { bt, 0 }, .ids = { bi, 0 }, .out = { s->h, 0 } };
    if (st == 0)
        st = awq_op_embed(dev, &e);
    awq_buffer_destroy(bt);
    awq_buffer_destroy(bi);
    return st;
}

/* ---- report --------------------------------------------------------------------------------- */

static const char *short_name(int k)
{
    const char *n = awq_lin_names[k];
    const char *dot = strchr(n, '.');
    return dot ? dot + 1 : n;
}

static json_t *layer_json(int i, const struct awq_layer_report *r, int awq)
{
    json_t *j = json_object(), *grp = json_object(), *clip = json_object();
    json_object_set_new(j, "layer", json_integer(i));
    for (int g = 0; awq && g < AWQ_GRP_COUNT; g++) {
        if (!r->grp[g].searched)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "ratio", json_real(r->grp[g].ratio));
        json_object_set_new(o, "loss_rtn", json_real(r->grp[g].loss_rtn));
        json_object_set_new(o, "loss", json_real(r->grp[g].loss_best));
        json_object_set_new(grp, awq_group_names[g], o);
    }
    for (int k = 0; awq && k < AWQ_LIN_COUNT; k++) {
        if (!r->quantized[k] || k == AWQ_LIN_Q || k == AWQ_LIN_K || r->clip_mean[k] == 0)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "mean_shrink", json_real(r->clip_mean[k]));
        json_object_set_new(o, "clipped_fraction", json_real(r->clip_frac[k]));
        json_object_set_new(clip, short_name(k), o);
    }
    json_object_set_new(j, "scales", grp);
    json_object_set_new(j, "clip", clip);
    json_t *q = json_array();
    for (int k = 0; k < AWQ_LIN_COUNT; k++)
        if (!r->quantized[k])
            json_array_append_new(q, json_string(short_name(k)));
    json_object_set_new(j, "not_quantized", q);
    json_t *u = json_array();
    for (int k = 0; k < AWQ_LIN_COUNT; k++)
        if (r->quantized[k] && !r->packed[k])
            json_array_append_new(u, json_string(short_name(k)));
    json_object_set_new(j, "stored_dequantized", u);
    if (r->out_power > 0) {
        json_object_set_new(j, "output_power", json_real(r->out_power));
        json_object_set_new(j, "err_rtn", json_real(r->err_rtn));
        if (awq)
            json_object_set_new(j, "err_awq", json_real(r->err_awq));
    }
    json_object_set_new(j, "seconds", json_real(r->seconds));
    return j;
}

struct run {
    struct awq_device *dev;
    const awq_quantize_options *o;
    struct awq_hmodel *hm;
    struct awq_qlayer *ql;
    int32_t *ids;
    int n_blocks;
    struct awq_calib_stats cs;
    double seconds;
    uint64_t peak;
};

static char *report_text(const struct run *r, const char *model_dir, const char *out_dir)
{
    json_t *j = json_object(), *layers = json_array();
    const awq_quantize_options *o = r->o;
    json_object_set_new(j, "libawq", json_string(AWQ_VERSION_STRING));
    json_object_set_new(j, "model", json_string(model_dir));
    json_object_set_new(j, "output", json_string(out_dir));
    json_object_set_new(j, "method", json_string(o->method == AWQ_METHOD_AWQ ? "awq" : "rtn"));
    json_object_set_new(j, "group_size", json_integer(o->group_size));
    if (o->method == AWQ_METHOD_AWQ) {
        json_object_set_new(j, "n_grid", json_integer(o->alpha >= 0 ? 0 : o->n_grid));
        if (o->alpha >= 0)
            json_object_set_new(j, "alpha", json_real(o->alpha));
        json_object_set_new(j, "duo_scaling", json_boolean(o->duo_scaling));
        json_object_set_new(j, "clip", json_boolean(o->clip));
    }
    if (r->ids) {
        json_t *c = json_object();
        char fp[32];
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)fingerprint(r->ids, (size_t)r->n_blocks * o->seqlen));
        json_object_set_new(c, "path", json_string(o->calib_path));
        json_object_set_new(c, "documents", json_integer((json_int_t)r->cs.docs_used));
        json_object_set_new(c, "documents_too_long", json_integer((json_int_t)r->cs.docs_too_long));
        json_object_set_new(c, "blocks", json_integer(r->n_blocks));
        json_object_set_new(c, "seqlen", json_integer(o->seqlen));
        json_object_set_new(c, "tokens", json_integer((json_int_t)r->cs.tokens_used));
        json_object_set_new(c, "fingerprint_fnv1a64", json_string(fp));
        json_object_set_new(j, "calibration", c);
    }
    json_t *d = json_object();
    json_object_set_new(d, "backend", json_string(r->dev->info.backend));
    json_object_set_new(d, "name", json_string(r->dev->info.name));
    json_object_set_new(d, "peak_memory_bytes", json_integer((json_int_t)r->peak));
    json_object_set_new(j, "device", d);
    json_object_set_new(j, "seconds", json_real(r->seconds));
    for (int i = 0; i < r->hm->cfg.n_layers; i++)
        json_array_append_new(layers, layer_json(i, &r->ql[i].rep, o->method == AWQ_METHOD_AWQ));
    json_object_set_new(j, "layers", layers);
    char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(j);
    return s;
}

/* ---- checkpoint ------------------------------------------------------------------------------ */

static awq_dtype store_type(const awq_quantize_options *o, const struct awq_st_tensor *src)
{
    if (o->keep_dtype && src && (src->dtype == AWQ_DTYPE_F32 || src->dtype == AWQ_DTYPE_BF16))
        return src->dtype;
    return AWQ_DTYPE_F16;
}

static int add_source(struct awq_ckpt *c, const awq_quantize_options *o, const struct awq_st_tensor *t,
                      const char *name, struct awq_errbuf *err)
{
    float *f = malloc(t->numel * sizeof(float));
    if (!f)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    int st = awq_st_tensor_to_f32(t, f, err);
    if (st == 0)
        st = awq_ckpt_add_f32(c, name, store_type(o, t), t->ndim, t->shape, f, err);
    free(f);
    return st;
}

static int add_layer(struct awq_ckpt *c, const struct run *r, int i, struct awq_errbuf *err)
{
    const struct awq_hlayer *h = &r->hm->layers[i];
    const struct awq_qlayer *q = &r->ql[i];
    const awq_quantize_options *o = r->o;
    char name[192], prefix[128];
    int64_t hs[1] = { r->hm->cfg.hidden };
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", i);
    AWQ_TRY(awq_ckpt_add_f32(c, name, store_type(o, h->ln1), 1, hs, q->ln1, err));
    snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", i);
    AWQ_TRY(awq_ckpt_add_f32(c, name, store_type(o, h->ln2), 1, hs, q->ln2, err));
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        const struct awq_qlinear *l = &q->lin[k];
        awq_lin_prefix(i, (enum awq_lin)k, prefix, sizeof prefix);
        if (l->packed) {
            int64_t qs[2] = { l->in, l->out / 8 }, zs[2] = { l->in / o->group_size, l->out / 8 },
                    ss[2] = { l->in / o->group_size, l->out };
            snprintf(name, sizeof name, "%s.qweight", prefix);
            AWQ_TRY(awq_ckpt_add(c, name, AWQ_DTYPE_I32, 2, qs, l->qweight, (size_t)l->in * l->out / 2, err));
            snprintf(name, sizeof name, "%s.qzeros", prefix);
            AWQ_TRY(awq_ckpt_add(c, name, AWQ_DTYPE_I32, 2, zs, l->qzeros, (size_t)zs[0] * l->out / 2, err));
            snprintf(name, sizeof name, "%s.scales", prefix);
            AWQ_TRY(awq_ckpt_add(c, name, AWQ_DTYPE_F16, 2, ss, l->scales, (size_t)ss[0] * l->out * 2, err));
        } else {
            int64_t ws[2] = { l->out, l->in };
            snprintf(name, sizeof name, "%s.weight", prefix);
            AWQ_TRY(awq_ckpt_add_f32(c, name, store_type(o, h->lin[k].w), 2, ws, l->w, err));
        }
        if (l->bias) {
            int64_t bs[1] = { l->out };
            snprintf(name, sizeof name, "%s.bias", prefix);
            AWQ_TRY(awq_ckpt_add_f32(c, name, store_type(o, h->lin[k].bias), 1, bs, l->bias, err));
        }
    }
    return 0;
}

/* modules_to_not_convert: a kind left unquantized in every layer is listed by its short name
 * ("mlp.down_proj", which AutoAWQ, vLLM and transformers match as a substring), else each one. */
static int list_not_converted(struct awq_ckpt *c, const struct run *r, struct awq_errbuf *err)
{
    int L = r->hm->cfg.n_layers;
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        int n = 0;
        for (int i = 0; i < L; i++)
            n += !r->ql[i].lin[k].packed;
        for (int i = 0; i < L && n; i++) {
            if (r->ql[i].lin[k].packed)
                continue;
            char name[128];
            if (n == L)
                snprintf(name, sizeof name, "%s", awq_lin_names[k]);
            else
                awq_lin_prefix(i, (enum awq_lin)k, name, sizeof name);
            if (c->n_not_convert == 512 || !(c->not_convert[c->n_not_convert] = strdup(name)))
                return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "too many unquantized linears to list");
            c->n_not_convert++;
            if (n == L)
                break;
        }
    }
    return 0;
}

static int cancel_cb(void *user)
{
    return awq_cancelled(user);
}

static int write_checkpoint(const struct run *r, const char *model_dir, const char *out_dir, const char *report,
                            struct awq_errbuf *err)
{
    const awq_quantize_options *o = r->o;
    struct awq_ckpt c;
    memset(&c, 0, sizeof c);
    c.group_size = o->group_size;
    c.keep_dtype = o->keep_dtype;
    c.shard_bytes = o->shard_bytes;
    c.meta_keys[0] = "format";
    c.meta_vals[0] = "pt";
    c.meta_keys[1] = "libawq_version";
    c.meta_vals[1] = AWQ_VERSION_STRING;
    c.meta_keys[2] = "libawq_report";
    c.meta_vals[2] = report;
    c.n_meta = 3;
    int st = add_source(&c, o, r->hm->embed, "model.embed_tokens.weight", err);
    for (int i = 0; st == 0 && i < r->hm->cfg.n_layers; i++)
        st = add_layer(&c, r, i, err);
    if (st == 0)
        st = add_source(&c, o, r->hm->norm, "model.norm.weight", err);
    if (st == 0 && r->hm->lm_head != r->hm->embed)
        st = add_source(&c, o, r->hm->lm_head, "lm_head.weight", err);
    if (st == 0)
        st = list_not_converted(&c, r, err);
    awq_progress(r->dev->ctx, "writing checkpoint", 0, 1);
    if (st == 0)
        st = awq_ckpt_write(&c, model_dir, out_dir, cancel_cb, r->dev->ctx, err);
    awq_progress(r->dev->ctx, "writing checkpoint", 1, 1);
    awq_ckpt_free(&c);
    return st;
}

/* ---- the pipeline ---------------------------------------------------------------------------- */

static int load_calibration(struct run *r, const char *model_dir)
{
    const awq_quantize_options *o = r->o;
    struct awq_device *dev = r->dev;
    struct awq_tok *tok = NULL;
    int st = 0;
    awq_calib_format fmt = o->calib_format;
    struct awq_errbuf tok_err;
    awq_err_clear(&tok_err);
    /* a token-id file needs no tokenizer: a failure to load one matters only for text */
    if (fmt != AWQ_CALIB_FORMAT_IDS && awq_tok_load(model_dir, &tok, &tok_err) < 0)
        tok = NULL;
    st = awq_calib_blocks(tok, o->calib_path, fmt, r->hm->cfg.vocab, o->n_samples, o->seqlen, &r->ids,
                          &r->n_blocks, &r->cs, &dev->err);
    if (st == AWQ_ERR_NOT_FOUND && !tok && tok_err.code < 0)
        st = awq_err_copy(&dev->err, &tok_err);
    awq_tok_free(tok);
    if (st == 0)
        awq_log(dev->ctx, AWQ_LOG_INFO, "calibration: %zu documents (%zu longer than %d skipped), %d blocks of %d tokens",
                r->cs.docs_used, r->cs.docs_too_long, o->seqlen, r->n_blocks, o->seqlen);
    return st;
}

/* Says once per kind which linears stay unquantized, or cannot be packed. */
static void warn_layout(struct awq_device *dev, const struct awq_hmodel *hm, const awq_quantize_options *o)
{
    const struct awq_model_config *c = &hm->cfg;
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        int in, out;
        awq_lin_shape(c, (enum awq_lin)k, &in, &out);
        if (in % o->group_size)
            awq_log(dev->ctx, AWQ_LOG_WARN, "%s: input width %d is not a multiple of the group size %d: "
                    "kept unquantized (listed in modules_to_not_convert)", awq_lin_names[k], in, o->group_size);
        else if (out % 8)
            awq_log(dev->ctx, AWQ_LOG_WARN, "%s: output width %d is not a multiple of 8, which the AutoAWQ GEMM "
                    "layout cannot pack: quantized, but stored as its dequantized 4-bit values (listed in "
                    "modules_to_not_convert)", awq_lin_names[k], out);
    }
}

int awq_quantize_layers(struct awq_device *dev, const struct awq_hmodel *hm, const int32_t *ids, int n_blocks,
                        const awq_quantize_options *o, struct awq_qlayer *ql)
{
    warn_layout(dev, hm, o);
    const struct awq_model_config *c = &hm->cfg;
    struct awq_calib_state s, *sp = NULL;
    int st = 0;
    if (ids) {
        st = awq_calib_state_init(&s, dev, c, n_blocks, o->seqlen);
        if (st < 0)
            return st;
        sp = &s;
        st = awq_calib_state_embed(&s, hm, ids);
    }
    for (int i = 0; st == 0 && i < c->n_layers; i++) {
        st = awq_layer_run(sp, hm, i, o, &ql[i], &dev->err);
        if (st == 0) {
            const struct awq_layer_report *rep = &ql[i].rep;
            char ratios[128] = "";
            for (int g = 0; g < AWQ_GRP_COUNT; g++)
                if (rep->grp[g].searched)
                    snprintf(ratios + strlen(ratios), sizeof ratios - strlen(ratios), " %s=%.2f", awq_group_names[g],
                             rep->grp[g].ratio);
            awq_log(dev->ctx, AWQ_LOG_INFO, "block %d/%d:%s err rtn %.3g awq %.3g (%.1fs: load %.1f, record %.1f, "
                    "scales %.1f, clip %.1f, quantize %.1f)", i + 1, c->n_layers, ratios, rep->err_rtn, rep->err_awq,
                    rep->seconds, rep->t_load, rep->t_record, rep->t_scales, rep->t_clip, rep->t_finish);
        }
        awq_progress(dev->ctx, "quantizing blocks", i + 1, c->n_layers);
        if (st == 0 && awq_cancelled(dev->ctx))
            st = awq_err_set(&dev->err, AWQ_ERR_CANCELLED, "cancelled after block %d", i + 1);
    }
    if (sp)
        awq_calib_state_free(sp);
    return st;
}

AWQ_API int awq_quantize(awq_device *dev, const char *model_dir, const char *out_dir, const awq_quantize_options *opt,
                         awq_quantize_report **report)
{
    if (!dev || !model_dir || !out_dir || !opt || opt->struct_size != sizeof *opt)
        return AWQ_ERR_INVALID_ARGUMENT;
    if (report)
        *report = NULL;
    double t0 = now_s();
    struct run r;
    memset(&r, 0, sizeof r);
    r.dev = dev;
    r.o = opt;
    awq_device_reset_peak(dev);
    int st = check_options(opt, &dev->err);
    if (st == 0)
        st = awq_ckpt_check_target(out_dir, &dev->err);
    if (st == 0)
        st = awq_hmodel_open(model_dir, &r.hm, &dev->err);
    if (st == 0 && r.hm->cfg.quantized)
        st = awq_err_set(&dev->err, AWQ_ERR_UNSUPPORTED, "%s is already a 4-bit AWQ checkpoint", model_dir);
    if (st == 0 && opt->calib_path && *opt->calib_path)
        st = load_calibration(&r, model_dir);
    if (st == 0 && !(r.ql = calloc((size_t)r.hm->cfg.n_layers, sizeof *r.ql)))
        st = awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == 0)
        st = awq_quantize_layers(dev, r.hm, r.ids, r.n_blocks, opt, r.ql);
    r.seconds = now_s() - t0;
    awq_device_memory(dev, NULL, &r.peak);
    char *text = st == 0 ? report_text(&r, model_dir, out_dir) : NULL;
    if (st == 0 && !text)
        st = awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for the report");
    if (st == 0)
        st = write_checkpoint(&r, model_dir, out_dir, text, &dev->err);
    if (st == 0 && report) {
        *report = calloc(1, sizeof **report);
        if (*report)
            (*report)->json = text, text = NULL;
    }
    free(text);
    if (r.ql)
        for (int i = 0; i < r.hm->cfg.n_layers; i++)
            awq_qlayer_free(&r.ql[i]);
    free(r.ql);
    free(r.ids);
    awq_hmodel_close(r.hm);
    return st;
}
