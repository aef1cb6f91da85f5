#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/forward.h"
#include "util/half.h"



int awq_upload_f32(struct awq_device *dev, const float *src, size_t n, awq_buffer **out)
{
    AWQ_TRY(awq_buffer_create(dev, n * sizeof(float), out));
    int st = awq_buffer_write(*out, 0, src, n * sizeof(float));
    if (st < 0) {
        awq_buffer_destroy(*out);
        *out = NULL;
    }
    return st;
}

int awq_fwd_init(struct awq_fwd *f, struct awq_device *dev, const struct awq_model_config *c, int cap_T)
{
    memset(f, 0, sizeof *f);
    f->dev = dev;
    f->cfg = c;
    f->cap_T = cap_T;
    float *inv = malloc(sizeof(float) * (size_t)(c->head_dim / 2));
    if (!inv)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    awq_config_inv_freq(c, inv);
    int st = awq_upload_f32(dev, inv, (size_t)c->head_dim / 2, &f->inv_freq);
    free(inv);
    size_t T = (size_t)cap_T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t wide = (size_t)c->intermediate > qd ? (size_t)c->intermediate : qd;
    struct { awq_buffer **b; size_t n; } bufs[] = {
        { &f->xn, T * (size_t)c->hidden }, { &f->q, T * qd }, { &f->k, T * kvd }, { &f->v, T * kvd },
        { &f->att, T * qd }, { &f->g, T * wide }, { &f->u, T * (size_t)c->intermediate },
        { &f->o, T * (size_t)c->hidden },
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0] && st == 0; i++) {
        st = awq_buffer_create(dev, bufs[i].n * sizeof(float), bufs[i].b);
        f->bytes += bufs[i].n * sizeof(float);
    }
    if (st < 0)
        awq_fwd_free(f);
    return st;
}

void awq_fwd_free(struct awq_fwd *f)
{
    awq_buffer *all[] = { f->inv_freq, f->xn, f->q, f->k, f->v, f->att, f->g, f->u, f->o };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        awq_buffer_destroy(all[i]);
    memset(f, 0, sizeof *f);
}

int awq_dlinear_upload(struct awq_device *dev, struct awq_dlinear *l, int in, int out, const float *w,
                       const float *bias, awq_dtype wt)
{
    memset(l, 0, sizeof *l);
    l->in = in;
    l->out = out;
    l->wt = wt;
    size_t n = (size_t)in * out;
    AWQ_TRY(awq_buffer_create(dev, n * awq_dtype_size(wt), &l->w));
    if (bias)
        AWQ_TRY(awq_buffer_create(dev, (size_t)out * sizeof(float), &l->bias));
    return awq_dlinear_update(dev, l, w, bias);
}

int awq_dlinear_update(struct awq_device *dev, struct awq_dlinear *l, const float *w, const float *bias)
{
    size_t n = (size_t)l->in * l->out;
    int st;
    if (l->wt == AWQ_DTYPE_F16) {
        uint16_t *h = malloc(n * 2);
        if (!h)
            return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
        awq_f32_to_f16_n(w, h, n);
        st = awq_buffer_write(l->w, 0, h, n * 2);
        free(h);
    } else {
        st = awq_buffer_write(l->w, 0, w, n * sizeof(float));
    }
    if (st == 0 && bias && l->bias)
        st = awq_buffer_write(l->bias, 0, bias, (size_t)l->out * sizeof(float));
    return st;
}

static int upload_tensor_f32(struct awq_device *dev, const struct awq_st_tensor *t, awq_buffer **out)
{
    float *h = malloc(t->numel * sizeof(float));
    if (!h)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory");
    int st = awq_st_tensor_to_f32(t, h, &dev->err);
    if (st == 0)
        st = awq_upload_f32(dev, h, t->numel, out);
    free(h);
    return st;
}

