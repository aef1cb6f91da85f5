/* Ops of calibration and search: activation statistics, pseudo-quantization, the clip-search error
 * table and the squared-error reduction. Reductions run in a fixed order (partials per chunk, then
 * one combining pass), so results are deterministic for a given device. */
#include "config.h"

#include <string.h>

#include "vk_internal.h"

/* ---- act_stats ---------------------------------------------------------------------------------- */

int awq_vk_act_stats(void *dev, const struct awq_act_stats_args *a)
{
    struct vk_dev *d = dev;
    size_t T = (size_t)a->T, C = (size_t)a->C, xes = awq_dtype_size(a->x_type);
    /* 128 channels per workgroup: fp16 rows are then read 256 bytes at a time */
    const size_t CB = d->tune.wg < 128 ? d->tune.wg : 128;
    size_t room = (d->max_range - 1024) / 12;   /* (chunk, channel) partial triples per binding */
    size_t rows_x = awq_vk_rows_fit(d, C * xes);
    if (rows_x == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "act_stats: rows of %zu bytes exceed the "
                           "storage-buffer range", C * xes);
    /* partial sums over chunks of TR rows (a fixed order: the result does not depend on how the
     * rows are spread over dispatches), for as many channels at a time as their partials fit */
    size_t TR = vk_min(256, rows_x);
    if (vk_div_up(T, TR) > room)
        TR = vk_div_up(T, room);
    if (TR > rows_x)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "act_stats: %zu rows of %zu channels need "
                           "more partial sums than one binding holds", T, C);
    size_t n_part = vk_div_up(T, TR);
    size_t cc = vk_min(C, room / n_part);
    if (cc > CB)
        cc = cc / CB * CB;   /* whole workgroups of channels per chunk */
    size_t step = vk_min(rows_x / TR * TR, (size_t)d->max_groups[1] * TR);   /* rows per dispatch */

    VK_TRY(awq_vk_op_begin(d));
    struct vk_buf *scr;
    VK_TRY(awq_vk_scratch(d, n_part * 12 * cc, &scr));
    struct vk_arg args[5];
    struct {
        uint32_t T, C, TR, p_base, n_part, flags;
        uint32_t c0, Cc;
        uint32_t x_off, p_off, sa_off, ma_off, sq_off;
    } pc;
    memset(&pc, 0, sizeof pc);
    pc.C = (uint32_t)C;
    pc.TR = (uint32_t)TR;
    pc.n_part = (uint32_t)n_part;
    pc.flags = (a->sum_abs.buf ? 1u : 0u) | (a->max_abs.buf ? 2u : 0u) | (a->sum_sq.buf ? 4u : 0u);
    VK_TRY(awq_vk_window_opt(d, a->sum_abs, C * 4, 4, &args[2], &pc.sa_off));
    VK_TRY(awq_vk_window_opt(d, a->max_abs, C * 4, 4, &args[3], &pc.ma_off));
    VK_TRY(awq_vk_window_opt(d, a->sum_sq, C * 4, 4, &args[4], &pc.sq_off));
    uint32_t xf16 = a->x_type == AWQ_DTYPE_F16;
    for (size_t c0 = 0; c0 < C; c0 += cc) {
        size_t ccn = vk_min(cc, C - c0);
        pc.c0 = (uint32_t)c0;
        pc.Cc = (uint32_t)ccn;
        VK_TRY(awq_vk_window(d, scr, 0, n_part * 12 * ccn, 4, &args[1], &pc.p_off));
        if (c0 > 0)
            VK_TRY(awq_vk_barrier(d));   /* the partials of the previous chunk have been read */
        for (size_t t0 = 0; t0 < T; t0 += step) {
            size_t tc = vk_min(step, T - t0);
            VK_TRY(awq_vk_window(d, vk_tbuf(a->x), a->x.off + t0 * C * xes, a->x.off + (t0 + tc) * C * xes,
                                 xes, &args[0], &pc.x_off));
            pc.T = (uint32_t)tc;
            pc.p_base = (uint32_t)(t0 / TR);
            uint32_t spec[] = { d->tune.wg, 0, xf16, (uint32_t)CB };
            VK_TRY(awq_vk_dispatch(d, VKS_ACT_STATS, spec, 4, args, 5, &pc, sizeof pc,
                                   (uint32_t)vk_div_up(ccn, CB), (uint32_t)vk_div_up(tc, TR), 1));
        }
        VK_TRY(awq_vk_barrier(d));
        uint32_t spec[] = { d->tune.wg, 1, xf16, (uint32_t)CB };
        VK_TRY(awq_vk_dispatch(d, VKS_ACT_STATS, spec, 4, args, 5, &pc, sizeof pc,
                               (uint32_t)vk_div_up(ccn, d->tune.wg), 1, 1));
    }
    return awq_vk_op_end(d);
}

