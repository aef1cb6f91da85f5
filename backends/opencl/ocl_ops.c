/* OpenCL launches of the ops other than the matrix products: the Llama block (shaders/nn.cl,
 * shaders/attention.cl) and calibration / search (shaders/quant.cl). Each validates only what the
 * core cannot know (offset alignment, local memory needs) and enqueues. */
#include "config.h"

#include <stdint.h>

#include "ocl_internal.h"

#define TRY(x)              \
    do {                    \
        int st_ = (x);      \
        if (st_ < 0)        \
            return st_;     \
    } while (0)

#define REF(r, elem, name, mem, off) TRY(ocl_ref(d, (r), (elem), (name), &(mem), &(off)))

/* Work-group of the elementwise 2-D kernels: 32 along rows' elements, a few rows. */
static void ew2d(const struct ocl_dev *d, size_t cols, size_t rows, size_t gws[2], size_t lws[2])
{
    lws[0] = 32;
    lws[1] = d->p.red_wg >= 128 ? (size_t)d->p.red_wg / 64 : 1;
    gws[0] = ocl_round_up(cols, lws[0]);
    gws[1] = ocl_round_up(rows, lws[1]);
}

/* ---- Llama block --------------------------------------------------------------------------------- */

int ocl_rmsnorm(void *dev, const struct awq_rmsnorm_args *a)
{
    struct ocl_dev *d = dev;
    cl_mem x, w, y;
    cl_ulong xo, wo, yo;
    REF(a->x, 4, "x", x, xo);
    REF(a->w, 4, "w", w, wo);
    REF(a->y, 4, "y", y, yo);
    size_t lws = (size_t)d->p.red_wg, gws = (size_t)a->T * lws;
    return OCL_LAUNCH(d, d->k[K_RMSNORM], "rmsnorm", 1, &gws, &lws, OA_MEM(x), OA_ULONG(xo),
                      OA_MEM(w), OA_ULONG(wo), OA_MEM(y), OA_ULONG(yo), OA_INT(a->C),
                      OA_FLOAT(a->eps));
}

int ocl_rope(void *dev, const struct awq_rope_args *a)
{
    struct ocl_dev *d = dev;
    cl_mem x, f;
    cl_ulong xo, fo;
    REF(a->x, 4, "x", x, xo);
    REF(a->inv_freq, 4, "inv_freq", f, fo);
    int rows = a->T * a->n_heads;
    size_t gws[2], lws[2];
    ew2d(d, (size_t)(a->head_dim / 2), (size_t)rows, gws, lws);
    return OCL_LAUNCH(d, d->k[K_ROPE], "rope", 2, gws, lws, OA_MEM(x), OA_ULONG(xo), OA_MEM(f),
                      OA_ULONG(fo), OA_INT(rows), OA_INT(a->n_heads), OA_INT(a->head_dim),
                      OA_INT(a->pos0), OA_INT(a->seq_len));
}

