#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/context.h"
#include "core/ops.h"

/* Checks that tensor `r` of `bytes` bytes lies inside a buffer of this device. */
static int check_ref(struct awq_device *dev, const char *op, const char *name, struct awq_tref r,
                     size_t bytes, int optional)
{
    if (!r.buf) {
        if (optional)
            return 0;
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT, "%s: tensor %s missing", op, name);
    }
    if (r.buf->dev != dev)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT,
                           "%s: tensor %s lives on another device", op, name);
    if (r.off > r.buf->size || bytes > r.buf->size - r.off)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_BOUNDS,
                           "%s: tensor %s needs %zu bytes at offset %zu of a %zu-byte buffer", op,
                           name, bytes, r.off, r.buf->size);
    return 0;
}

static int check_float_type(struct awq_device *dev, const char *op, const char *name, awq_dtype t)
{
    if (t != AWQ_DTYPE_F32 && t != AWQ_DTYPE_F16)
        return awq_err_set(&dev->err, AWQ_ERR_BAD_DTYPE, "%s: %s must be F32 or F16, not %s", op,
                           name, awq_dtype_name(t) ? awq_dtype_name(t) : "an unknown dtype");
    return 0;
}

static int check_positive(struct awq_device *dev, const char *op, const char *what, long long v)
{
    if (v <= 0)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT, "%s: %s = %lld must be positive",
                           op, what, v);
    return 0;
}

/* Product of element counts, with overflow checked against SIZE_MAX / 8. */
static int elems(struct awq_device *dev, const char *op, size_t *out, size_t a, size_t b)
{
    *out = 0;
    if (a && b > (SIZE_MAX / 8) / a)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT, "%s: tensor size overflows", op);
    *out = a * b;
    return 0;
}


#define F32 sizeof(float)

int awq_op_copy(struct awq_device *dev, struct awq_tref src, struct awq_tref dst, size_t bytes)
{
    AWQ_TRY(check_ref(dev, "copy", "src", src, bytes, 0));
    AWQ_TRY(check_ref(dev, "copy", "dst", dst, bytes, 0));
    if (!bytes)
        return 0;
    return dev->ops->buf_copy(dev->impl, src.buf->impl, src.off, dst.buf->impl, dst.off, bytes);
}

int awq_op_zero(struct awq_device *dev, struct awq_tref dst, size_t bytes)
{
    AWQ_TRY(check_ref(dev, "zero", "dst", dst, bytes, 0));
    return bytes ? dev->ops->buf_zero(dev->impl, dst.buf->impl, dst.off, bytes) : 0;
}

int awq_op_write(struct awq_device *dev, struct awq_tref dst, const void *src, size_t bytes)
{
    AWQ_TRY(check_ref(dev, "write", "dst", dst, bytes, 0));
    return bytes ? dev->ops->buf_write(dev->impl, dst.buf->impl, dst.off, src, bytes) : 0;
}

int awq_op_read(struct awq_device *dev, struct awq_tref src, void *dst, size_t bytes)
{
    AWQ_TRY(check_ref(dev, "read", "src", src, bytes, 0));
    return bytes ? dev->ops->buf_read(dev->impl, src.buf->impl, src.off, dst, bytes) : 0;
}

