/* Ops of the Llama block: RMSNorm, RoPE, attention, SiLU-gate, add, embedding, cross-entropy.
 * Every op splits its rows into chunks whose windows fit one storage-buffer binding. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "vk_internal.h"

/* Workgroups for a grid-stride loop over n items. */
static uint32_t stride_groups(const struct vk_dev *d, size_t n)
{
    size_t g = vk_div_up(n, d->tune.wg);
    size_t cap = vk_min(d->max_groups[0], 4096);
    return (uint32_t)(g < 1 ? 1 : vk_min(g, cap));
}

static uint32_t pow2_ceil(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p *= 2;
    return p;
}

/* ---- elementwise (shared with scale_cols in vk_quant.c) --------------------------------------- */

struct elt_push {
    uint32_t n, C, c0;
    uint32_t a_off, b_off, o_off;
};

/* op 0 silu_mul, 1 add: out[i] = f(a[i], b[i]) for n values. */
static int eltwise(struct vk_dev *d, uint32_t op, size_t n, struct awq_tref ra, struct awq_tref rb,
                   struct awq_tref ro)
{
    size_t chunk = awq_vk_rows_fit(d, 4);
    VK_TRY(awq_vk_op_begin(d));
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t c = vk_min(chunk, n - i0);
        struct vk_arg args[3];
        struct elt_push pc = { (uint32_t)c, 1, 0, 0, 0, 0 };
        VK_TRY(awq_vk_window(d, vk_tbuf(ra), ra.off + 4 * i0, ra.off + 4 * (i0 + c), 4, &args[0], &pc.a_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(rb), rb.off + 4 * i0, rb.off + 4 * (i0 + c), 4, &args[1], &pc.b_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(ro), ro.off + 4 * i0, ro.off + 4 * (i0 + c), 4, &args[2], &pc.o_off));
        uint32_t spec[] = { d->tune.wg, op };
        VK_TRY(awq_vk_dispatch(d, VKS_ELTWISE, spec, 2, args, 3, &pc, sizeof pc, stride_groups(d, c), 1, 1));
    }
    return awq_vk_op_end(d);
}

int awq_vk_scale_cols(void *dev, const struct awq_scale_cols_args *a)
{
    struct vk_dev *d = dev;
    size_t T = (size_t)a->T, C = (size_t)a->C;
    size_t rows = awq_vk_rows_fit(d, C * 4);
    if (rows == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "scale_cols: rows of %zu bytes exceed the "
                           "storage-buffer range", C * 4);
    VK_TRY(awq_vk_op_begin(d));
    struct vk_arg sarg;
    struct elt_push pc = { 0, (uint32_t)C, 0, 0, 0, 0 };
    VK_TRY(awq_vk_window(d, vk_tbuf(a->s), a->s.off, a->s.off + C * 4, 4, &sarg, &pc.b_off));
    for (size_t t0 = 0; t0 < T; t0 += rows) {
        size_t tc = vk_min(rows, T - t0);
        struct vk_arg args[3];
        args[1] = sarg;
        VK_TRY(awq_vk_window(d, vk_tbuf(a->x), a->x.off + 4 * t0 * C, a->x.off + 4 * (t0 + tc) * C, 4,
                             &args[0], &pc.a_off));
        args[2] = args[0];
        pc.o_off = pc.a_off;
        pc.n = (uint32_t)(tc * C);
        uint32_t spec[] = { d->tune.wg, a->divide ? 3u : 2u };
        VK_TRY(awq_vk_dispatch(d, VKS_ELTWISE, spec, 2, args, 3, &pc, sizeof pc,
                               stride_groups(d, tc * C), 1, 1));
    }
    return awq_vk_op_end(d);
}

int awq_vk_silu_mul(void *dev, const struct awq_silu_mul_args *a)
{
    return eltwise(dev, 0, a->n, a->gate, a->up, a->out);
}

int awq_vk_add(void *dev, const struct awq_add_args *a)
{
    return eltwise(dev, 1, a->n, a->a, a->b, a->out);
}

/* ---- rmsnorm -------------------------------------------------------------------------------------- */