int ocl_attention(void *dev, const struct awq_attention_args *a)
{
    struct ocl_dev *d = dev;
    cl_mem q, k, v, o;
    cl_ulong qo, ko, vo, oo;
    REF(a->q, 4, "q", q, qo);
    REF(a->k, 4, "k", k, ko);
    REF(a->v, 4, "v", v, vo);
    REF(a->out, 4, "out", o, oo);
    const struct ocl_att *att;
    TRY(ocl_attention_kernel(d, a->head_dim, &att));
    size_t rows = (size_t)a->q_len * (size_t)(a->n_heads / a->n_kv_heads);
    size_t n_rb = (rows + (size_t)att->bq - 1) / (size_t)att->bq;
    size_t wgs = n_rb * (size_t)a->n_kv_heads * (size_t)a->n_seq;

    /* Too few work-groups for the device (decode): split the keys, at least 4 tiles per split. */
    size_t n_split = 1, split_len = (size_t)a->kv_len;
    if (wgs < (size_t)d->p.att_wgs) {
        size_t want = ((size_t)d->p.att_wgs + wgs - 1) / wgs;
        size_t most = (size_t)a->kv_len / (4 * (size_t)att->bkv);
        n_split = want < most ? want : most;
        if (n_split > 256)
            n_split = 256;
        if (n_split >= 2) {
            split_len = ocl_round_up(((size_t)a->kv_len + n_split - 1) / n_split, (size_t)att->bkv);
            n_split = ((size_t)a->kv_len + split_len - 1) / split_len;
        } else {
            n_split = 1;
        }
    }
    cl_mem part = d->dummy;
    if (n_split > 1) {
        size_t need = wgs * n_split * (size_t)att->bq * (size_t)(a->head_dim + 2) * sizeof(float);
        if (need > d->att_part_size) {
            cl_int e;
            cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, need, NULL, &e);
            if (!m)
                return ocl_fail(d->err, e, "clCreateBuffer (attention partial results)");
            if (d->att_part)
                clReleaseMemObject(d->att_part);   /* queued kernels keep it alive */
            d->att_part = m;
            d->att_part_size = need;
        }
        part = d->att_part;
    }
    size_t lws[3] = { (size_t)att->wg, 1, 1 };
    size_t gws[3] = { n_rb * n_split * (size_t)att->wg, (size_t)a->n_kv_heads, (size_t)a->n_seq };
    TRY(OCL_LAUNCH(d, att->k, "attention", 3, gws, lws, OA_MEM(q), OA_ULONG(qo), OA_MEM(k),
                   OA_ULONG(ko), OA_MEM(v), OA_ULONG(vo), OA_MEM(o), OA_ULONG(oo),
                   OA_INT(a->q_len), OA_INT(a->kv_len), OA_INT(a->n_heads), OA_INT(a->n_kv_heads),
                   OA_FLOAT(a->scale), OA_INT(split_len), OA_INT(n_split), OA_MEM(part)));
    if (n_split == 1)
        return 0;
    size_t clws[3] = { 32, 1, 1 };
    size_t cgws[3] = { ocl_round_up((size_t)a->head_dim, 32), rows,
                       (size_t)a->n_kv_heads * (size_t)a->n_seq };
    return OCL_LAUNCH(d, att->combine, "attention_combine", 3, cgws, clws, OA_MEM(part), OA_MEM(o),
                      OA_ULONG(oo), OA_INT(a->q_len), OA_INT(a->n_heads), OA_INT(a->n_kv_heads),
                      OA_INT(n_split));
}

static int elementwise(struct ocl_dev *d, enum ocl_kern kern, const char *name, size_t n,
                       struct awq_tref ra, struct awq_tref rb, struct awq_tref rout)
{
    cl_mem a, b, o;
    cl_ulong ao, bo, oo;
    REF(ra, 4, "a", a, ao);
    REF(rb, 4, "b", b, bo);
    REF(rout, 4, "out", o, oo);
    size_t lws = (size_t)d->p.red_wg, gws = ocl_round_up(n, lws);
    return OCL_LAUNCH(d, d->k[kern], name, 1, &gws, &lws, OA_MEM(a), OA_ULONG(ao), OA_MEM(b),
                      OA_ULONG(bo), OA_MEM(o), OA_ULONG(oo), OA_ULONG(n));
}

int ocl_silu_mul(void *dev, const struct awq_silu_mul_args *a)
{
    return elementwise(dev, K_SILU_MUL, "silu_mul", a->n, a->gate, a->up, a->out);
}

int ocl_add(void *dev, const struct awq_add_args *a)
{
    return elementwise(dev, K_ADD, "add", a->n, a->a, a->b, a->out);
}

