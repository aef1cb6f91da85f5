#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "model/synth.h"
#include "util/parallel.h"

void awq_synth_defaults(struct awq_synth_params *p)
{
    memset(p, 0, sizeof *p);
    p->hidden = 512;
    p->intermediate = 1408;
    p->n_layers = 4;
    p->n_heads = 8;
    p->n_kv_heads = 8;
    p->vocab = 1024;
    p->n_outliers = 4;
    p->outlier_scale = 30.0f;
    p->seed = 42;
}

static uint64_t rnd(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
    double u1 = ((double)(rnd(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(rnd(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void awq_synth_tokens(uint64_t seed, int vocab, int n_blocks, int seqlen, int32_t *ids)
{
    uint64_t s = seed ^ 0x5bd1e995ULL;
    for (int b = 0; b < n_blocks; b++)
        for (int t = 0; t < seqlen; t++)
            ids[(size_t)b * seqlen + t] = t == 0 ? 1 : 3 + (int32_t)(rnd(&s) % (uint64_t)(vocab - 3));
}

static int add(struct awq_synth *s, const char *name, int ndim, int64_t d0, int64_t d1, struct awq_errbuf *err)
{
    struct awq_st_tensor *t = &s->tensors[s->n];
    size_t numel = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    s->names[s->n] = strdup(name);
    s->data[s->n] = calloc(numel, sizeof(float));
    if (!s->names[s->n] || !s->data[s->n])
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for the demo model");
    t->name = s->names[s->n];
    t->dtype = AWQ_DTYPE_F32;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 0;
    t->numel = numel;
    t->nbytes = numel * sizeof(float);
    t->data = s->data[s->n];
    s->n++;
    return 0;
}

static const struct awq_st_tensor *lookup(void *user, const char *name)
{
    struct awq_synth *s = user;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name))
            return &s->tensors[i];
    return NULL;
}

static void fill(uint64_t *rng, float *w, size_t n, float sd)
{
    for (size_t i = 0; i < n; i++)
        w[i] = gauss(rng) * sd;
}

/* Scales `n_out` channels: the previous op's outputs up (norm weight or linear rows) and the
 * following linears' input columns down — the function is unchanged, the activations are not. */
static void plant(uint64_t *rng, const struct awq_synth_params *p, int width, float *prev_norm, float *prev_rows,
                  int prev_in, float **next, const int *next_out, int n_next)
{
    for (int o = 0; o < p->n_outliers; o++) {
        int c = (int)(rnd(rng) % (uint64_t)width);
        float f = p->outlier_scale * (0.5f + 0.5f * (float)(rnd(rng) % 1000) / 1000.0f);
        if (prev_norm)
            prev_norm[c] *= f;
        if (prev_rows)
            for (int k = 0; k < prev_in; k++)
                prev_rows[(size_t)c * prev_in + k] *= f;
        for (int l = 0; l < n_next; l++)
            for (int r = 0; r < next_out[l]; r++)
                next[l][(size_t)r * width + c] /= f;
    }
}

struct fill_job {
    struct awq_synth *s;
    const struct awq_synth_params *p;
};

/* Fills tensors [i0, i1): each from its own seeded stream, so the result is the same for any
 * thread count. Norms ~ 1 + N(0, 0.1) (the final norm exactly 1), embeddings N(0, 1), lm_head
 * N(0, 0.05), linears N(0, 1/in). */
static void fill_tensors(void *arg, size_t i0, size_t i1)
{
    const struct fill_job *j = arg;
    for (size_t i = i0; i < i1; i++) {
        const struct awq_st_tensor *t = &j->s->tensors[i];
        float *w = j->s->data[i];
        uint64_t rng = j->p->seed * 0x9E3779B97F4A7C15ULL + i;
        if (t->ndim == 1) {
            int final = !strcmp(t->name, "model.norm.weight");
            for (size_t k = 0; k < t->numel; k++)
                w[k] = final ? 1.0f : 1.0f + 0.1f * gauss(&rng);
        } else {
            float sd = !strcmp(t->name, "model.embed_tokens.weight") ? 1.0f
                       : !strcmp(t->name, "lm_head.weight")          ? 0.05f
                                                                     : 1.0f / sqrtf((float)t->shape[1]);
            fill(&rng, w, t->numel, sd);
        }
    }
}

static int build(struct awq_synth *s, const struct awq_synth_params *p, struct awq_errbuf *err)
{
    struct awq_model_config *c = &s->hm.cfg;
    snprintf(c->arch, sizeof c->arch, "LlamaForCausalLM");
    snprintf(c->model_type, sizeof c->model_type, "llama");
    c->hidden = p->hidden;
    c->intermediate = p->intermediate;
    c->n_layers = p->n_layers;
    c->n_heads = p->n_heads;
    c->n_kv_heads = p->n_kv_heads;
    c->head_dim = p->hidden / p->n_heads;
    c->vocab = p->vocab;
    c->max_pos = 4096;
    c->rms_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->bos_id = 1;
    c->eos_id = 2;
    char name[128];
    int rc = add(s, "model.embed_tokens.weight", 2, p->vocab, p->hidden, err);
    if (rc == 0)
        rc = add(s, "model.norm.weight", 1, p->hidden, 0, err);
    if (rc == 0)
        rc = add(s, "lm_head.weight", 2, p->vocab, p->hidden, err);
    for (int l = 0; rc == 0 && l < p->n_layers; l++) {
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        rc = add(s, name, 1, p->hidden, 0, err);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        if (rc == 0)
            rc = add(s, name, 1, p->hidden, 0, err);
        for (int k = 0; rc == 0 && k < AWQ_LIN_COUNT; k++) {
            char prefix[96];
            int in, out;
            awq_lin_shape(c, (enum awq_lin)k, &in, &out);
            awq_lin_prefix(l, (enum awq_lin)k, prefix, sizeof prefix);
            snprintf(name, sizeof name, "%s.weight", prefix);
            rc = add(s, name, 2, out, in, err);
        }
    }
    if (rc < 0)
        return rc;
    struct fill_job fj = { s, p };
    awq_parallel_for((size_t)s->n, 1, fill_tensors, &fj);
    /* the outliers: per layer, tensors 3 + l*9 .. (ln1, ln2, q, k, v, o, gate, up, down) */
    uint64_t rng = p->seed ^ 0xA5A5A5A5ULL;
    for (int l = 0; l < p->n_layers; l++) {
        int base = 3 + l * (2 + AWQ_LIN_COUNT);
        float *ln[2] = { s->data[base], s->data[base + 1] }, *w[AWQ_LIN_COUNT];
        int in[AWQ_LIN_COUNT], out[AWQ_LIN_COUNT];
        for (int k = 0; k < AWQ_LIN_COUNT; k++) {
            w[k] = s->data[base + 2 + k];
            awq_lin_shape(c, (enum awq_lin)k, &in[k], &out[k]);
        }
        float *qkv[3] = { w[AWQ_LIN_Q], w[AWQ_LIN_K], w[AWQ_LIN_V] }, *gu[2] = { w[AWQ_LIN_GATE], w[AWQ_LIN_UP] };
        int qkv_out[3] = { out[AWQ_LIN_Q], out[AWQ_LIN_K], out[AWQ_LIN_V] }, gu_out[2] = { out[AWQ_LIN_GATE], out[AWQ_LIN_UP] };
        plant(&rng, p, p->hidden, ln[0], NULL, 0, qkv, qkv_out, 3);
        plant(&rng, p, p->hidden, ln[1], NULL, 0, gu, gu_out, 2);
        if (out[AWQ_LIN_V] == in[AWQ_LIN_O])
            plant(&rng, p, in[AWQ_LIN_O], NULL, w[AWQ_LIN_V], in[AWQ_LIN_V], &w[AWQ_LIN_O], &out[AWQ_LIN_O], 1);
        plant(&rng, p, p->intermediate, NULL, w[AWQ_LIN_UP], in[AWQ_LIN_UP], &w[AWQ_LIN_DOWN], &out[AWQ_LIN_DOWN], 1);
    }
    return awq_hmodel_bind(&s->hm, lookup, s, err);
}

int awq_synth_create(const struct awq_synth_params *p, struct awq_synth **out, struct awq_errbuf *err)
{
    *out = NULL;
    if (p->hidden <= 0 || p->n_heads <= 0 || p->hidden % p->n_heads || (p->hidden / p->n_heads) % 2 ||
        p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads || p->intermediate <= 0 || p->n_layers <= 0 ||
        p->n_layers > 256 || p->vocab < 8)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "inconsistent demo model shape");
    struct awq_synth *s = calloc(1, sizeof *s);
    int cap = 3 + p->n_layers * (2 + AWQ_LIN_COUNT);
    if (s) {
        s->tensors = calloc((size_t)cap, sizeof *s->tensors);
        s->data = calloc((size_t)cap, sizeof *s->data);
        s->names = calloc((size_t)cap, sizeof *s->names);
    }
    if (!s || !s->tensors || !s->data || !s->names) {
        awq_synth_free(s);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for the demo model");
    }
    int st = build(s, p, err);
    if (st < 0) {
        awq_synth_free(s);
        return st;
    }
    *out = s;
    return 0;
}

void awq_synth_free(struct awq_synth *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->data[i]);
        free(s->names[i]);
    }
    free(s->tensors);
    free(s->data);
    free(s->names);
    free(s->hm.layers);
    free(s);
}