int awq_op_w4_create(struct awq_device *dev, const struct awq_w4_host *s, struct awq_qweight **out)
{
    *out = NULL;
    if (s->group_size != 32 && s->group_size != 64 && s->group_size != 128)
        return awq_err_set(&dev->err, AWQ_ERR_UNSUPPORTED,
                           "group size %d (supported: 32, 64, 128)", s->group_size);
    if (s->K <= 0 || s->N <= 0 || s->K % s->group_size || s->N % 8)
        return awq_err_set(&dev->err, AWQ_ERR_BAD_SHAPE,
                           "4-bit weight K=%d N=%d: K must be a positive multiple of the group size "
                           "%d and N a positive multiple of 8", s->K, s->N, s->group_size);
    if (!s->qweight || !s->qzeros || !s->scales)
        return AWQ_ERR_INVALID_ARGUMENT;
    struct awq_qweight *w = calloc(1, sizeof *w);
    if (!w)
        return awq_err_set(&dev->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    int st = dev->ops->w4_create(dev->impl, s, &w->impl);
    if (st < 0) {
        free(w);
        return st;
    }
    w->dev = dev;
    w->K = s->K;
    w->N = s->N;
    w->group_size = s->group_size;
    w->bytes = (size_t)s->K * s->N / 2 + (size_t)s->K / s->group_size * s->N * 5 / 2;
    awq_device_account(dev, (int64_t)w->bytes);
    *out = w;
    return 0;
}

int awq_op_gemm_w4(struct awq_device *dev, const struct awq_gemm_w4_args *a)
{
    const char *op = "gemm_w4";
    if (!a->w || a->w->dev != dev)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT, "gemm_w4: weight of another device");
    AWQ_TRY(check_positive(dev, op, "M", a->M));
    AWQ_TRY(check_float_type(dev, op, "X", a->x_type));
    AWQ_TRY(check_float_type(dev, op, "Y", a->y_type));
    size_t mk, mn;
    AWQ_TRY(elems(dev, op, &mk, (size_t)a->M, (size_t)a->w->K));
    AWQ_TRY(elems(dev, op, &mn, (size_t)a->M, (size_t)a->w->N));
    AWQ_TRY(check_ref(dev, op, "X", a->x, mk * awq_dtype_size(a->x_type), 0));
    AWQ_TRY(check_ref(dev, op, "Y", a->y, mn * awq_dtype_size(a->y_type), 0));
    AWQ_TRY(check_ref(dev, op, "bias", a->bias, (size_t)a->w->N * F32, 1));
    AWQ_TRY(check_ref(dev, op, "act_scale", a->act_scale, (size_t)a->w->K * F32, 1));
    return dev->ops->gemm_w4(dev->impl, a);
}

int awq_op_gemm(struct awq_device *dev, const struct awq_gemm_args *a)
{
    const char *op = "gemm";
    AWQ_TRY(check_positive(dev, op, "M", a->M));
    AWQ_TRY(check_positive(dev, op, "N", a->N));
    AWQ_TRY(check_positive(dev, op, "K", a->K));
    AWQ_TRY(check_float_type(dev, op, "X", a->x_type));
    AWQ_TRY(check_float_type(dev, op, "W", a->w_type));
    AWQ_TRY(check_float_type(dev, op, "Y", a->y_type));
    size_t mk, nk, mn;
    AWQ_TRY(elems(dev, op, &mk, (size_t)a->M, (size_t)a->K));
    AWQ_TRY(elems(dev, op, &nk, (size_t)a->N, (size_t)a->K));
    AWQ_TRY(elems(dev, op, &mn, (size_t)a->M, (size_t)a->N));
    AWQ_TRY(check_ref(dev, op, "X", a->x, mk * awq_dtype_size(a->x_type), 0));
    AWQ_TRY(check_ref(dev, op, "W", a->w, nk * awq_dtype_size(a->w_type), 0));
    AWQ_TRY(check_ref(dev, op, "Y", a->y, mn * awq_dtype_size(a->y_type), 0));
    AWQ_TRY(check_ref(dev, op, "bias", a->bias, (size_t)a->N * F32, 1));
    return dev->ops->gemm(dev->impl, a);
}

int awq_op_act_stats(struct awq_device *dev, const struct awq_act_stats_args *a)
{
    const char *op = "act_stats";
    AWQ_TRY(check_positive(dev, op, "T", a->T));
    AWQ_TRY(check_positive(dev, op, "C", a->C));
    AWQ_TRY(check_float_type(dev, op, "X", a->x_type));
    size_t tc;
    AWQ_TRY(elems(dev, op, &tc, (size_t)a->T, (size_t)a->C));
    AWQ_TRY(check_ref(dev, op, "X", a->x, tc * awq_dtype_size(a->x_type), 0));
    AWQ_TRY(check_ref(dev, op, "sum_abs", a->sum_abs, (size_t)a->C * F32, 1));
    AWQ_TRY(check_ref(dev, op, "max_abs", a->max_abs, (size_t)a->C * F32, 1));
    AWQ_TRY(check_ref(dev, op, "sum_sq", a->sum_sq, (size_t)a->C * F32, 1));
    return dev->ops->act_stats(dev->impl, a);
}

