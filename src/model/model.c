/* awq_model: a whole model on a device for perplexity and generation. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "model/corpus.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"
#include "util/half.h"

struct awq_model {
    struct awq_device *dev;
    struct awq_hmodel *hm;
    struct awq_tok *tok;
    awq_model_options opt;
    struct awq_dlayer *layers;
    awq_buffer *embed, *norm;        /* embed: [vocab, hidden] as embed_type */
    awq_dtype embed_type;
    struct awq_dlinear head;         /* lm_head (shares nothing with embed on the device) */
    struct awq_errbuf err;
};


AWQ_API void awq_model_options_init(awq_model_options *opt)
{
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
}

AWQ_API void awq_generate_options_init(awq_generate_options *opt)
{
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->max_new_tokens = 128;
    opt->top_p = 1.0f;
    opt->stop_at_eos = 1;
}

AWQ_API const char *awq_model_last_error(const awq_model *m)
{
    return m ? m->err.msg : "no model";
}

static int upload_table(struct awq_device *dev, const struct awq_st_tensor *t, awq_dtype type, awq_buffer **out)
{
    float *f = malloc(t->numel * sizeof(float));
    if (!f)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %s", t->name);
    int st = awq_st_tensor_to_f32(t, f, &dev->err);
    if (st == 0 && type == AWQ_DTYPE_F16) {
        uint16_t *h = malloc(t->numel * 2);
        if (!h)
            st = awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %s", t->name);
        else {
            awq_f32_to_f16_n(f, h, t->numel);
            st = awq_buffer_create(dev, t->numel * 2, out);
            if (st == 0)
                st = awq_buffer_write(*out, 0, h, t->numel * 2);
            free(h);
        }
    } else if (st == 0) {
        st = awq_upload_f32(dev, f, t->numel, out);
    }
    free(f);
    return st;
}

static int load_weights(struct awq_model *m)
{
    struct awq_device *dev = m->dev;
    const struct awq_model_config *c = &m->hm->cfg;
    awq_dtype wt = m->opt.f16_weights ? AWQ_DTYPE_F16 : AWQ_DTYPE_F32;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    m->embed_type = wt;
    AWQ_TRY(upload_table(dev, m->hm->embed, wt, &m->embed));
    AWQ_TRY(upload_table(dev, m->hm->norm, AWQ_DTYPE_F32, &m->norm));
    struct awq_hlinear head = { c->hidden, c->vocab, m->hm->lm_head, NULL, NULL, NULL, NULL };
    AWQ_TRY(awq_dlinear_from_host(dev, &m->head, &head, c->group_size, 1, wt));
    for (int i = 0; i < c->n_layers; i++) {
        if (awq_cancelled(dev->ctx))
            return awq_err_set(&dev->err, AWQ_ERR_CANCELLED, "cancelled while loading");
        awq_progress(dev->ctx, "loading layers", i, c->n_layers);
        AWQ_TRY(awq_dlayer_from_host(dev, &m->layers[i], m->hm, i, m->opt.dequantize, wt));
    }
    awq_progress(dev->ctx, "loading layers", c->n_layers, c->n_layers);
    return 0;
}

AWQ_API void awq_model_destroy(awq_model *m)
{
    if (!m)
        return;
    if (m->layers)
        for (int i = 0; i < m->hm->cfg.n_layers; i++)
            awq_dlayer_free(&m->layers[i]);
    free(m->layers);
    awq_buffer_destroy(m->embed);
    awq_buffer_destroy(m->norm);
    awq_dlinear_free(&m->head);
    awq_tok_free(m->tok);
    awq_hmodel_close(m->hm);
    free(m);
}

