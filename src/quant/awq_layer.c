#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/context.h"
#include "quant/awq_layer.h"
#include "quant/q4.h"
#include "util/parallel.h"

const char *const awq_group_names[AWQ_GRP_COUNT] = { "qkv", "v->o", "gate/up", "up->down" };

/* A scaled group: the op before it (-1 input_layernorm, -2 post_attention_layernorm, else the
 * linear whose output rows take 1/s), the linears whose input columns take s. */
struct group_def {
    int prev;
    int lins[3], n;
};

static const struct group_def groups[AWQ_GRP_COUNT] = {
    [AWQ_GRP_QKV] = { -1, { AWQ_LIN_Q, AWQ_LIN_K, AWQ_LIN_V }, 3 },
    [AWQ_GRP_VO] = { AWQ_LIN_V, { AWQ_LIN_O }, 1 },
    [AWQ_GRP_GATE_UP] = { -2, { AWQ_LIN_GATE, AWQ_LIN_UP }, 2 },
    [AWQ_GRP_DOWN] = { AWQ_LIN_UP, { AWQ_LIN_DOWN }, 1 },
};



int awq_lin_quantizable(const struct awq_model_config *cfg, int in, int out, int G)
{
    (void)cfg;
    return in % G == 0 && out > 0;
}

void awq_qlayer_free(struct awq_qlayer *q)
{
    free(q->ln1);
    free(q->ln2);
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        struct awq_qlinear *l = &q->lin[k];
        free(l->qweight);
        free(l->qzeros);
        free(l->scales);
        free(l->w);
        free(l->bias);
    }
    memset(q, 0, sizeof *q);
}

/* ---- calibration state ------------------------------------------------------------------------ */

int awq_calib_state_init(struct awq_calib_state *s, struct awq_device *dev, const struct awq_model_config *c,
                         int n_seq, int seqlen)
{
    memset(s, 0, sizeof *s);
    s->dev = dev;
    s->cfg = c;
    s->n_seq = n_seq;
    s->seqlen = seqlen;
    s->T = n_seq * seqlen;
    size_t T = (size_t)s->T, qd = (size_t)c->n_heads * c->head_dim;
    struct { awq_buffer **b; size_t n; } bufs[] = {
        { &s->h, T * (size_t)c->hidden },  { &s->h_in, T * (size_t)c->hidden },
        { &s->h_tmp, T * (size_t)c->hidden }, { &s->x1, T * (size_t)c->hidden },
        { &s->att, T * qd }, { &s->x2, T * (size_t)c->hidden }, { &s->act, T * (size_t)c->intermediate },
        { &s->attn_out, T * (size_t)c->hidden }, { &s->mlp_out, T * (size_t)c->hidden },
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (awq_buffer_create(dev, bufs[i].n * sizeof(float), bufs[i].b) < 0) {
            awq_calib_state_free(s);
            return awq_err_prefix(&dev->err, "calibration activations for %d tokens", s->T);
        }
    int st = awq_fwd_init(&s->fwd, dev, c, s->T);
    if (st < 0)
        awq_calib_state_free(s);
    return st;
}

void awq_calib_state_free(struct awq_calib_state *s)
{
    awq_buffer *all[] = { s->h, s->h_in, s->h_tmp, s->x1, s->att, s->x2, s->act, s->attn_out, s->mlp_out };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        awq_buffer_destroy(all[i]);
    if (s->fwd.dev)
        awq_fwd_free(&s->fwd);
    memset(s, 0, sizeof *s);
}

/* ---- one layer ---------------------------------------------------------------------------------- */

struct layer_ctx {
    struct awq_calib_state *s;
    struct awq_device *dev;
    const struct awq_model_config *c;
    const awq_quantize_options *opt;
    int layer, G;
    int in[AWQ_LIN_COUNT], out[AWQ_LIN_COUNT], quant[AWQ_LIN_COUNT];
    float *w[AWQ_LIN_COUNT], *w_orig[AWQ_LIN_COUNT], *bias[AWQ_LIN_COUNT], *ln1, *ln2, *ln1_orig, *ln2_orig;
    struct awq_dlayer L;
    awq_buffer *scalar;
    struct awq_layer_report *rep;
};

static void lc_free(struct layer_ctx *lc)
{
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        free(lc->w[k]);
        free(lc->w_orig[k]);
        free(lc->bias[k]);
    }
    free(lc->ln1);
    free(lc->ln2);
    free(lc->ln1_orig);
    free(lc->ln2_orig);
    awq_dlayer_free(&lc->L);
    awq_buffer_destroy(lc->scalar);
}