int awq_dlinear_from_host(struct awq_device *dev, struct awq_dlinear *l, const struct awq_hlinear *h,
                          int group_size, int dequantize, awq_dtype wt)
{
    memset(l, 0, sizeof *l);
    l->in = h->in;
    l->out = h->out;
    if (h->bias)
        AWQ_TRY(upload_tensor_f32(dev, h->bias, &l->bias));
    if (h->qweight && !dequantize) {
        struct awq_w4_host w4 = { h->in, h->out, group_size, h->qweight->data, h->qzeros->data, h->scales->data };
        return awq_op_w4_create(dev, &w4, &l->q);
    }
    float *w = malloc((size_t)h->in * h->out * sizeof(float));
    if (!w)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for a %dx%d linear", h->in, h->out);
    int st = awq_hlinear_f32(h, group_size, w, &dev->err);
    if (st == 0) {
        awq_buffer *bias = l->bias;
        l->bias = NULL;
        st = awq_dlinear_upload(dev, l, h->in, h->out, w, NULL, wt);
        l->bias = bias;
    }
    free(w);
    return st;
}

void awq_dlinear_free(struct awq_dlinear *l)
{
    awq_buffer_destroy(l->w);
    awq_buffer_destroy(l->bias);
    awq_qweight_destroy(l->q);
    memset(l, 0, sizeof *l);
}

int awq_dlayer_from_host(struct awq_device *dev, struct awq_dlayer *L, const struct awq_hmodel *m, int layer,
                         int dequantize, awq_dtype wt)
{
    memset(L, 0, sizeof *L);
    const struct awq_hlayer *h = &m->layers[layer];
    AWQ_TRY(upload_tensor_f32(dev, h->ln1, &L->ln1));
    AWQ_TRY(upload_tensor_f32(dev, h->ln2, &L->ln2));
    for (int k = 0; k < AWQ_LIN_COUNT; k++)
        AWQ_TRY(awq_dlinear_from_host(dev, &L->lin[k], &h->lin[k], m->cfg.group_size, dequantize, wt));
    return 0;
}

void awq_dlayer_free(struct awq_dlayer *L)
{
    awq_buffer_destroy(L->ln1);
    awq_buffer_destroy(L->ln2);
    for (int k = 0; k < AWQ_LIN_COUNT; k++)
        awq_dlinear_free(&L->lin[k]);
    memset(L, 0, sizeof *L);
}

int awq_linear(struct awq_fwd *f, const struct awq_dlinear *l, int T, struct awq_tref x, struct awq_tref y)
{
    struct awq_tref bias = { l->bias, 0 };
    if (l->q) {
        struct awq_gemm_w4_args a = { .w = l->q, .M = T, .x_type = AWQ_DTYPE_F32, .y_type = AWQ_DTYPE_F32,
                                      .x = x, .y = y, .bias = bias };
        return awq_op_gemm_w4(f->dev, &a);
    }
    struct awq_gemm_args a = { .M = T, .N = l->out, .K = l->in, .x_type = AWQ_DTYPE_F32, .w_type = l->wt,
                               .y_type = AWQ_DTYPE_F32, .x = x, .w = awq_at(l->w), .y = y, .bias = bias };
    return awq_op_gemm(f->dev, &a);
}

int awq_attn_sub(struct awq_fwd *f, const struct awq_dlayer *L, int n_seq, int seq_len, struct awq_tref x,
                 struct awq_tref out, const struct awq_kv *kv, int pos0, struct awq_tref rec_att)
{
    const struct awq_model_config *c = f->cfg;
    int T = n_seq * seq_len, hd = c->head_dim;
    if (T > f->cap_T || (kv && (n_seq != 1 || pos0 + seq_len > kv->cap)))
        return awq_err_set(&f->dev->err, AWQ_ERR_INVALID_ARGUMENT,
                           "attention: %d tokens exceed the scratch or KV cache capacity", T);
    AWQ_TRY(awq_linear(f, &L->lin[AWQ_LIN_Q], T, x, awq_at(f->q)));
    AWQ_TRY(awq_linear(f, &L->lin[AWQ_LIN_K], T, x, awq_at(f->k)));
    AWQ_TRY(awq_linear(f, &L->lin[AWQ_LIN_V], T, x, awq_at(f->v)));
    struct awq_rope_args rq = { .T = T, .n_heads = c->n_heads, .head_dim = hd, .pos0 = kv ? pos0 : 0,
                                .seq_len = kv ? T : seq_len, .x = awq_at(f->q), .inv_freq = awq_at(f->inv_freq) };
    AWQ_TRY(awq_op_rope(f->dev, &rq));
    struct awq_rope_args rk = rq;
    rk.n_heads = c->n_kv_heads;
    rk.x = awq_at(f->k);
    AWQ_TRY(awq_op_rope(f->dev, &rk));
    struct awq_tref K = awq_at(f->k), V = awq_at(f->v);
    int kv_len = seq_len;
    if (kv) {
        size_t row = (size_t)c->n_kv_heads * hd * sizeof(float);
        struct awq_tref dk = { kv->k, (size_t)pos0 * row }, dv = { kv->v, (size_t)pos0 * row };
        AWQ_TRY(awq_op_copy(f->dev, awq_at(f->k), dk, (size_t)T * row));
        AWQ_TRY(awq_op_copy(f->dev, awq_at(f->v), dv, (size_t)T * row));
        K = awq_at(kv->k);
        V = awq_at(kv->v);
        kv_len = pos0 + seq_len;
    }
    struct awq_tref att = rec_att.buf ? rec_att : awq_at(f->att);
    struct awq_attention_args a = { .n_seq = n_seq, .q_len = seq_len, .kv_len = kv_len, .n_heads = c->n_heads,
                                    .n_kv_heads = c->n_kv_heads, .head_dim = hd,
                                    .scale = 1.0f / sqrtf((float)hd), .q = awq_at(f->q), .k = K, .v = V, .out = att };
    AWQ_TRY(awq_op_attention(f->dev, &a));
    return awq_linear(f, &L->lin[AWQ_LIN_O], T, att, out);
}