int ocl_embed(void *dev, const struct awq_embed_args *a)
{
    struct ocl_dev *d = dev;
    int tf16 = a->table_type == AWQ_DTYPE_F16;
    cl_mem t, ids, o;
    cl_ulong to, io, oo;
    REF(a->table, tf16 ? 2 : 4, "table", t, to);
    REF(a->ids, 4, "ids", ids, io);
    REF(a->out, 4, "out", o, oo);
    size_t gws[2], lws[2];
    ew2d(d, (size_t)a->C, (size_t)a->T, gws, lws);
    return OCL_LAUNCH(d, d->k[K_EMBED], "embed", 2, gws, lws, OA_MEM(t), OA_ULONG(to), OA_INT(tf16),
                      OA_MEM(ids), OA_ULONG(io), OA_MEM(o), OA_ULONG(oo), OA_INT(a->T),
                      OA_INT(a->C), OA_INT(a->vocab));
}

int ocl_cross_entropy(void *dev, const struct awq_cross_entropy_args *a)
{
    struct ocl_dev *d = dev;
    cl_mem l, t, n;
    cl_ulong lo, to, no;
    REF(a->logits, 4, "logits", l, lo);
    REF(a->targets, 4, "targets", t, to);
    REF(a->nll, 4, "nll", n, no);
    size_t lws = (size_t)d->p.red_wg, gws = (size_t)a->T * lws;
    return OCL_LAUNCH(d, d->k[K_CROSS_ENTROPY], "cross_entropy", 1, &gws, &lws, OA_MEM(l),
                      OA_ULONG(lo), OA_MEM(t), OA_ULONG(to), OA_MEM(n), OA_ULONG(no), OA_INT(a->V));
}

/* ---- calibration and search ------------------------------------------------------------------------ */

int ocl_act_stats(void *dev, const struct awq_act_stats_args *a)
{
    struct ocl_dev *d = dev;
    int xf16 = a->x_type == AWQ_DTYPE_F16;
    cl_mem x, sa, ma, sq;
    cl_ulong xo, sao, mao, sqo;
    REF(a->x, xf16 ? 2 : 4, "x", x, xo);
    REF(a->sum_abs, 4, "sum_abs", sa, sao);
    REF(a->max_abs, 4, "max_abs", ma, mao);
    REF(a->sum_sq, 4, "sum_sq", sq, sqo);
    size_t lws[2] = { (size_t)d->p.st_c, (size_t)d->p.st_s };
    size_t gws[2] = { ocl_round_up((size_t)a->C, lws[0]), lws[1] };
    return OCL_LAUNCH(d, d->k[K_ACT_STATS], "act_stats", 2, gws, lws, OA_MEM(x), OA_ULONG(xo),
                      OA_INT(xf16), OA_MEM(sa), OA_ULONG(sao), OA_INT(a->sum_abs.buf != NULL),
                      OA_MEM(ma), OA_ULONG(mao), OA_INT(a->max_abs.buf != NULL), OA_MEM(sq),
                      OA_ULONG(sqo), OA_INT(a->sum_sq.buf != NULL), OA_INT(a->T), OA_INT(a->C));
}

int ocl_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a)
{
    struct ocl_dev *d = dev;
    cl_mem w, s, o;
    cl_ulong wo, so, oo;
    REF(a->w, 4, "w", w, wo);
    REF(a->in_scale, 4, "in_scale", s, so);
    REF(a->out, 4, "out", o, oo);
    cl_ulong groups = (cl_ulong)a->N * (cl_ulong)(a->K / a->G);
    size_t lws = 64, gws = ocl_round_up((size_t)groups, lws);
    return OCL_LAUNCH(d, d->k[K_PSEUDO_QUANT], "pseudo_quant", 1, &gws, &lws, OA_MEM(w),
                      OA_ULONG(wo), OA_MEM(s), OA_ULONG(so), OA_INT(a->in_scale.buf != NULL),
                      OA_MEM(o), OA_ULONG(oo), OA_INT(a->K), OA_INT(a->G), OA_ULONG(groups));
}