int awq_op_rmsnorm(struct awq_device *dev, const struct awq_rmsnorm_args *a)
{
    const char *op = "rmsnorm";
    AWQ_TRY(check_positive(dev, op, "T", a->T));
    AWQ_TRY(check_positive(dev, op, "C", a->C));
    size_t tc;
    AWQ_TRY(elems(dev, op, &tc, (size_t)a->T, (size_t)a->C));
    AWQ_TRY(check_ref(dev, op, "x", a->x, tc * F32, 0));
    AWQ_TRY(check_ref(dev, op, "w", a->w, (size_t)a->C * F32, 0));
    AWQ_TRY(check_ref(dev, op, "y", a->y, tc * F32, 0));
    return dev->ops->rmsnorm(dev->impl, a);
}

int awq_op_rope(struct awq_device *dev, const struct awq_rope_args *a)
{
    const char *op = "rope";
    AWQ_TRY(check_positive(dev, op, "T", a->T));
    AWQ_TRY(check_positive(dev, op, "n_heads", a->n_heads));
    AWQ_TRY(check_positive(dev, op, "seq_len", a->seq_len));
    if (a->head_dim <= 0 || a->head_dim % 2 || a->pos0 < 0)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT,
                           "rope: head_dim %d must be positive and even, pos0 %d >= 0", a->head_dim,
                           a->pos0);
    size_t rows;
    AWQ_TRY(elems(dev, op, &rows, (size_t)a->T, (size_t)a->n_heads * (size_t)a->head_dim));
    AWQ_TRY(check_ref(dev, op, "x", a->x, rows * F32, 0));
    AWQ_TRY(check_ref(dev, op, "inv_freq", a->inv_freq, (size_t)a->head_dim / 2 * F32, 0));
    return dev->ops->rope(dev->impl, a);
}

int awq_op_attention(struct awq_device *dev, const struct awq_attention_args *a)
{
    const char *op = "attention";
    AWQ_TRY(check_positive(dev, op, "n_seq", a->n_seq));
    AWQ_TRY(check_positive(dev, op, "q_len", a->q_len));
    AWQ_TRY(check_positive(dev, op, "head_dim", a->head_dim));
    AWQ_TRY(check_positive(dev, op, "n_kv_heads", a->n_kv_heads));
    if (a->kv_len < a->q_len || a->n_heads <= 0 || a->n_heads % a->n_kv_heads)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT,
                           "attention: kv_len %d < q_len %d, or %d heads not a multiple of %d KV heads",
                           a->kv_len, a->q_len, a->n_heads, a->n_kv_heads);
    size_t qn, kn;
    AWQ_TRY(elems(dev, op, &qn, (size_t)a->n_seq * (size_t)a->q_len, (size_t)a->n_heads * (size_t)a->head_dim));
    AWQ_TRY(elems(dev, op, &kn, (size_t)a->n_seq * (size_t)a->kv_len,
              (size_t)a->n_kv_heads * (size_t)a->head_dim));
    AWQ_TRY(check_ref(dev, op, "q", a->q, qn * F32, 0));
    AWQ_TRY(check_ref(dev, op, "k", a->k, kn * F32, 0));
    AWQ_TRY(check_ref(dev, op, "v", a->v, kn * F32, 0));
    AWQ_TRY(check_ref(dev, op, "out", a->out, qn * F32, 0));
    return dev->ops->attention(dev->impl, a);
}