static float *host_f32(const struct awq_st_tensor *t, struct awq_errbuf *err)
{
    float *f = malloc(t->numel * sizeof(float));
    if (!f) {
        awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %s", t->name);
        return NULL;
    }
    if (awq_st_tensor_to_f32(t, f, err) < 0) {
        free(f);
        return NULL;
    }
    return f;
}

static int load_host(struct layer_ctx *lc, const struct awq_hmodel *hm, struct awq_errbuf *err)
{
    const struct awq_hlayer *h = &hm->layers[lc->layer];
    if (!(lc->ln1 = host_f32(h->ln1, err)) || !(lc->ln2 = host_f32(h->ln2, err)) ||
        !(lc->ln1_orig = host_f32(h->ln1, err)) || !(lc->ln2_orig = host_f32(h->ln2, err)))
        return err->code;
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        const struct awq_hlinear *l = &h->lin[k];
        lc->in[k] = l->in;
        lc->out[k] = l->out;
        lc->quant[k] = awq_lin_quantizable(lc->c, l->in, l->out, lc->G);
        size_t n = (size_t)l->in * l->out;
        lc->w[k] = malloc(n * sizeof(float));
        lc->w_orig[k] = malloc(n * sizeof(float));
        if (!lc->w[k] || !lc->w_orig[k])
            return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for layer %d", lc->layer);
        AWQ_TRY(awq_st_tensor_to_f32(l->w, lc->w[k], err));
        memcpy(lc->w_orig[k], lc->w[k], n * sizeof(float));
        if (l->bias && !(lc->bias[k] = host_f32(l->bias, err)))
            return err->code;
    }
    return 0;
}

static int upload_layer(struct layer_ctx *lc)
{
    AWQ_TRY(awq_upload_f32(lc->dev, lc->ln1, (size_t)lc->c->hidden, &lc->L.ln1));
    AWQ_TRY(awq_upload_f32(lc->dev, lc->ln2, (size_t)lc->c->hidden, &lc->L.ln2));
    for (int k = 0; k < AWQ_LIN_COUNT; k++)
        AWQ_TRY(awq_dlinear_upload(lc->dev, &lc->L.lin[k], lc->in[k], lc->out[k], lc->w[k], lc->bias[k], AWQ_DTYPE_F32));
    return awq_buffer_create(lc->dev, sizeof(float), &lc->scalar);
}

/* Mean squared difference of two [T, C] device tensors. */
static int mse(struct layer_ctx *lc, struct awq_tref a, struct awq_tref b, size_t n, double *out)
{
    struct awq_sq_err_args e = { .n = n, .a = a, .b = b, .out = awq_at(lc->scalar) };
    AWQ_TRY(awq_op_sq_err(lc->dev, &e));
    float v;
    AWQ_TRY(awq_buffer_read(lc->scalar, 0, &v, sizeof v));
    *out = (double)v / (double)n;
    return 0;
}

static void progress(struct layer_ctx *lc, double frac)
{
    awq_progress(lc->dev->ctx, "quantizing blocks", lc->layer + frac, lc->c->n_layers);
}

/* ---- the scale search ---------------------------------------------------------------------------- */

static awq_buffer *group_input(struct layer_ctx *lc, int g)
{
    struct awq_calib_state *s = lc->s;
    return g == AWQ_GRP_QKV ? s->x1 : g == AWQ_GRP_VO ? s->att : g == AWQ_GRP_GATE_UP ? s->x2 : s->act;
}