AWQ_API int awq_model_load(awq_device *dev, const char *dir, const awq_model_options *opt, awq_model **out)
{
    if (!dev || !dir || !out || (opt && opt->struct_size != sizeof *opt))
        return AWQ_ERR_INVALID_ARGUMENT;
    *out = NULL;
    struct awq_model *m = calloc(1, sizeof *m);
    if (!m)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    m->dev = dev;
    if (opt)
        m->opt = *opt;
    else
        awq_model_options_init(&m->opt);
    int st = awq_hmodel_open(dir, &m->hm, &dev->err);
    if (st == 0)
        st = awq_tok_load(dir, &m->tok, &dev->err);
    if (st == 0)
        st = load_weights(m);
    if (st < 0) {
        awq_err_copy(&m->err, &dev->err);
        awq_model_destroy(m);
        return st;
    }
    *out = m;
    return 0;
}

/* ---- forward over sequences ---------------------------------------------------------------- */

struct run_bufs {
    awq_buffer *ids, *h, *logits, *targets, *nll;
};

static void free_bufs(struct run_bufs *b)
{
    awq_buffer_destroy(b->ids);
    awq_buffer_destroy(b->h);
    awq_buffer_destroy(b->logits);
    awq_buffer_destroy(b->targets);
    awq_buffer_destroy(b->nll);
    memset(b, 0, sizeof *b);
}


/* Embedding of T ids (already on the device) into h. */
static int embed(struct awq_model *m, int T, awq_buffer *ids, awq_buffer *h)
{
    const struct awq_model_config *c = &m->hm->cfg;
    struct awq_embed_args e = { .T = T, .C = c->hidden, .vocab = c->vocab, .table_type = m->embed_type,
                                .table = awq_at(m->embed), .ids = awq_at(ids), .out = awq_at(h) };
    return awq_op_embed(m->dev, &e);
}

/* Final norm and lm_head for `rows` rows of h starting at row r0 → logits. */
static int head(struct awq_model *m, struct awq_fwd *f, awq_buffer *h, int r0, int rows, awq_buffer *logits)
{
    const struct awq_model_config *c = &m->hm->cfg;
    struct awq_tref src = { h, (size_t)r0 * c->hidden * sizeof(float) };
    struct awq_rmsnorm_args n = { .T = rows, .C = c->hidden, .eps = c->rms_eps, .x = src, .w = awq_at(m->norm),
                                  .y = awq_at(f->xn) };
    AWQ_TRY(awq_op_rmsnorm(m->dev, &n));
    return awq_linear(f, &m->head, rows, awq_at(f->xn), awq_at(logits));
}

static int check_ids(struct awq_model *m, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->hm->cfg.vocab)
            return awq_err_set(&m->dev->err, AWQ_ERR_BAD_INPUT, "token id %d at %zu is outside the vocabulary (%d)",
                               ids[i], i, m->hm->cfg.vocab);
    return 0;
}