int awq_vk_rmsnorm(void *dev, const struct awq_rmsnorm_args *a)
{
    struct vk_dev *d = dev;
    size_t T = (size_t)a->T, C = (size_t)a->C;
    size_t rows = vk_min(awq_vk_rows_fit(d, C * 4), d->max_groups[0]);
    if (rows == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "rmsnorm: rows of %zu bytes exceed the "
                           "storage-buffer range", C * 4);
    VK_TRY(awq_vk_op_begin(d));
    struct vk_arg args[3];
    struct {
        uint32_t C;
        float eps;
        uint32_t x_off, w_off, y_off;
    } pc = { (uint32_t)C, a->eps, 0, 0, 0 };
    VK_TRY(awq_vk_window(d, vk_tbuf(a->w), a->w.off, a->w.off + C * 4, 4, &args[1], &pc.w_off));
    for (size_t t0 = 0; t0 < T; t0 += rows) {
        size_t tc = vk_min(rows, T - t0);
        VK_TRY(awq_vk_window(d, vk_tbuf(a->x), a->x.off + 4 * t0 * C, a->x.off + 4 * (t0 + tc) * C, 4,
                             &args[0], &pc.x_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(a->y), a->y.off + 4 * t0 * C, a->y.off + 4 * (t0 + tc) * C, 4,
                             &args[2], &pc.y_off));
        uint32_t spec[] = { d->tune.wg };
        VK_TRY(awq_vk_dispatch(d, VKS_RMSNORM, spec, 1, args, 3, &pc, sizeof pc, (uint32_t)tc, 1, 1));
    }
    return awq_vk_op_end(d);
}

/* ---- rope ----------------------------------------------------------------------------------------- */

int awq_vk_rope(void *dev, const struct awq_rope_args *a)
{
    struct vk_dev *d = dev;
    size_t T = (size_t)a->T, row = (size_t)a->n_heads * (size_t)a->head_dim;
    size_t rows = awq_vk_rows_fit(d, row * 4);
    if (rows == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "rope: rows of %zu bytes exceed the "
                           "storage-buffer range", row * 4);
    VK_TRY(awq_vk_op_begin(d));
    struct vk_arg args[2];
    struct {
        uint32_t T, heads, half_dim, pos0, seq_len, t0;
        uint32_t x_off, f_off;
    } pc = { 0, (uint32_t)a->n_heads, (uint32_t)a->head_dim / 2, (uint32_t)a->pos0, (uint32_t)a->seq_len,
             0, 0, 0 };
    VK_TRY(awq_vk_window(d, vk_tbuf(a->inv_freq), a->inv_freq.off,
                         a->inv_freq.off + (size_t)a->head_dim / 2 * 4, 4, &args[1], &pc.f_off));
    for (size_t t0 = 0; t0 < T; t0 += rows) {
        size_t tc = vk_min(rows, T - t0);
        VK_TRY(awq_vk_window(d, vk_tbuf(a->x), a->x.off + 4 * t0 * row, a->x.off + 4 * (t0 + tc) * row, 4,
                             &args[0], &pc.x_off));
        pc.T = (uint32_t)tc;
        pc.t0 = (uint32_t)(t0 % (size_t)a->seq_len);
        uint32_t spec[] = { d->tune.wg };
        VK_TRY(awq_vk_dispatch(d, VKS_ROPE, spec, 1, args, 2, &pc, sizeof pc,
                               stride_groups(d, tc * row / 2), 1, 1));
    }
    return awq_vk_op_end(d);
}

/* ---- attention ------------------------------------------------------------------------------------- */

struct attn_push {
    uint32_t q_len, kv_len, heads, kv_heads, hd;
    float scale;
    uint32_t i0, nq, j0, nk;
    uint32_t S, split_base, partial, n_dsl;
    uint32_t h0, hn;
    uint32_t q_off, k_off, v_off, o_off, po_off, pml_off;
};

struct comb_push {
    uint32_t rows, heads, hd, n_splits, q_len, nq;
    uint32_t h0, hn;
    uint32_t po_off, pml_off, o_off;
};

/* Bytes of split partials (outputs, then max and sum) for `splits` x `rows` query rows. */
static size_t partial_bytes(size_t splits, size_t rows, size_t heads, size_t hd, size_t *pml_at)
{
    size_t po = splits * rows * heads * hd * 4;
    *pml_at = (po + 255) & ~(size_t)255;
    return *pml_at + splits * rows * heads * 2 * 4;
}