static awq_buffer *group_ref(struct layer_ctx *lc, int g)
{
    return g <= AWQ_GRP_VO ? lc->s->attn_out : lc->s->mlp_out;
}

/* mean |x| per input channel of group g, from act_stats. */
static int input_mean(struct layer_ctx *lc, int g, int C, float *mean)
{
    awq_buffer *acc;
    AWQ_TRY(awq_buffer_create(lc->dev, (size_t)C * sizeof(float), &acc));
    struct awq_act_stats_args a = { .T = lc->s->T, .C = C, .x_type = AWQ_DTYPE_F32, .x = awq_at(group_input(lc, g)),
                                    .sum_abs = awq_at(acc) };
    int st = awq_op_zero(lc->dev, awq_at(acc), (size_t)C * sizeof(float));
    if (st == 0)
        st = awq_op_act_stats(lc->dev, &a);
    if (st == 0)
        st = awq_buffer_read(acc, 0, mean, (size_t)C * sizeof(float));
    awq_buffer_destroy(acc);
    for (int c = 0; st == 0 && c < C; c++)
        mean[c] /= (float)lc->s->T;
    return st;
}

/* AutoAWQ's weight term: per input channel, mean over the group's rows of |w| / max|w| of its group. */
static void weight_mean(struct layer_ctx *lc, const struct group_def *gd, int C, float *wmean)
{
    memset(wmean, 0, (size_t)C * sizeof(float));
    long rows = 0;
    for (int i = 0; i < gd->n; i++) {
        int k = gd->lins[i];
        for (int n = 0; n < lc->out[k]; n++, rows++) {
            const float *r = lc->w[k] + (size_t)n * C;
            for (int g0 = 0; g0 < C; g0 += lc->G) {
                float mx = 0;
                for (int j = 0; j < lc->G; j++)
                    mx = fabsf(r[g0 + j]) > mx ? fabsf(r[g0 + j]) : mx;
                for (int j = 0; j < lc->G; j++)
                    wmean[g0 + j] += fabsf(r[g0 + j]) / (mx + 1e-6f);
            }
        }
    }
    for (int c = 0; c < C; c++)
        wmean[c] /= (float)rows;
}

static void make_scales(const float *xmean, const float *wmean, int C, double r, float *s)
{
    float mx = 0, mn = INFINITY;
    for (int c = 0; c < C; c++) {
        double v = pow((double)xmean[c], r);
        if (wmean)
            v /= pow((double)wmean[c], 1.0 - r) + 1e-4;
        s[c] = (float)(v < 1e-4 ? 1e-4 : v);
        mx = s[c] > mx ? s[c] : mx;
        mn = s[c] < mn ? s[c] : mn;
    }
    float norm = sqrtf(mx * mn);
    for (int c = 0; c < C; c++)
        s[c] /= norm;
}

/* Output MSE of group g's sub-block when its linears are pseudo-quantized with input scales s. */
static int group_loss(struct layer_ctx *lc, int g, awq_buffer *sbuf, awq_buffer **wq, double *loss)
{
    const struct group_def *gd = &groups[g];
    struct awq_calib_state *s = lc->s;
    awq_buffer *saved[3];
    int st = 0;
    for (int i = 0; i < gd->n && st == 0; i++) {
        int k = gd->lins[i];
        struct awq_pseudo_quant_args pq = { .N = lc->out[k], .K = lc->in[k], .G = lc->G, .w = awq_at(lc->L.lin[k].w),
                                            .in_scale = awq_at(sbuf), .out = awq_at(wq[i]) };
        st = awq_op_pseudo_quant(lc->dev, &pq);
    }
    for (int i = 0; i < gd->n; i++) {
        saved[i] = lc->L.lin[gd->lins[i]].w;
        lc->L.lin[gd->lins[i]].w = wq[i];
    }
    struct awq_tref out = awq_at(s->h_tmp), none = { 0 };
    if (st == 0) {
        switch (g) {
        case AWQ_GRP_QKV: st = awq_attn_sub(&s->fwd, &lc->L, s->n_seq, s->seqlen, awq_at(s->x1), out, NULL, 0, none); break;
        case AWQ_GRP_VO: st = awq_linear(&s->fwd, &lc->L.lin[AWQ_LIN_O], s->T, awq_at(s->att), out); break;
        case AWQ_GRP_GATE_UP: st = awq_mlp_sub(&s->fwd, &lc->L, s->T, awq_at(s->x2), out, none); break;
        default: st = awq_linear(&s->fwd, &lc->L.lin[AWQ_LIN_DOWN], s->T, awq_at(s->act), out); break;
        }
    }
    for (int i = 0; i < gd->n; i++)
        lc->L.lin[gd->lins[i]].w = saved[i];
    if (st == 0)
        st = mse(lc, out, awq_at(group_ref(lc, g)), (size_t)s->T * lc->c->hidden, loss);
    return st;
}