static int ppl_batches(struct awq_model *m, const int32_t *ids, int n_windows, int W, double *nll_sum)
{
    struct awq_device *dev = m->dev;
    const struct awq_model_config *c = &m->hm->cfg;
    size_t per_tok = (size_t)c->vocab + (size_t)c->intermediate * 2 + (size_t)c->n_heads * c->head_dim * 3 +
                     (size_t)c->hidden * 4;
    size_t budget = dev->info.type == AWQ_DEVICE_GPU ? (size_t)2 << 30 : (size_t)256 << 20;
    int B = (int)(budget / (per_tok * sizeof(float) * (size_t)W));
    B = B < 1 ? 1 : (B > n_windows ? n_windows : B);
    int T = B * W;
    struct awq_fwd f;
    struct run_bufs b = { 0 };
    int st = awq_fwd_init(&f, dev, c, T);
    if (st == 0)
        st = awq_buffer_create(dev, (size_t)T * 4, &b.ids);
    if (st == 0)
        st = awq_buffer_create(dev, (size_t)T * c->hidden * 4, &b.h);
    if (st == 0)
        st = awq_buffer_create(dev, (size_t)T * c->vocab * 4, &b.logits);
    if (st == 0)
        st = awq_buffer_create(dev, (size_t)T * 4, &b.targets);
    if (st == 0)
        st = awq_buffer_create(dev, (size_t)T * 4, &b.nll);
    int32_t *tg = malloc((size_t)T * 4);
    float *nll = malloc((size_t)T * 4);
    if (st == 0 && (!tg || !nll))
        st = awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    *nll_sum = 0;
    for (int w0 = 0; st == 0 && w0 < n_windows; w0 += B) {
        int nb = n_windows - w0 < B ? n_windows - w0 : B, t = nb * W;
        const int32_t *src = ids + (size_t)w0 * W;
        for (int i = 0; i < t; i++)
            tg[i] = i % W == W - 1 ? 0 : src[i + 1];
        st = awq_buffer_write(b.ids, 0, src, (size_t)t * 4);
        if (st == 0)
            st = awq_buffer_write(b.targets, 0, tg, (size_t)t * 4);
        if (st == 0)
            st = embed(m, t, b.ids, b.h);
        for (int l = 0; st == 0 && l < c->n_layers; l++)
            st = awq_block_forward(&f, &m->layers[l], nb, W, awq_at(b.h), NULL, 0, NULL);
        if (st == 0)
            st = head(m, &f, b.h, 0, t, b.logits);
        struct awq_cross_entropy_args ce = { .T = t, .V = c->vocab, .logits = awq_at(b.logits), .targets = awq_at(b.targets),
                                             .nll = awq_at(b.nll) };
        if (st == 0)
            st = awq_op_cross_entropy(dev, &ce);
        if (st == 0)
            st = awq_buffer_read(b.nll, 0, nll, (size_t)t * 4);
        for (int i = 0; st == 0 && i < t; i++)
            if (i % W != W - 1)
                *nll_sum += nll[i];
        awq_progress(dev->ctx, "perplexity", w0 + nb, n_windows);
        if (st == 0 && awq_cancelled(dev->ctx))
            st = awq_err_set(&dev->err, AWQ_ERR_CANCELLED, "perplexity cancelled");
    }
    free(tg);
    free(nll);
    free_bufs(&b);
    awq_fwd_free(&f);
    return st;
}

AWQ_API int awq_model_perplexity(awq_model *m, const char *path, int window, awq_perplexity *out)
{
    if (!m || !path || !out || window < 2)
        return AWQ_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    int32_t *ids = NULL;
    size_t n = 0;
    int st = awq_corpus_lines(m->tok, path, &ids, &n, &m->dev->err);
    if (st == 0)
        st = check_ids(m, ids, n);
    int n_windows = (int)(n / (size_t)window);
    if (st == 0 && n_windows == 0)
        st = awq_err_set(&m->dev->err, AWQ_ERR_BAD_INPUT, "%s: %zu tokens, fewer than one window of %d", path, n, window);
    double sum = 0;
    if (st == 0)
        st = ppl_batches(m, ids, n_windows, window, &sum);
    free(ids);
    if (st < 0)
        return awq_err_copy(&m->err, &m->dev->err);
    out->n_tokens = n;
    out->n_windows = n_windows;
    out->n_scored = (size_t)n_windows * (size_t)(window - 1);
    out->mean_nll = sum / (double)out->n_scored;
    out->ppl = exp(out->mean_nll);
    return 0;
}