int awq_op_silu_mul(struct awq_device *dev, const struct awq_silu_mul_args *a)
{
    const char *op = "silu_mul";
    AWQ_TRY(check_positive(dev, op, "n", (long long)a->n));
    AWQ_TRY(check_ref(dev, op, "gate", a->gate, a->n * F32, 0));
    AWQ_TRY(check_ref(dev, op, "up", a->up, a->n * F32, 0));
    AWQ_TRY(check_ref(dev, op, "out", a->out, a->n * F32, 0));
    return dev->ops->silu_mul(dev->impl, a);
}

int awq_op_add(struct awq_device *dev, const struct awq_add_args *a)
{
    const char *op = "add";
    AWQ_TRY(check_positive(dev, op, "n", (long long)a->n));
    AWQ_TRY(check_ref(dev, op, "a", a->a, a->n * F32, 0));
    AWQ_TRY(check_ref(dev, op, "b", a->b, a->n * F32, 0));
    AWQ_TRY(check_ref(dev, op, "out", a->out, a->n * F32, 0));
    return dev->ops->add(dev->impl, a);
}

int awq_op_embed(struct awq_device *dev, const struct awq_embed_args *a)
{
    const char *op = "embed";
    AWQ_TRY(check_positive(dev, op, "T", a->T));
    AWQ_TRY(check_positive(dev, op, "C", a->C));
    AWQ_TRY(check_positive(dev, op, "vocab", a->vocab));
    AWQ_TRY(check_float_type(dev, op, "table", a->table_type));
    size_t vc, tc;
    AWQ_TRY(elems(dev, op, &vc, (size_t)a->vocab, (size_t)a->C));
    AWQ_TRY(elems(dev, op, &tc, (size_t)a->T, (size_t)a->C));
    AWQ_TRY(check_ref(dev, op, "table", a->table, vc * awq_dtype_size(a->table_type), 0));
    AWQ_TRY(check_ref(dev, op, "ids", a->ids, (size_t)a->T * sizeof(int32_t), 0));
    AWQ_TRY(check_ref(dev, op, "out", a->out, tc * F32, 0));
    return dev->ops->embed(dev->impl, a);
}

static int check_groups(struct awq_device *dev, const char *op, int N, int K, int G)
{
    AWQ_TRY(check_positive(dev, op, "N", N));
    AWQ_TRY(check_positive(dev, op, "K", K));
    if (G <= 0 || K % G)
        return awq_err_set(&dev->err, AWQ_ERR_BAD_SHAPE, "%s: K = %d is not a multiple of G = %d",
                           op, K, G);
    return 0;
}

int awq_op_pseudo_quant(struct awq_device *dev, const struct awq_pseudo_quant_args *a)
{
    const char *op = "pseudo_quant";
    AWQ_TRY(check_groups(dev, op, a->N, a->K, a->G));
    size_t nk;
    AWQ_TRY(elems(dev, op, &nk, (size_t)a->N, (size_t)a->K));
    AWQ_TRY(check_ref(dev, op, "w", a->w, nk * F32, 0));
    AWQ_TRY(check_ref(dev, op, "in_scale", a->in_scale, (size_t)a->K * F32, 1));
    AWQ_TRY(check_ref(dev, op, "out", a->out, nk * F32, 0));
    return dev->ops->pseudo_quant(dev->impl, a);
}

int awq_op_clip_search(struct awq_device *dev, const struct awq_clip_search_args *a)
{
    const char *op = "clip_search";
    AWQ_TRY(check_groups(dev, op, a->N, a->K, a->G));
    AWQ_TRY(check_positive(dev, op, "T", a->T));
    if (a->n_shrink <= 0 || a->n_shrink > AWQ_MAX_SHRINK)
        return awq_err_set(&dev->err, AWQ_ERR_INVALID_ARGUMENT, "clip_search: %d shrink factors "
                           "(1..%d allowed)", a->n_shrink, AWQ_MAX_SHRINK);
    size_t nk, tk, ne;
    AWQ_TRY(elems(dev, op, &nk, (size_t)a->N, (size_t)a->K));
    AWQ_TRY(elems(dev, op, &tk, (size_t)a->T, (size_t)a->K));
    AWQ_TRY(elems(dev, op, &ne, (size_t)a->n_shrink * (size_t)a->N, (size_t)(a->K / a->G)));
    AWQ_TRY(check_ref(dev, op, "w", a->w, nk * F32, 0));
    AWQ_TRY(check_ref(dev, op, "x", a->x, tk * F32, 0));
    AWQ_TRY(check_ref(dev, op, "err", a->err, ne * F32, 0));
    return dev->ops->clip_search(dev->impl, a);
}