static int search_group(struct layer_ctx *lc, int g, float *best_s)
{
    const struct group_def *gd = &groups[g];
    const awq_quantize_options *o = lc->opt;
    struct awq_group_report *rep = &lc->rep->grp[g];
    int C = lc->in[gd->lins[0]];
    float *xmean = malloc((size_t)C * sizeof(float)), *wmean = o->duo_scaling ? malloc((size_t)C * sizeof(float)) : NULL;
    float *sc = malloc((size_t)C * sizeof(float));
    awq_buffer *sbuf = NULL, *wq[3] = { NULL, NULL, NULL };
    int st = (!xmean || !sc || (o->duo_scaling && !wmean))
                 ? awq_err_set(&lc->dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory") : 0;
    if (st == 0)
        st = input_mean(lc, g, C, xmean);
    if (st == 0 && wmean)
        weight_mean(lc, gd, C, wmean);
    if (st == 0)
        st = awq_buffer_create(lc->dev, (size_t)C * sizeof(float), &sbuf);
    for (int i = 0; i < gd->n && st == 0; i++)
        st = awq_buffer_create(lc->dev, (size_t)lc->in[gd->lins[i]] * lc->out[gd->lins[i]] * sizeof(float), &wq[i]);
    /* ratios: the grid i/n_grid, or 0 (for the report) and the fixed alpha */
    int n_r = o->alpha >= 0 ? (o->alpha > 0 ? 2 : 1) : o->n_grid;
    double best = INFINITY;
    for (int i = 0; i < n_r && st == 0; i++) {
        double r = o->alpha >= 0 ? (i == 0 ? 0.0 : o->alpha) : (double)i / o->n_grid;
        make_scales(xmean, wmean, C, r, sc);
        double loss;
        st = awq_buffer_write(sbuf, 0, sc, (size_t)C * sizeof(float));
        if (st == 0)
            st = group_loss(lc, g, sbuf, wq, &loss);
        if (st < 0)
            break;
        if (i == 0)
            rep->loss_rtn = loss;
        if (loss < best || (o->alpha > 0 && i == 1)) {   /* first on ties; a fixed alpha always wins */
            best = loss;
            rep->ratio = (float)r;
            memcpy(best_s, sc, (size_t)C * sizeof(float));
        }
        if (awq_cancelled(lc->dev->ctx))
            st = awq_err_set(&lc->dev->err, AWQ_ERR_CANCELLED, "cancelled during the scale search");
    }
    rep->loss_best = best;
    rep->searched = st == 0;
    free(xmean);
    free(wmean);
    free(sc);
    awq_buffer_destroy(sbuf);
    for (int i = 0; i < 3; i++)
        awq_buffer_destroy(wq[i]);
    return st;
}

struct scale_job {
    float *w;
    const float *s;
    int C;
};

/* w[n][c] *= s[c] for rows [n0, n1). */
static void scale_rows(void *arg, size_t n0, size_t n1)
{
    const struct scale_job *j = arg;
    for (size_t n = n0; n < n1; n++) {
        float *r = j->w + n * (size_t)j->C;
        for (int c = 0; c < j->C; c++)
            r[c] *= j->s[c];
    }
}

/* Folds s into the group: 1/s into the previous op, s into the linears' input columns; the cached
 * inputs are divided by s so the clip search sees the scaled problem. */
static int apply_scales(struct layer_ctx *lc, int g, const float *s)
{
    const struct group_def *gd = &groups[g];
    int C = lc->in[gd->lins[0]];
    if (gd->prev < 0) {
        float *ln = gd->prev == -1 ? lc->ln1 : lc->ln2;
        for (int c = 0; c < C; c++)
            ln[c] /= s[c];
    } else {
        int p = gd->prev;
        for (int n = 0; n < lc->out[p]; n++) {
            float *r = lc->w[p] + (size_t)n * lc->in[p];
            for (int c = 0; c < lc->in[p]; c++)
                r[c] /= s[n];
            if (lc->bias[p])
                lc->bias[p][n] /= s[n];
        }
    }
    for (int i = 0; i < gd->n; i++) {
        struct scale_job j = { lc->w[gd->lins[i]], s, C };
        awq_parallel_for((size_t)lc->out[gd->lins[i]], 256, scale_rows, &j);
    }
    awq_buffer *sb;
    AWQ_TRY(awq_upload_f32(lc->dev, s, (size_t)C, &sb));
    struct awq_scale_cols_args a = { .T = lc->s->T, .C = C, .divide = 1, .x = awq_at(group_input(lc, g)), .s = awq_at(sb) };
    int st = awq_op_scale_cols(lc->dev, &a);
    awq_buffer_destroy(sb);
    return st;
}

static int search_scales(struct layer_ctx *lc)
{
    float *s = malloc(sizeof(float) * (size_t)(lc->c->intermediate > lc->c->n_heads * lc->c->head_dim
                                                   ? (lc->c->intermediate > lc->c->hidden ? lc->c->intermediate : lc->c->hidden)
                                                   : (lc->c->n_heads * lc->c->head_dim > lc->c->hidden ? lc->c->n_heads * lc->c->head_dim : lc->c->hidden)));
    float *all[AWQ_GRP_COUNT] = { NULL };
    if (!s)
        return awq_err_set(&lc->dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    int st = 0;
    for (int g = 0; g < AWQ_GRP_COUNT && st == 0; g++) {
        const struct group_def *gd = &groups[g];
        int ok = 1;
        for (int i = 0; i < gd->n; i++)
            ok &= lc->quant[gd->lins[i]];
        if (g == AWQ_GRP_VO && lc->out[AWQ_LIN_V] != lc->in[AWQ_LIN_O])
            ok = 0;   /* grouped KV heads: v's outputs do not map one-to-one onto o's inputs */
        if (!ok)
            continue;
        int C = lc->in[gd->lins[0]];
        st = search_group(lc, g, s);
        if (st == 0 && !(all[g] = malloc((size_t)C * sizeof(float))))
            st = awq_err_set(&lc->dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        if (st == 0)
            memcpy(all[g], s, (size_t)C * sizeof(float));
        progress(lc, 0.1 + 0.6 * (g + 1) / AWQ_GRP_COUNT);
    }
    /* as the reference does: every group searched against the original weights, then all applied */
    for (int g = 0; g < AWQ_GRP_COUNT && st == 0; g++)
        if (all[g])
            st = apply_scales(lc, g, all[g]);
    for (int g = 0; g < AWQ_GRP_COUNT; g++)
        free(all[g]);
    free(s);
    for (int k = 0; k < AWQ_LIN_COUNT && st == 0; k++)
        st = awq_dlinear_update(lc->dev, &lc->L.lin[k], lc->w[k], lc->bias[k]);
    return st;
}

/* ---- the clip search ----------------------------------------------------------------------------- */

static awq_buffer *lin_input(struct layer_ctx *lc, int k)
{
    struct awq_calib_state *s = lc->s;
    return k <= AWQ_LIN_V ? s->x1 : k == AWQ_LIN_O ? s->att : k <= AWQ_LIN_UP ? s->x2 : s->act;
}

static int clip_linear(struct layer_ctx *lc, int k, awq_buffer *xs, int nt, int step)
{
    int N = lc->out[k], K = lc->in[k], G = lc->G, ng = K / G;
    size_t row = (size_t)K * sizeof(float);
    int st = 0;
    for (int t = 0; t < nt && st == 0; t++) {
        struct awq_tref src = { lin_input(lc, k), (size_t)t * (size_t)step * row }, dst = { xs, (size_t)t * row };
        st = awq_op_copy(lc->dev, src, dst, row);
    }
    struct awq_clip_search_args a = { .N = N, .K = K, .G = G, .T = nt, .w = awq_at(lc->L.lin[k].w), .x = awq_at(xs) };
    a.n_shrink = 10;   /* max_shrink 0.5 on a grid of 20: 1.00, 0.95, ..., 0.55 */
    for (int i = 0; i < a.n_shrink; i++)
        a.shrink[i] = 1.0f - (float)i / 20.0f;
    size_t ne = (size_t)a.n_shrink * N * ng;
    awq_buffer *eb = NULL;
    float *err = malloc(ne * sizeof(float));
    if (st == 0 && !err)
        st = awq_err_set(&lc->dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == 0)
        st = awq_buffer_create(lc->dev, ne * sizeof(float), &eb);
    if (st == 0) {
        a.err = awq_at(eb);
        st = awq_op_clip_search(lc->dev, &a);
    }
    if (st == 0)
        st = awq_buffer_read(eb, 0, err, ne * sizeof(float));
    double shrink_sum = 0;
    long clipped = 0;
    for (int n = 0; st == 0 && n < N; n++)
        for (int g = 0; g < ng; g++) {
            int best = 0;
            for (int i = 1; i < a.n_shrink; i++)
                if (err[((size_t)i * N + n) * ng + g] < err[((size_t)best * N + n) * ng + g])
                    best = i;
            shrink_sum += a.shrink[best];
            if (best == 0)
                continue;
            clipped++;
            float *w = lc->w[k] + (size_t)n * K + (size_t)g * G, amax = 0;
            for (int j = 0; j < G; j++)
                amax = fabsf(w[j]) > amax ? fabsf(w[j]) : amax;
            float m = amax * a.shrink[best];
            for (int j = 0; j < G; j++)
                w[j] = w[j] < -m ? -m : (w[j] > m ? m : w[j]);
        }
    if (st == 0) {
        lc->rep->clip_mean[k] = (float)(shrink_sum / ((double)N * ng));
        lc->rep->clip_frac[k] = (float)clipped / (float)((long)N * ng);
    }
    free(err);
    awq_buffer_destroy(eb);
    return st;
}

static int search_clip(struct layer_ctx *lc)
{
    int T = lc->s->T, want = lc->opt->clip_tokens > 0 ? lc->opt->clip_tokens : 512;
    int step = T / want > 0 ? T / want : 1, nt = (T + step - 1) / step;
    int widest = 0;
    for (int k = 0; k < AWQ_LIN_COUNT; k++)
        widest = lc->in[k] > widest ? lc->in[k] : widest;
    awq_buffer *xs;
    AWQ_TRY(awq_buffer_create(lc->dev, (size_t)nt * widest * sizeof(float), &xs));
    int st = 0;
    for (int k = 0; k < AWQ_LIN_COUNT && st == 0; k++) {
        if (!lc->quant[k] || k == AWQ_LIN_Q || k == AWQ_LIN_K)   /* q and k are not clipped */
            continue;
        st = clip_linear(lc, k, xs, nt, step);
        progress(lc, 0.7 + 0.2 * (k + 1) / AWQ_LIN_COUNT);
    }
    awq_buffer_destroy(xs);
    return st;
}

/* ---- quantization and the error report ---------------------------------------------------------- */

/* Quantizes w [out, in] into out->lin[k] (packed) and, when deq != NULL, its dequantized values. */
static int quantize_linear(struct layer_ctx *lc, int k, const float *w, struct awq_qlinear *ql, float *deq)
{
    int N = lc->out[k], K = lc->in[k], G = lc->G;
    size_t nk = (size_t)N * K, ng = (size_t)N * (K / G);
    uint8_t *q = malloc(nk), *z = malloc(ng);
    float *s = malloc(ng * sizeof(float));
    int st = 0;
    if (ql) {
        ql->qweight = malloc(nk / 2);
        ql->qzeros = malloc(ng / 2);
        ql->scales = malloc(ng * 2);
    }
    if (!q || !z || !s || (ql && (!ql->qweight || !ql->qzeros || !ql->scales)))
        st = awq_err_set(&lc->dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory quantizing a %dx%d linear", K, N);
    if (st == 0) {
        awq_q4_quantize(w, N, K, G, 1, q, s, z);
        if (ql)
            awq_gemm_pack(q, s, z, N, K, G, ql->qweight, ql->qzeros, ql->scales);
        if (deq)
            awq_q4_dequantize(q, s, z, N, K, G, deq);
    }
    free(q);
    free(z);
    free(s);
    return st;
}

/* Block output MSE against the full-precision output when the quantizable linears use `deq`
 * weights (and the norms ln1/ln2). */
static int block_error(struct layer_ctx *lc, float **deq, const float *ln1, const float *ln2, double *err)
{
    struct awq_calib_state *s = lc->s;
    size_t n = (size_t)s->T * lc->c->hidden;
    AWQ_TRY(awq_buffer_write(lc->L.ln1, 0, ln1, (size_t)lc->c->hidden * sizeof(float)));
    AWQ_TRY(awq_buffer_write(lc->L.ln2, 0, ln2, (size_t)lc->c->hidden * sizeof(float)));
    for (int k = 0; k < AWQ_LIN_COUNT; k++)
        AWQ_TRY(awq_dlinear_update(lc->dev, &lc->L.lin[k], deq[k], lc->bias[k]));
    AWQ_TRY(awq_op_copy(lc->dev, awq_at(s->h_in), awq_at(s->h_tmp), n * sizeof(float)));
    AWQ_TRY(awq_block_forward(&s->fwd, &lc->L, s->n_seq, s->seqlen, awq_at(s->h_tmp), NULL, 0, NULL));
    return mse(lc, awq_at(s->h_tmp), awq_at(s->h), n, err);
}

static int finish(struct layer_ctx *lc, struct awq_qlayer *out)
{
    int awq = lc->opt->method == AWQ_METHOD_AWQ;
    float *deq[AWQ_LIN_COUNT] = { NULL }, *rtn[AWQ_LIN_COUNT] = { NULL };
    int st = 0;
    for (int k = 0; k < AWQ_LIN_COUNT && st == 0; k++) {
        struct awq_qlinear *ql = &out->lin[k];
        ql->in = lc->in[k];
        ql->out = lc->out[k];
        ql->quantized = lc->quant[k];
        size_t nk = (size_t)lc->in[k] * lc->out[k];
        if (lc->s) {
            deq[k] = malloc(nk * sizeof(float));
            rtn[k] = awq ? malloc(nk * sizeof(float)) : NULL;
            if (!deq[k] || (awq && !rtn[k])) {
                st = awq_err_set(&lc->dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
        }
        if (lc->quant[k]) {
            ql->packed = lc->out[k] % 8 == 0;
            if (!ql->packed && !(ql->w = malloc(nk * sizeof(float)))) {
                st = awq_err_set(&lc->dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            st = quantize_linear(lc, k, lc->w[k], ql->packed ? ql : NULL, ql->packed ? deq[k] : ql->w);
            if (st == 0 && !ql->packed && deq[k])
                memcpy(deq[k], ql->w, nk * sizeof(float));
            if (st == 0 && rtn[k])
                st = quantize_linear(lc, k, lc->w_orig[k], NULL, rtn[k]);
        } else {
            if (deq[k])
                memcpy(deq[k], lc->w[k], nk * sizeof(float));
            if (rtn[k])
                memcpy(rtn[k], lc->w_orig[k], nk * sizeof(float));
            ql->w = lc->w[k];
            lc->w[k] = NULL;
        }
        ql->bias = lc->bias[k] ? malloc((size_t)lc->out[k] * sizeof(float)) : NULL;
        if (ql->bias)
            memcpy(ql->bias, lc->bias[k], (size_t)lc->out[k] * sizeof(float));
    }
    if (st == 0 && lc->s) {
        st = block_error(lc, deq, lc->ln1, lc->ln2, awq ? &lc->rep->err_awq : &lc->rep->err_rtn);
        if (st == 0 && awq) {
            /* the baseline: the original weights and norms, rounded to nearest */
            for (int k = 0; k < AWQ_LIN_COUNT; k++)
                if (!lc->quant[k])
                    memcpy(rtn[k], lc->w_orig[k], (size_t)lc->in[k] * lc->out[k] * sizeof(float));
            st = block_error(lc, rtn, lc->ln1_orig, lc->ln2_orig, &lc->rep->err_rtn);
        }
    }
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        free(deq[k]);
        free(rtn[k]);
    }
    if (st == 0) {
        out->ln1 = lc->ln1;
        out->ln2 = lc->ln2;
        lc->ln1 = lc->ln2 = NULL;
    }
    return st;
}

/* ---- the layer ------------------------------------------------------------------------------------ */

static int record(struct layer_ctx *lc)
{
    struct awq_calib_state *s = lc->s;
    size_t n = (size_t)s->T * lc->c->hidden;
    AWQ_TRY(awq_op_copy(lc->dev, awq_at(s->h), awq_at(s->h_in), n * sizeof(float)));
    struct awq_block_rec rec = { awq_at(s->x1), awq_at(s->att), awq_at(s->x2), awq_at(s->act), awq_at(s->attn_out), awq_at(s->mlp_out) };
    AWQ_TRY(awq_block_forward(&s->fwd, &lc->L, s->n_seq, s->seqlen, awq_at(s->h), NULL, 0, &rec));
    /* mean square of the block output, the scale for the error report */
    awq_buffer *zero;
    AWQ_TRY(awq_buffer_create(lc->dev, n * sizeof(float), &zero));
    int st = awq_op_zero(lc->dev, awq_at(zero), n * sizeof(float));
    if (st == 0)
        st = mse(lc, awq_at(s->h), awq_at(zero), n, &lc->rep->out_power);
    awq_buffer_destroy(zero);
    return st;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int awq_layer_run(struct awq_calib_state *s, const struct awq_hmodel *hm, int layer,
                  const awq_quantize_options *opt, struct awq_qlayer *out, struct awq_errbuf *err)
{
    double t0 = now_s();
    struct layer_ctx lc;
    memset(&lc, 0, sizeof lc);
    memset(out, 0, sizeof *out);
    lc.s = s;
    lc.dev = s ? s->dev : NULL;
    lc.c = &hm->cfg;
    lc.opt = opt;
    lc.layer = layer;
    lc.G = opt->group_size;
    lc.rep = &out->rep;
    int st = load_host(&lc, hm, err);
    double t = now_s();
    out->rep.t_load = t - t0;
    for (int k = 0; k < AWQ_LIN_COUNT; k++) {
        out->rep.quantized[k] = lc.quant[k];
        out->rep.packed[k] = lc.quant[k] && lc.out[k] % 8 == 0;
    }
    if (st == 0 && s) {
        progress(&lc, 0.0);
        st = upload_layer(&lc);
        if (st == 0)
            st = record(&lc);
        out->rep.t_record = now_s() - t;
        t = now_s();
        if (st == 0 && opt->method == AWQ_METHOD_AWQ) {
            progress(&lc, 0.1);
            st = search_scales(&lc);
            out->rep.t_scales = now_s() - t;
            t = now_s();
            if (st == 0 && opt->clip)
                st = search_clip(&lc);
            out->rep.t_clip = now_s() - t;
            t = now_s();
        }
    }
    if (st == 0)
        st = finish(&lc, out);
    out->rep.t_finish = now_s() - t;
    lc_free(&lc);
    out->rep.seconds = now_s() - t0;
    if (st < 0) {
        if (lc.dev && err != &lc.dev->err)
            awq_err_copy(err, &lc.dev->err);
        awq_qlayer_free(out);
    }
    return st;
}