int awq_mlp_sub(struct awq_fwd *f, const struct awq_dlayer *L, int T, struct awq_tref x, struct awq_tref out,
                struct awq_tref rec_act)
{
    const struct awq_model_config *c = f->cfg;
    if (T > f->cap_T)
        return awq_err_set(&f->dev->err, AWQ_ERR_INVALID_ARGUMENT, "mlp: %d tokens exceed the scratch", T);
    struct awq_tref act = rec_act.buf ? rec_act : awq_at(f->g);
    AWQ_TRY(awq_linear(f, &L->lin[AWQ_LIN_GATE], T, x, act));
    AWQ_TRY(awq_linear(f, &L->lin[AWQ_LIN_UP], T, x, awq_at(f->u)));
    struct awq_silu_mul_args s = { .n = (size_t)T * c->intermediate, .gate = act, .up = awq_at(f->u), .out = act };
    AWQ_TRY(awq_op_silu_mul(f->dev, &s));
    return awq_linear(f, &L->lin[AWQ_LIN_DOWN], T, act, out);
}

int awq_block_forward(struct awq_fwd *f, const struct awq_dlayer *L, int n_seq, int seq_len, struct awq_tref h,
                      const struct awq_kv *kv, int pos0, const struct awq_block_rec *rec)
{
    const struct awq_model_config *c = f->cfg;
    static const struct awq_block_rec none;
    if (!rec)
        rec = &none;
    int T = n_seq * seq_len;
    size_t n = (size_t)T * c->hidden;
    struct awq_tref x1 = rec->x1.buf ? rec->x1 : awq_at(f->xn);
    struct awq_tref ao = rec->attn_out.buf ? rec->attn_out : awq_at(f->o);
    struct awq_rmsnorm_args n1 = { .T = T, .C = c->hidden, .eps = c->rms_eps, .x = h, .w = awq_at(L->ln1), .y = x1 };
    AWQ_TRY(awq_op_rmsnorm(f->dev, &n1));
    AWQ_TRY(awq_attn_sub(f, L, n_seq, seq_len, x1, ao, kv, pos0, rec->att));
    struct awq_add_args a1 = { .n = n, .a = h, .b = ao, .out = h };
    AWQ_TRY(awq_op_add(f->dev, &a1));
    struct awq_tref x2 = rec->x2.buf ? rec->x2 : awq_at(f->xn);
    struct awq_tref mo = rec->mlp_out.buf ? rec->mlp_out : awq_at(f->o);
    struct awq_rmsnorm_args n2 = { .T = T, .C = c->hidden, .eps = c->rms_eps, .x = h, .w = awq_at(L->ln2), .y = x2 };
    AWQ_TRY(awq_op_rmsnorm(f->dev, &n2));
    AWQ_TRY(awq_mlp_sub(f, L, T, x2, mo, rec->act));
    struct awq_add_args a2 = { .n = n, .a = h, .b = mo, .out = h };
    return awq_op_add(f->dev, &a2);
}