/* ---- generation ---------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

struct cand {
    float p;
    int id;
};

static int cmp_cand(const void *a, const void *b)
{
    float x = ((const struct cand *)a)->p, y = ((const struct cand *)b)->p;
    return x > y ? -1 : x < y;
}

/* Greedy argmax, or temperature + top-p sampling. */
static int sample(const float *logits, int V, const awq_generate_options *g, uint64_t *rng, struct cand *tmp)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best])
            best = v;
    if (g->temperature <= 0)
        return best;
    double sum = 0;
    for (int v = 0; v < V; v++) {
        tmp[v].p = expf((logits[v] - logits[best]) / g->temperature);
        tmp[v].id = v;
        sum += tmp[v].p;
    }
    qsort(tmp, (size_t)V, sizeof *tmp, cmp_cand);
    double keep = 0, limit = (g->top_p > 0 && g->top_p < 1 ? g->top_p : 1.0) * sum;
    int n = 0;
    while (n < V && (n == 0 || keep < limit))
        keep += tmp[n++].p;
    double r = (double)(rng_next(rng) >> 11) / 9007199254740992.0 * keep;
    for (int i = 0; i < n; i++) {
        r -= tmp[i].p;
        if (r <= 0)
            return tmp[i].id;
    }
    return tmp[n - 1].id;
}

struct gen_state {
    struct awq_kv *kv;
    int n_layers;
    struct awq_fwd f;
    struct run_bufs b;
    float *logits;
    struct cand *cands;
};

static void gen_free(struct gen_state *s)
{
    if (s->kv)
        for (int l = 0; l < s->n_layers; l++) {
            awq_buffer_destroy(s->kv[l].k);
            awq_buffer_destroy(s->kv[l].v);
        }
    free(s->kv);
    awq_fwd_free(&s->f);
    free_bufs(&s->b);
    free(s->logits);
    free(s->cands);
}

static int gen_init(struct awq_model *m, struct gen_state *s, int cap)
{
    const struct awq_model_config *c = &m->hm->cfg;
    struct awq_device *dev = m->dev;
    s->n_layers = c->n_layers;
    s->kv = calloc((size_t)c->n_layers, sizeof *s->kv);
    s->logits = malloc((size_t)c->vocab * sizeof(float));
    s->cands = malloc((size_t)c->vocab * sizeof *s->cands);
    if (!s->kv || !s->logits || !s->cands)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    size_t row = (size_t)c->n_kv_heads * c->head_dim * sizeof(float);
    for (int l = 0; l < c->n_layers; l++) {
        s->kv[l].cap = cap;
        AWQ_TRY(awq_buffer_create(dev, row * (size_t)cap, &s->kv[l].k));
        AWQ_TRY(awq_buffer_create(dev, row * (size_t)cap, &s->kv[l].v));
    }
    AWQ_TRY(awq_fwd_init(&s->f, dev, c, cap));
    AWQ_TRY(awq_buffer_create(dev, (size_t)cap * 4, &s->b.ids));
    AWQ_TRY(awq_buffer_create(dev, (size_t)cap * c->hidden * 4, &s->b.h));
    return awq_buffer_create(dev, (size_t)c->vocab * 4, &s->b.logits);
}

/* Runs `n` new tokens at position pos through the model; leaves the last token's logits on the host. */
static int gen_step(struct awq_model *m, struct gen_state *s, const int32_t *ids, int n, int pos)
{
    const struct awq_model_config *c = &m->hm->cfg;
    AWQ_TRY(awq_buffer_write(s->b.ids, 0, ids, (size_t)n * 4));
    AWQ_TRY(embed(m, n, s->b.ids, s->b.h));
    for (int l = 0; l < c->n_layers; l++)
        AWQ_TRY(awq_block_forward(&s->f, &m->layers[l], 1, n, awq_at(s->b.h), &s->kv[l], pos, NULL));
    AWQ_TRY(head(m, &s->f, s->b.h, n - 1, 1, s->b.logits));
    return awq_buffer_read(s->b.logits, 0, s->logits, (size_t)c->vocab * 4);
}

/* Length of s without a trailing incomplete UTF-8 sequence. */
static size_t complete_utf8(const char *s, size_t len)
{
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return back + 1 < need ? i - 1 : len;
}

/* Streams the text a new token adds: decodes the whole continuation (a token's text depends on its
 * neighbours) and hands over what was not printed yet, holding back an incomplete character. */