/* ---- pseudo_quant -------------------------------------------------------------------------------- */

int awq_vk_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a)
{
    struct vk_dev *d = dev;
    size_t N = (size_t)a->N, K = (size_t)a->K, G = (size_t)a->G, ng = K / G;
    size_t rows = awq_vk_rows_fit(d, K * 4);
    if (rows == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "pseudo_quant: rows of %zu bytes exceed the "
                           "storage-buffer range", K * 4);
    VK_TRY(awq_vk_op_begin(d));
    struct vk_arg args[3];
    struct {
        uint32_t K, G, n_groups, has_s;
        uint32_t w_off, s_off, o_off;
    } pc = { (uint32_t)K, (uint32_t)G, 0, a->in_scale.buf != NULL, 0, 0, 0 };
    VK_TRY(awq_vk_window_opt(d, a->in_scale, K * 4, 4, &args[1], &pc.s_off));
    uint32_t spec[] = { d->tune.wg };
    for (size_t n0 = 0; n0 < N; n0 += rows) {
        size_t nc = vk_min(rows, N - n0);
        VK_TRY(awq_vk_window(d, vk_tbuf(a->w), a->w.off + n0 * K * 4, a->w.off + (n0 + nc) * K * 4, 4,
                             &args[0], &pc.w_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(a->out), a->out.off + n0 * K * 4, a->out.off + (n0 + nc) * K * 4, 4,
                             &args[2], &pc.o_off));
        size_t groups = nc * ng, wgs = vk_div_up(groups, d->tune.wg);
        uint32_t gx = (uint32_t)vk_min(wgs, d->max_groups[0]);
        uint32_t gy = (uint32_t)vk_div_up(wgs, gx);
        pc.n_groups = (uint32_t)groups;
        VK_TRY(awq_vk_dispatch(d, VKS_PSEUDO_QUANT, spec, 1, args, 3, &pc, sizeof pc, gx, gy, 1));
    }
    return awq_vk_op_end(d);
}

/* ---- clip_search ------------------------------------------------------------------------------------ */

#define CLIP_NS 16

int awq_vk_clip_search(void *dev, const struct awq_clip_search_args *a)
{
    struct vk_dev *d = dev;
    size_t N = (size_t)a->N, K = (size_t)a->K, G = (size_t)a->G, T = (size_t)a->T, ng = K / G;
    size_t ns = (size_t)a->n_shrink;
    size_t rows_w = awq_vk_rows_fit(d, K * 4), rows_x = awq_vk_rows_fit(d, K * 4);
    if (d->loop_cap)   /* each token tile costs about 2 G + 40 loop iterations (see loop_cap) */
        rows_x = vk_min(rows_x, vk_min(16 * (d->loop_cap / (2 * G + 40)), 1024));
    size_t fit_e = awq_vk_rows_fit(d, ng * 4);   /* (shrink, channel) rows of the error table */
    if (rows_w == 0 || fit_e == 0)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "clip_search: rows of %zu bytes exceed the "
                           "storage-buffer range", K * 4);
    /* shrink factors per dispatch: at most 16, and their error rows must fit one binding */
    size_t nsc_max = CLIP_NS;
    while (nsc_max > 1 && (nsc_max - 1) * N + 1 > fit_e)
        nsc_max /= 2;
    size_t nc_max = vk_min(rows_w, d->max_groups[1]);
    if (nsc_max == 1)
        nc_max = vk_min(nc_max, fit_e);
    else
        nc_max = vk_min(nc_max, N);

    VK_TRY(awq_vk_op_begin(d));
    struct vk_arg args[3];
    struct {
        uint32_t N, K, G, T, ns, accumulate;
        uint32_t w_off, x_off, e_off;
        float shrink[CLIP_NS];
    } pc;
    memset(&pc, 0, sizeof pc);
    pc.N = (uint32_t)N;
    pc.K = (uint32_t)K;
    pc.G = (uint32_t)G;
    uint32_t spec[] = { d->tune.wg, 128, 16 };
    for (size_t i0 = 0; i0 < ns; i0 += nsc_max) {
        size_t nsc = vk_min(nsc_max, ns - i0);
        pc.ns = (uint32_t)nsc;
        for (size_t s = 0; s < nsc; s++)
            pc.shrink[s] = a->shrink[i0 + s];
        for (size_t n0 = 0; n0 < N; n0 += nc_max) {
            size_t nc = vk_min(nc_max, N - n0);
            size_t elo = ((i0 * N) + n0) * ng * 4, ehi = (((i0 + nsc - 1) * N) + n0 + nc) * ng * 4;
            VK_TRY(awq_vk_window(d, vk_tbuf(a->err), a->err.off + elo, a->err.off + ehi, 4, &args[2], &pc.e_off));
            VK_TRY(awq_vk_window(d, vk_tbuf(a->w), a->w.off + n0 * K * 4, a->w.off + (n0 + nc) * K * 4, 4,
                                 &args[0], &pc.w_off));
            for (size_t t0 = 0; t0 < T; t0 += rows_x) {
                size_t tc = vk_min(rows_x, T - t0);
                VK_TRY(awq_vk_window(d, vk_tbuf(a->x), a->x.off + t0 * K * 4, a->x.off + (t0 + tc) * K * 4, 4,
                                     &args[1], &pc.x_off));
                pc.T = (uint32_t)tc;
                pc.accumulate = t0 > 0;
                if (t0 > 0)   /* this dispatch adds to what the previous one wrote */
                    VK_TRY(awq_vk_barrier(d));
                VK_TRY(awq_vk_dispatch(d, VKS_CLIP_SEARCH, spec, 3, args, 3, &pc, sizeof pc,
                                       (uint32_t)ng, (uint32_t)nc, 1));
            }
        }
    }
    return awq_vk_op_end(d);
}

