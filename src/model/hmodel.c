#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "model/hmodel.h"
#include "quant/q4.h"

const char *const awq_lin_names[AWQ_LIN_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
};

void awq_lin_shape(const struct awq_model_config *c, enum awq_lin k, int *in, int *out)
{
    int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    static const int dummy = 0;
    (void)dummy;
    switch (k) {
    case AWQ_LIN_Q: *in = c->hidden; *out = q; break;
    case AWQ_LIN_K:
    case AWQ_LIN_V: *in = c->hidden; *out = kv; break;
    case AWQ_LIN_O: *in = q; *out = c->hidden; break;
    case AWQ_LIN_GATE:
    case AWQ_LIN_UP: *in = c->hidden; *out = c->intermediate; break;
    default: *in = c->intermediate; *out = c->hidden; break;
    }
}

void awq_lin_prefix(int layer, enum awq_lin k, char *out, size_t n)
{
    snprintf(out, n, "model.layers.%d.%s", layer, awq_lin_names[k]);
}

static int is_float(awq_dtype t)
{
    return t == AWQ_DTYPE_F32 || t == AWQ_DTYPE_F16 || t == AWQ_DTYPE_BF16;
}

static int check_tensor(const struct awq_st_tensor *t, const char *name, int ndim, int64_t d0, int64_t d1,
                        int want_float, awq_dtype want, struct awq_errbuf *err)
{
    if (!t)
        return awq_err_set(err, AWQ_ERR_NOT_FOUND, "tensor %s is missing", name);
    if (want_float ? !is_float(t->dtype) : t->dtype != want)
        return awq_err_set(err, AWQ_ERR_BAD_DTYPE, "tensor %s has dtype %s, expected %s", name,
                           awq_dtype_name(t->dtype), want_float ? "F32, F16 or BF16" : awq_dtype_name(want));
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[96] = "", exp[64];
        for (int i = 0; i < t->ndim && i < 4; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (ndim == 2)
            snprintf(exp, sizeof exp, "%lld, %lld", (long long)d0, (long long)d1);
        else
            snprintf(exp, sizeof exp, "%lld", (long long)d0);
        return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "tensor %s has shape [%s], the config implies [%s]", name, got, exp);
    }
    return 0;
}


static int bind_linear(struct awq_hmodel *m, awq_tensor_lookup find, void *user, int layer, enum awq_lin k,
                       struct awq_errbuf *err)
{
    const struct awq_model_config *c = &m->cfg;
    struct awq_hlinear *l = &m->layers[layer].lin[k];
    char prefix[128], name[160];
    awq_lin_prefix(layer, k, prefix, sizeof prefix);
    awq_lin_shape(c, k, &l->in, &l->out);
    snprintf(name, sizeof name, "%s.weight", prefix);
    l->w = find(user, name);
    if (!l->w && c->quantized) {
        int G = c->group_size;
        if (l->in % G || l->out % 8)
            return awq_err_set(err, AWQ_ERR_BAD_SHAPE, "%s: a %dx%d linear cannot be 4-bit with group size %d "
                               "and has no unquantized weight", prefix, l->in, l->out, G);
        snprintf(name, sizeof name, "%s.qweight", prefix);
        l->qweight = find(user, name);
        AWQ_TRY(check_tensor(l->qweight, name, 2, l->in, l->out / 8, 0, AWQ_DTYPE_I32, err));
        snprintf(name, sizeof name, "%s.qzeros", prefix);
        l->qzeros = find(user, name);
        AWQ_TRY(check_tensor(l->qzeros, name, 2, l->in / G, l->out / 8, 0, AWQ_DTYPE_I32, err));
        snprintf(name, sizeof name, "%s.scales", prefix);
        l->scales = find(user, name);
        AWQ_TRY(check_tensor(l->scales, name, 2, l->in / G, l->out, 0, AWQ_DTYPE_F16, err));
    } else {
        AWQ_TRY(check_tensor(l->w, name, 2, l->out, l->in, 1, AWQ_DTYPE_F32, err));
    }
    int want_bias = (k <= AWQ_LIN_V && c->qkv_bias) || (k == AWQ_LIN_O && c->o_bias) || (k >= AWQ_LIN_GATE && c->mlp_bias);
    snprintf(name, sizeof name, "%s.bias", prefix);
    l->bias = find(user, name);
    if (want_bias)
        AWQ_TRY(check_tensor(l->bias, name, 1, l->out, 0, 1, AWQ_DTYPE_F32, err));
    else if (l->bias)
        AWQ_TRY(check_tensor(l->bias, name, 1, l->out, 0, 1, AWQ_DTYPE_F32, err));
    return 0;
}