static int stream_piece(struct awq_model *m, const int32_t *ids, size_t n_prompt, size_t total, size_t *printed,
                        int token, const awq_generate_options *g)
{
    char *text;
    size_t len;
    (void)n_prompt;
    if (awq_tok_decode(m->tok, ids, total, 1, &text, &len, &m->dev->err) < 0)
        return 0;
    size_t upto = complete_utf8(text, len), stop = 0;
    if (upto > *printed) {
        char saved = text[upto];
        text[upto] = '\0';
        stop = g->on_token(g->user, token, text + *printed);
        text[upto] = saved;
        *printed = upto;
    }
    free(text);
    return (int)stop;
}

static int generate(struct awq_model *m, const char *prompt, const awq_generate_options *g, char **text)
{
    const struct awq_model_config *c = &m->hm->cfg;
    struct awq_device *dev = m->dev;
    int32_t *ids;
    size_t n;
    AWQ_TRY(awq_tok_encode(m->tok, prompt, strlen(prompt), 1, &ids, &n, &dev->err));
    int cap = m->opt.max_context > 0 ? m->opt.max_context : (c->max_pos < 4096 ? c->max_pos : 4096);
    int st = check_ids(m, ids, n);
    if (st == 0 && (n == 0 || n + (size_t)g->max_new_tokens > (size_t)cap))
        st = awq_err_set(&dev->err, AWQ_ERR_BAD_INPUT, "prompt of %zu tokens + %d new tokens exceeds the context "
                         "of %d", n, g->max_new_tokens, cap);
    int32_t *all = st == 0 ? realloc(ids, (n + (size_t)g->max_new_tokens + 1) * sizeof *ids) : NULL;
    if (st == 0 && !all)
        st = awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if (all)
        ids = all;
    struct gen_state s;
    memset(&s, 0, sizeof s);
    if (st == 0)
        st = gen_init(m, &s, cap);
    uint64_t rng = g->seed;
    size_t total = n, printed = 0;
    char *prefix_text;
    size_t plen;
    if (st == 0 && g->on_token && awq_tok_decode(m->tok, ids, n, 1, &prefix_text, &plen, &dev->err) == 0) {
        printed = plen;   /* the prompt's own text is not streamed */
        free(prefix_text);
    }
    if (st == 0)
        st = gen_step(m, &s, ids, (int)n, 0);
    for (int i = 0; st == 0 && i < g->max_new_tokens; i++) {
        int next = sample(s.logits, c->vocab, g, &rng, s.cands);
        if (g->stop_at_eos && next == awq_tok_eos(m->tok))
            break;
        ids[total++] = next;
        if (g->on_token && stream_piece(m, ids, n, total, &printed, next, g) != 0)
            break;
        if (awq_cancelled(dev->ctx)) {
            st = awq_err_set(&dev->err, AWQ_ERR_CANCELLED, "generation cancelled");
            break;
        }
        if (i + 1 < g->max_new_tokens)
            st = gen_step(m, &s, &ids[total - 1], 1, (int)total - 1);
    }
    if (st == 0) {
        size_t len;
        st = awq_tok_decode(m->tok, ids, total, 1, text, &len, &dev->err);
    }
    gen_free(&s);
    free(ids);
    return st;
}

AWQ_API int awq_model_generate(awq_model *m, const char *prompt, const awq_generate_options *opt, char **text)
{
    if (!m || !prompt || !text || (opt && opt->struct_size != sizeof *opt))
        return AWQ_ERR_INVALID_ARGUMENT;
    *text = NULL;
    awq_generate_options g;
    if (opt)
        g = *opt;
    else
        awq_generate_options_init(&g);
    if (g.max_new_tokens < 0 || g.temperature < 0)
        return awq_err_set(&m->err, AWQ_ERR_INVALID_ARGUMENT, "max_new_tokens and temperature must be >= 0");
    int st = generate(m, prompt, &g, text);
    if (st < 0)
        awq_err_copy(&m->err, &m->dev->err);
    return st;
}