int awq_op_sq_err(struct awq_device *dev, const struct awq_sq_err_args *a)
{
    const char *op = "sq_err";
    AWQ_TRY(check_positive(dev, op, "n", (long long)a->n));
    AWQ_TRY(check_ref(dev, op, "a", a->a, a->n * F32, 0));
    AWQ_TRY(check_ref(dev, op, "b", a->b, a->n * F32, 0));
    AWQ_TRY(check_ref(dev, op, "out", a->out, F32, 0));
    return dev->ops->sq_err(dev->impl, a);
}

int awq_op_scale_cols(struct awq_device *dev, const struct awq_scale_cols_args *a)
{
    const char *op = "scale_cols";
    AWQ_TRY(check_positive(dev, op, "T", a->T));
    AWQ_TRY(check_positive(dev, op, "C", a->C));
    size_t tc;
    AWQ_TRY(elems(dev, op, &tc, (size_t)a->T, (size_t)a->C));
    AWQ_TRY(check_ref(dev, op, "x", a->x, tc * F32, 0));
    AWQ_TRY(check_ref(dev, op, "s", a->s, (size_t)a->C * F32, 0));
    return dev->ops->scale_cols(dev->impl, a);
}

int awq_op_cross_entropy(struct awq_device *dev, const struct awq_cross_entropy_args *a)
{
    const char *op = "cross_entropy";
    AWQ_TRY(check_positive(dev, op, "T", a->T));
    AWQ_TRY(check_positive(dev, op, "V", a->V));
    size_t tv;
    AWQ_TRY(elems(dev, op, &tv, (size_t)a->T, (size_t)a->V));
    AWQ_TRY(check_ref(dev, op, "logits", a->logits, tv * F32, 0));
    AWQ_TRY(check_ref(dev, op, "targets", a->targets, (size_t)a->T * sizeof(int32_t), 0));
    AWQ_TRY(check_ref(dev, op, "nll", a->nll, (size_t)a->T * F32, 0));
    return dev->ops->cross_entropy(dev->impl, a);
}

/* ---- public wrappers -------------------------------------------------------------------------- */

AWQ_API int awq_qweight_create(awq_device *dev, int K, int N, int group_size, const int32_t *qweight,
                               const int32_t *qzeros, const uint16_t *scales, awq_qweight **out)
{
    if (!dev || !out)
        return AWQ_ERR_INVALID_ARGUMENT;
    struct awq_w4_host h = { K, N, group_size, qweight, qzeros, scales };
    return awq_op_w4_create(dev, &h, out);
}

AWQ_API void awq_qweight_destroy(awq_qweight *w)
{
    if (!w)
        return;
    awq_device_account(w->dev, -(int64_t)w->bytes);
    w->dev->ops->w4_free(w->dev->impl, w->impl);
    free(w);
}

AWQ_API int awq_gemm_w4(awq_device *dev, const awq_qweight *w, const awq_gemm_w4_params *p)
{
    if (!dev || !w || !p)
        return AWQ_ERR_INVALID_ARGUMENT;
    struct awq_gemm_w4_args a = {
        .w = w, .M = p->M, .x_type = p->x_type, .y_type = p->y_type,
        .x = { p->x, p->x_offset }, .y = { p->y, p->y_offset },
        .bias = { p->bias, p->bias_offset }, .act_scale = { p->act_scale, p->act_scale_offset },
    };
    return awq_op_gemm_w4(dev, &a);
}