/* ---- sq_err ---------------------------------------------------------------------------------------- */

int awq_vk_sq_err(void *dev, const struct awq_sq_err_args *a)
{
    struct vk_dev *d = dev;
    size_t n = a->n, E = (size_t)d->tune.wg * 16;
    size_t step = awq_vk_rows_fit(d, 4) / E * E;
    step = vk_min(step, (size_t)d->max_groups[0] * E);
    size_t n_part = vk_div_up(n, E);
    if (step == 0 || n_part * 4 > d->max_range - 1024)
        return awq_err_set(d->err, AWQ_ERR_UNSUPPORTED, "sq_err: %zu values exceed what one reduction "
                           "holds", n);
    VK_TRY(awq_vk_op_begin(d));
    struct vk_buf *scr;
    VK_TRY(awq_vk_scratch(d, n_part * 4, &scr));
    struct vk_arg args[4];
    struct {
        uint32_t n, p_base, n_part;
        uint32_t a_off, b_off, p_off, o_off;
    } pc = { 0, 0, (uint32_t)n_part, 0, 0, 0, 0 };
    VK_TRY(awq_vk_window(d, scr, 0, n_part * 4, 4, &args[2], &pc.p_off));
    VK_TRY(awq_vk_window(d, vk_tbuf(a->out), a->out.off, a->out.off + 4, 4, &args[3], &pc.o_off));
    uint32_t spec0[] = { d->tune.wg, 0 };
    for (size_t i0 = 0; i0 < n; i0 += step) {
        size_t c = vk_min(step, n - i0);
        VK_TRY(awq_vk_window(d, vk_tbuf(a->a), a->a.off + 4 * i0, a->a.off + 4 * (i0 + c), 4, &args[0], &pc.a_off));
        VK_TRY(awq_vk_window(d, vk_tbuf(a->b), a->b.off + 4 * i0, a->b.off + 4 * (i0 + c), 4, &args[1], &pc.b_off));
        pc.n = (uint32_t)c;
        pc.p_base = (uint32_t)(i0 / E);
        VK_TRY(awq_vk_dispatch(d, VKS_SQ_ERR, spec0, 2, args, 4, &pc, sizeof pc, (uint32_t)vk_div_up(c, E), 1, 1));
    }
    VK_TRY(awq_vk_barrier(d));
    uint32_t spec1[] = { d->tune.wg, 1 };
    VK_TRY(awq_vk_dispatch(d, VKS_SQ_ERR, spec1, 2, args, 4, &pc, sizeof pc, 1, 1, 1));
    return awq_vk_op_end(d);
}