int awq_vk_attention(void *dev, const struct awq_attention_args *a)
{
    struct vk_dev *d = dev;
    const struct vk_tune *t = &d->tune;
    size_t H = (size_t)a->n_heads, KH = (size_t)a->n_kv_heads, hd = (size_t)a->head_dim;
    size_t ql = (size_t)a->q_len, kl = (size_t)a->kv_len, nseq = (size_t)a->n_seq;
    size_t qrow = H * hd * 4, krow = KH * hd * 4;
    /* short query blocks (decode) get a smaller tile: no idle rows */
    uint32_t bq = vk_min(t->attn_bq, pow2_ceil((uint32_t)ql)), bkv = t->attn_bkv;
    uint32_t dv = vk_min(t->attn_dv, pow2_ceil((uint32_t)hd)), dc = vk_min(t->attn_dc, pow2_ceil((uint32_t)hd));
    if (dv < 4)
        dv = 4;
    if (dc < 4)
        dc = 4;
    size_t n_dsl = vk_div_up(hd, dv);
    size_t fit_q = awq_vk_rows_fit(d, qrow), fit_k = awq_vk_rows_fit(d, krow);
    size_t pml_at, room = d->max_range - 1024;
    if (fit_q == 0 || fit_k == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "attention: rows of %zu or %zu bytes exceed "
                           "the storage-buffer range", qrow, krow);

    /* Whole sequences per dispatch when they fit one binding; else pieces of queries and keys,
     * whose per-piece results (one split each) are merged by attn_combine. The partials of a job
     * must fit one binding too: that bounds its query rows and heads. */
    int whole = kl <= fit_k && ql <= fit_q;
    size_t ns = whole ? vk_min(vk_min(fit_k / kl, fit_q / ql), vk_min(nseq, d->max_groups[2])) : 1;
    size_t nq_piece = whole ? ql : vk_min(ql, fit_q);
    size_t nk_piece = whole ? kl : (fit_k >= bkv ? fit_k / bkv * bkv : fit_k);
    size_t p_max = vk_div_up(kl, nk_piece), hn = H;
    size_t max_tiles = 0;   /* key tiles one workgroup may walk (lavapipe's loop budget) */
    if (d->loop_cap) {
        max_tiles = d->loop_cap / (5 * hd + 700);
        max_tiles = max_tiles ? max_tiles : 1;
    }
    size_t s_min_all = max_tiles ? vk_div_up(vk_div_up(vk_min(nk_piece, kl), bkv), max_tiles) : 1;
    if (p_max * s_min_all > 1) {
        size_t per_head = p_max * s_min_all * (hd + 2) * 4;
        hn = vk_min(H, (room - 512) / per_head);
        if (hn == 0)
            return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "attention: %zu keys of %zu bytes need "
                               "more partial results than one binding holds", kl, krow);
        nq_piece = vk_min(nq_piece, (room - 512) / (per_head * hn));
    }
    nq_piece = vk_min(nq_piece, (size_t)d->max_groups[0] * bq);

    VK_TRY(awq_vk_op_begin(d));
    uint32_t spec[] = { t->wg, bq, bkv, dc, dv };
    for (size_t s0 = 0; s0 < nseq; s0 += ns) {
        size_t nsc = vk_min(ns, nseq - s0);
        for (size_t i0 = 0; i0 < ql; i0 += nq_piece) {
            size_t nqi = vk_min(nq_piece, ql - i0);
            size_t jmax = kl - ql + i0 + nqi;            /* keys [0, jmax) are visible */
            size_t P = vk_div_up(jmax, nk_piece);
            size_t qblocks = vk_div_up(nqi, bq);
            size_t rows = nsc * nqi;
            struct vk_arg args[5];
            struct attn_push pc;
            memset(&pc, 0, sizeof pc);
            size_t qlo = (s0 * ql + i0) * qrow, qhi = ((s0 + nsc - 1) * ql + i0 + nqi) * qrow;
            VK_TRY(awq_vk_window(d, vk_tbuf(a->q), a->q.off + qlo, a->q.off + qhi, 4, &args[0], &pc.q_off));
            VK_TRY(awq_vk_window(d, vk_tbuf(a->out), a->out.off + qlo, a->out.off + qhi, 4, &args[3], &pc.o_off));
            for (size_t h0 = 0; h0 < H; h0 += hn) {
                size_t hc = vk_min(hn, H - h0);
                /* few workgroups (decode, short batches): split the keys for parallelism */
                size_t wgs = qblocks * hc * n_dsl * nsc;
                size_t tiles = vk_div_up(vk_min(nk_piece, jmax), bkv);
                size_t S = 1, S_min = 1;
                if (max_tiles)   /* lavapipe: about 5 hd + 700 loop iterations per key tile */
                    S_min = vk_div_up(tiles, max_tiles);
                if (wgs < t->attn_target_wgs && tiles >= 4)
                    S = vk_min(vk_min(vk_div_up(t->attn_target_wgs, wgs), tiles / 2), 64);
                S = S < S_min ? S_min : S;
                while (S > S_min && partial_bytes(P * S, rows, hc, hd, &pml_at) > room)
                    S = S / 2 < S_min ? S_min : S / 2;
                if (P * S > 1 && partial_bytes(P * S, rows, hc, hd, &pml_at) > room)
                    return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "attention: the partial results of "
                                       "%zu key splits exceed one binding", P * S);
                size_t splits = P * S;
                int partial = splits > 1;
                if (partial) {
                    struct vk_buf *scr;
                    size_t bytes = partial_bytes(splits, rows, hc, hd, &pml_at);
                    VK_TRY(awq_vk_scratch(d, bytes, &scr));
                    VK_TRY(awq_vk_window(d, scr, 0, bytes, 4, &args[4], &pc.po_off));
                    pc.pml_off = pc.po_off + (uint32_t)(pml_at / 4);
                } else {
                    args[4] = (struct vk_arg){ d->dummy, 0, d->dummy->alloc };
                }
                pc.q_len = (uint32_t)ql;
                pc.kv_len = (uint32_t)kl;
                pc.heads = (uint32_t)H;
                pc.kv_heads = (uint32_t)KH;
                pc.hd = (uint32_t)hd;
                pc.scale = a->scale;
                pc.i0 = (uint32_t)i0;
                pc.nq = (uint32_t)nqi;
                pc.S = (uint32_t)S;
                pc.partial = (uint32_t)partial;
                pc.n_dsl = (uint32_t)n_dsl;
                pc.h0 = (uint32_t)h0;
                pc.hn = (uint32_t)hc;
                for (size_t p = 0; p < P; p++) {
                    size_t j0 = p * nk_piece, nk = vk_min(nk_piece, jmax - j0);
                    size_t klo = (s0 * kl + j0) * krow, khi = ((s0 + nsc - 1) * kl + j0 + nk) * krow;
                    VK_TRY(awq_vk_window(d, vk_tbuf(a->k), a->k.off + klo, a->k.off + khi, 4, &args[1], &pc.k_off));
                    VK_TRY(awq_vk_window(d, vk_tbuf(a->v), a->v.off + klo, a->v.off + khi, 4, &args[2], &pc.v_off));
                    pc.j0 = (uint32_t)j0;
                    pc.nk = (uint32_t)nk;
                    pc.split_base = (uint32_t)(p * S);
                    VK_TRY(awq_vk_dispatch(d, VKS_ATTENTION, spec, 5, args, 5, &pc, sizeof pc,
                                           (uint32_t)qblocks, (uint32_t)(hc * S * n_dsl), (uint32_t)nsc));
                }
                if (partial) {
                    VK_TRY(awq_vk_barrier(d));
                    struct vk_arg cargs[2] = { args[4], args[3] };
                    struct comb_push cp = { (uint32_t)rows, (uint32_t)H, (uint32_t)hd, (uint32_t)splits,
                                            (uint32_t)ql, (uint32_t)nqi, (uint32_t)h0, (uint32_t)hc,
                                            pc.po_off, pc.pml_off, pc.o_off };
                    uint32_t cspec[] = { t->wg };
                    VK_TRY(awq_vk_dispatch(d, VKS_ATTN_COMBINE, cspec, 1, cargs, 2, &cp, sizeof cp,
                                           stride_groups(d, rows * hc * hd), 1, 1));
                    VK_TRY(awq_vk_barrier(d));   /* the scratch is reused by the next job */
                }
            }
        }
    }
    return awq_vk_op_end(d);
}