int awq_hmodel_bind(struct awq_hmodel *m, awq_tensor_lookup find, void *user, struct awq_errbuf *err)
{
    const struct awq_model_config *c = &m->cfg;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    m->embed = find(user, "model.embed_tokens.weight");
    AWQ_TRY(check_tensor(m->embed, "model.embed_tokens.weight", 2, c->vocab, c->hidden, 1, AWQ_DTYPE_F32, err));
    m->norm = find(user, "model.norm.weight");
    AWQ_TRY(check_tensor(m->norm, "model.norm.weight", 1, c->hidden, 0, 1, AWQ_DTYPE_F32, err));
    m->lm_head = c->tie_embeddings ? NULL : find(user, "lm_head.weight");
    if (!m->lm_head && !c->tie_embeddings)
        return awq_err_set(err, AWQ_ERR_NOT_FOUND, "tensor lm_head.weight is missing and tie_word_embeddings is false");
    if (m->lm_head)
        AWQ_TRY(check_tensor(m->lm_head, "lm_head.weight", 2, c->vocab, c->hidden, 1, AWQ_DTYPE_F32, err));
    else
        m->lm_head = m->embed;
    char name[160];
    for (int i = 0; i < c->n_layers; i++) {
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", i);
        m->layers[i].ln1 = find(user, name);
        AWQ_TRY(check_tensor(m->layers[i].ln1, name, 1, c->hidden, 0, 1, AWQ_DTYPE_F32, err));
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", i);
        m->layers[i].ln2 = find(user, name);
        AWQ_TRY(check_tensor(m->layers[i].ln2, name, 1, c->hidden, 0, 1, AWQ_DTYPE_F32, err));
        for (int k = 0; k < AWQ_LIN_COUNT; k++)
            AWQ_TRY(bind_linear(m, find, user, i, (enum awq_lin)k, err));
    }
    return 0;
}

static const struct awq_st_tensor *st_lookup(void *user, const char *name)
{
    return awq_safetensors_find(user, name);
}

int awq_hmodel_open(const char *dir, struct awq_hmodel **out, struct awq_errbuf *err)
{
    *out = NULL;
    struct awq_hmodel *m = calloc(1, sizeof *m);
    if (!m)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    int st = awq_config_load(dir, &m->cfg, err);
    if (st == 0)
        st = awq_safetensors_open(dir, &m->st, err);
    if (st == 0) {
        st = awq_hmodel_bind(m, st_lookup, m->st, err);
        if (st < 0)
            awq_err_prefix(err, "%s", dir);
    }
    if (st < 0) {
        awq_hmodel_close(m);
        return st;
    }
    *out = m;
    return 0;
}

void awq_hmodel_close(struct awq_hmodel *m)
{
    if (!m)
        return;
    awq_safetensors_close(m->st);
    free(m->layers);
    free(m);
}

int awq_hlinear_f32(const struct awq_hlinear *l, int G, float *w, struct awq_errbuf *err)
{
    if (l->w)
        return awq_st_tensor_to_f32(l->w, w, err);
    size_t nk = (size_t)l->out * l->in, ng = (size_t)l->out * (l->in / G);
    uint8_t *q = malloc(nk), *z = malloc(ng);
    float *s = malloc(ng * sizeof(float));
    int st = 0;
    if (!q || !z || !s)
        st = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory dequantizing a %dx%d linear", l->in, l->out);
    else {
        awq_gemm_unpack(l->qweight->data, l->qzeros->data, l->scales->data, l->out, l->in, G, q, s, z);
        awq_q4_dequantize(q, s, z, l->out, l->in, G, w);
    }
    free(q);
    free(z);
    free(s);
    return st;
}
