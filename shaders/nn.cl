/* Ops of the Llama block besides the matrix products and attention: RMSNorm, RoPE, SiLU-gate,
 * residual add, embedding gather, cross-entropy. RED_WG (a power of two) is the work-group size of
 * the row reductions; the host rounds 1-D global sizes up and the kernels guard. */

/* One work-group per row: y = x / sqrt(mean(x²) + eps) * w. y may equal x: every item reads only
 * the elements it later writes, after the barrier of the reduction. */
kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1))) void rmsnorm(
    global const float *x, ulong xo, global const float *w, ulong wo, global float *y, ulong yo,
    int C, float eps)
{
    local acc_t red[RED_WG];
    const int lid = get_local_id(0);
    const ulong row = (ulong)get_group_id(0) * (ulong)C;
    x += xo + row;
    y += yo + row;
    w += wo;
    acc_t ss = 0;
    for (int c = lid; c < C; c += RED_WG) {
        acc_t v = x[c];
        ss += v * v;
    }
    ss = wg_sum(red, ss, lid, RED_WG);
    float r = (float)(1.0 / sqrt(ss / (acc_t)C + (acc_t)eps));
    for (int c = lid; c < C; c += RED_WG)
        y[c] = x[c] * r * w[c];
}

/* In-place rotate-half RoPE; item (i, row) rotates the pair (i, i + hd/2) of row = t*n_heads + h. */
kernel void rope(global float *x, ulong xo, global const float *inv_freq, ulong fo, int n_rows,
                 int n_heads, int hd, int pos0, int seq_len)
{
    const int i = get_global_id(0), row = get_global_id(1), half_dim = hd / 2;
    if (i >= half_dim || row >= n_rows)
        return;
    const int t = row / n_heads;
    float pos = (float)(pos0 + t % seq_len);
    float ang = pos * inv_freq[fo + i];
    float c = cos(ang), s = sin(ang);
    global float *v = x + xo + (ulong)row * (ulong)hd;
    float x0 = v[i], x1 = v[i + half_dim];
    v[i] = x0 * c - x1 * s;
    v[i + half_dim] = x1 * c + x0 * s;
}

/* out = silu(gate) * up, silu(g) = g / (1 + exp(-g)); out may alias either input. */
kernel void silu_mul(global const float *g, ulong go, global const float *u, ulong uo,
                     global float *out, ulong oo, ulong n)
{
    ulong i = get_global_id(0);
    if (i >= n)
        return;
    float gv = g[go + i];
    out[oo + i] = gv / (1.0f + exp(-gv)) * u[uo + i];
}

kernel void add(global const float *a, ulong ao, global const float *b, ulong bo,
                global float *out, ulong oo, ulong n)
{
    ulong i = get_global_id(0);
    if (i >= n)
        return;
    out[oo + i] = a[ao + i] + b[bo + i];
}

/* out[t, c] = table[ids[t], c] as fp32; an id outside [0, vocab) gives zeros. */
kernel void embed(global const uchar *table, ulong to, int t_f16, global const int *ids, ulong io,
                  global float *out, ulong oo, int T, int C, int vocab)
{
    const int c = get_global_id(0), t = get_global_id(1);
    if (c >= C || t >= T)
        return;
    int id = ids[io + t];
    float v = 0.0f;
    if (id >= 0 && id < vocab)
        v = ld1(table, to + (ulong)id * (ulong)C + (ulong)c, t_f16);
    out[oo + (ulong)t * (ulong)C + (ulong)c] = v;
}

/* One work-group per row: nll = logsumexp(logits) - logits[target]. */
kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1))) void cross_entropy(
    global const float *logits, ulong lo, global const int *targets, ulong to, global float *nll,
    ulong no, int V)
{
    local acc_t red[RED_WG];
    local float redm[RED_WG];
    const int lid = get_local_id(0), t = get_group_id(0);
    global const float *l = logits + lo + (ulong)t * (ulong)V;
    float mx = -INFINITY;
    for (int v = lid; v < V; v += RED_WG)
        mx = fmax(mx, l[v]);
    mx = wg_max(redm, mx, lid, RED_WG);
    acc_t s = 0;
    for (int v = lid; v < V; v += RED_WG)
        s += exp((acc_t)(l[v] - mx));
    s = wg_sum(red, s, lid, RED_WG);
    if (lid == 0) {
        int target = targets[to + t];
        float lt = target >= 0 && target < V ? l[target] : NAN;
        nll[no + t] = (float)((acc_t)mx + log(s) - (acc_t)lt);
    }
}