/* ---- embedding ------------------------------------------------------------------------------------ */

int awq_vk_embed(void *dev, const struct awq_embed_args *a)
{
    struct vk_dev *d = dev;
    size_t T = (size_t)a->T, C = (size_t)a->C, V = (size_t)a->vocab;
    size_t tes = awq_dtype_size(a->table_type);
    size_t rows_out = awq_vk_rows_fit(d, C * 4), rows_tab = awq_vk_rows_fit(d, C * tes);
    if (rows_out == 0 || rows_tab == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "embed: rows of %zu bytes exceed the "
                           "storage-buffer range", C * 4);
    VK_TRY(awq_vk_op_begin(d));
    struct {
        uint32_t T, C, v0, nv, vocab, first;
        uint32_t tab_off, i_off, o_off;
    } pc = { 0, (uint32_t)C, 0, 0, (uint32_t)V, 0, 0, 0, 0 };
    uint32_t spec[] = { d->tune.wg, a->table_type == AWQ_DTYPE_F16 };
    for (size_t t0 = 0; t0 < T; t0 += rows_out) {
        size_t tc = vk_min(rows_out, T - t0);
        struct vk_arg args[3];
        VK_TRY(awq_vk_window(d, vk_tbuf(a->ids), a->ids.off + 4 * t0, a->ids.off + 4 * (t0 + tc), 4,
                             &args[1], &pc.i_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(a->out), a->out.off + 4 * t0 * C, a->out.off + 4 * (t0 + tc) * C, 4,
                             &args[2], &pc.o_off));
        pc.T = (uint32_t)tc;
        /* one dispatch per window of table rows; each writes the tokens whose id falls inside it */
        for (size_t v0 = 0; v0 < V; v0 += rows_tab) {
            size_t nv = vk_min(rows_tab, V - v0);
            VK_TRY(awq_vk_window(d, vk_tbuf(a->table), a->table.off + v0 * C * tes,
                                 a->table.off + (v0 + nv) * C * tes, tes, &args[0], &pc.tab_off));
            pc.v0 = (uint32_t)v0;
            pc.nv = (uint32_t)nv;
            pc.first = v0 == 0;
            VK_TRY(awq_vk_dispatch(d, VKS_EMBED, spec, 2, args, 3, &pc, sizeof pc,
                                   stride_groups(d, tc * C), 1, 1));
        }
    }
    return awq_vk_op_end(d);
}