int ocl_clip_search(void *dev, const struct awq_clip_search_args *a)
{
    struct ocl_dev *d = dev;
    const struct ocl_params *p = &d->p;
    cl_mem w, x, e;
    cl_ulong wo, xo, eo;
    REF(a->w, 4, "w", w, wo);
    REF(a->x, 4, "x", x, xo);
    REF(a->err, 4, "err", e, eo);
    size_t dw_bytes = (size_t)p->cs_n * (size_t)(a->G + 1) * sizeof(float);
    size_t xs_bytes = (size_t)p->cs_t * 4 * (size_t)a->G * sizeof(float);
    size_t need = dw_bytes + xs_bytes + (size_t)p->cs_n * (size_t)p->cs_t * d->acc_size + 1024;
    if (need > d->desc.local_mem)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED,
                           "OpenCL clip_search: group size %d needs %zu bytes of local memory; "
                           "device '%s' has %llu", a->G, need, d->desc.name,
                           (unsigned long long)d->desc.local_mem);
    size_t lws[2] = { (size_t)p->cs_n, (size_t)p->cs_t };
    size_t gws[2] = { ocl_round_up((size_t)a->N, lws[0]), (size_t)(a->K / a->G) * lws[1] };
    for (int s = 0; s < a->n_shrink; s++)
        TRY(OCL_LAUNCH(d, d->k[K_CLIP_SEARCH], "clip_search", 2, gws, lws, OA_MEM(w), OA_ULONG(wo),
                       OA_MEM(x), OA_ULONG(xo), OA_MEM(e), OA_ULONG(eo), OA_FLOAT(a->shrink[s]),
                       OA_INT(s), OA_INT(a->N), OA_INT(a->K), OA_INT(a->G), OA_INT(a->T),
                       OA_LOCAL(dw_bytes), OA_LOCAL(xs_bytes)));
    return 0;
}

int ocl_sq_err(void *dev, const struct awq_sq_err_args *a)
{
    struct ocl_dev *d = dev;
    cl_mem x, y, o;
    cl_ulong xo, yo, oo;
    REF(a->a, 4, "a", x, xo);
    REF(a->b, 4, "b", y, yo);
    REF(a->out, 4, "out", o, oo);
    /* The chunking depends on n only, so the summation order is fixed for a given n. */
    size_t wg = (size_t)d->p.red_wg;
    size_t chunk = (a->n + OCL_SQ_PARTS - 1) / OCL_SQ_PARTS;
    if (chunk < wg * 64)
        chunk = wg * 64;
    size_t parts = (a->n + chunk - 1) / chunk, gws = parts * wg;
    TRY(OCL_LAUNCH(d, d->k[K_SQ_ERR_PARTIAL], "sq_err_partial", 1, &gws, &wg, OA_MEM(x),
                   OA_ULONG(xo), OA_MEM(y), OA_ULONG(yo), OA_ULONG(a->n), OA_ULONG(chunk),
                   OA_MEM(d->sq_part)));
    return OCL_LAUNCH(d, d->k[K_SQ_ERR_FINAL], "sq_err_final", 1, &wg, &wg, OA_MEM(d->sq_part),
                      OA_INT(parts), OA_MEM(o), OA_ULONG(oo));
}

int ocl_scale_cols(void *dev, const struct awq_scale_cols_args *a)
{
    struct ocl_dev *d = dev;
    cl_mem x, s;
    cl_ulong xo, so;
    REF(a->x, 4, "x", x, xo);
    REF(a->s, 4, "s", s, so);
    size_t gws[2], lws[2];
    ew2d(d, (size_t)a->C, (size_t)a->T, gws, lws);
    return OCL_LAUNCH(d, d->k[K_SCALE_COLS], "scale_cols", 2, gws, lws, OA_MEM(x), OA_ULONG(xo),
                      OA_MEM(s), OA_ULONG(so), OA_INT(a->T), OA_INT(a->C), OA_INT(a->divide));
}