/* ---- cross-entropy ------------------------------------------------------------------------------- */

int awq_vk_cross_entropy(void *dev, const struct awq_cross_entropy_args *a)
{
    struct vk_dev *d = dev;
    size_t T = (size_t)a->T, V = (size_t)a->V;
    size_t rows = vk_min(awq_vk_rows_fit(d, V * 4), d->max_groups[0]);
    if (rows == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "cross_entropy: rows of %zu bytes exceed the "
                           "storage-buffer range", V * 4);
    VK_TRY(awq_vk_op_begin(d));
    struct {
        uint32_t V, l_off, t_off, n_off;
    } pc = { (uint32_t)V, 0, 0, 0 };
    uint32_t spec[] = { d->tune.wg };
    for (size_t t0 = 0; t0 < T; t0 += rows) {
        size_t tc = vk_min(rows, T - t0);
        struct vk_arg args[3];
        VK_TRY(awq_vk_window(d, vk_tbuf(a->logits), a->logits.off + 4 * t0 * V,
                             a->logits.off + 4 * (t0 + tc) * V, 4, &args[0], &pc.l_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(a->targets), a->targets.off + 4 * t0, a->targets.off + 4 * (t0 + tc),
                             4, &args[1], &pc.t_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(a->nll), a->nll.off + 4 * t0, a->nll.off + 4 * (t0 + tc), 4,
                             &args[2], &pc.n_off));
        VK_TRY(awq_vk_dispatch(d, VKS_CROSS_ENTROPY, spec, 1, args, 3, &pc, sizeof pc, (uint32_t)tc, 1, 1));
    }
    return awq_vk_op_end(d);
}
