/* Causal attention with grouped KV heads, tiled over keys with an online softmax (flash-attention
 * style): no score matrix larger than one BQ x BKV tile ever exists.
 *
 * A work-group serves one sequence and one KV head, and a block of BQ "rows": row = query * HG +
 * head-in-group (HG = n_heads / n_kv_heads), so the query heads that share a KV head share every
 * K/V tile it loads (decode with grouped KV fills HG rows of a block instead of one).
 *
 * Compile-time: HD (head_dim), BQ (rows per block), BKV (keys per tile), AWG (work-group size).
 * Local memory: Q block [BQ][HD], one K-or-V tile [BKV][HD+1] (padded against bank conflicts),
 * probabilities [BQ][BKV+1], running max / sum / rescale factor per row. Each item owns NR
 * outputs (row, d) of the block in registers.
 *
 * Long KV caches with few work-groups (decode) are split: work-group (block, split) covers keys
 * [split * split_len, (split + 1) * split_len) and leaves its unnormalised outputs with its row
 * maxima and sums in `part`; attention_combine merges the splits. */

#define NR ((BQ * HD + AWG - 1) / AWG)
#define LDK (HD + 1)
#define LDS (BKV + 1)

kernel __attribute__((reqd_work_group_size(AWG, 1, 1))) void attention(
    global const float *q, ulong qo, global const float *k, ulong ko, global const float *v,
    ulong vo, global float *out, ulong oo, int q_len, int kv_len, int n_heads, int n_kv_heads,
    float scale, int split_len, int n_split, global float *part)
{
    local float Qs[BQ * HD];
    local float KV[BKV * LDK];
    local float S[BQ * LDS];
    local float m_s[BQ], l_s[BQ], a_s[BQ];

    const int lid = get_local_id(0);
    const int kvh = get_group_id(1), seq = get_group_id(2);
    const int HG = n_heads / n_kv_heads;
    const int rows = q_len * HG;
    const int rb = get_group_id(0) / n_split, sp = get_group_id(0) % n_split;
    const int r0 = rb * BQ;
    const ulong qrow = (ulong)n_heads * HD, kvrow = (ulong)n_kv_heads * HD;
    q += qo + (ulong)seq * (ulong)q_len * qrow;
    out += oo + (ulong)seq * (ulong)q_len * qrow;
    k += ko + (ulong)seq * (ulong)kv_len * kvrow + (ulong)kvh * HD;
    v += vo + (ulong)seq * (ulong)kv_len * kvrow + (ulong)kvh * HD;

    for (int idx = lid; idx < BQ * HD; idx += AWG) {
        int r = idx / HD, d = idx % HD, row = r0 + r;
        float val = 0.0f;
        if (row < rows)
            val = q[(ulong)(row / HG) * qrow + (ulong)(kvh * HG + row % HG) * HD + d];
        Qs[idx] = val;
    }
    if (lid < BQ) {
        m_s[lid] = -INFINITY;
        l_s[lid] = 0.0f;
    }
    float o[NR];
#pragma unroll
    for (int i = 0; i < NR; i++)
        o[i] = 0.0f;

    /* keys of this split, up to the causal limit of the block's last query */
    const int last_row = min(r0 + BQ, rows) - 1;
    const int j_lo = sp * split_len, j_hi = min(kv_len, j_lo + split_len);
    const int j_end = min(j_hi, kv_len - q_len + last_row / HG + 1);

    for (int j0 = j_lo; j0 < j_end; j0 += BKV) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = lid; idx < BKV * HD; idx += AWG) {
            int j = idx / HD, d = idx % HD;
            KV[j * LDK + d] = j0 + j < j_hi ? k[(ulong)(j0 + j) * kvrow + d] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = lid; idx < BQ * BKV; idx += AWG) {
            int r = idx / BKV, j = idx % BKV;
            int lim = kv_len - q_len + (r0 + r) / HG;       /* last key this row may see */
            local const float *qr = Qs + r * HD, *kr = KV + j * LDK;
            float s = 0.0f;
            for (int d = 0; d < HD; d++)
                s += qr[d] * kr[d];
            S[r * LDS + j] = j0 + j <= lim && j0 + j < j_hi ? s * scale : -INFINITY;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* V tile into the K tile's place while the row owners update the softmax state */
        for (int idx = lid; idx < BKV * HD; idx += AWG) {
            int j = idx / HD, d = idx % HD;
            KV[j * LDK + d] = j0 + j < j_hi ? v[(ulong)(j0 + j) * kvrow + d] : 0.0f;
        }
        if (lid < BQ) {
            local float *sr = S + lid * LDS;
            float m_old = m_s[lid], mx = m_old;
            for (int j = 0; j < BKV; j++)
                mx = fmax(mx, sr[j]);
            /* without splits the first tile holds key 0, which every row may see; a split may
             * hold no key a row may see yet, and then nothing changes */
            float alpha = mx == -INFINITY ? 1.0f : exp(m_old - mx), sum = 0.0f;
            for (int j = 0; j < BKV; j++) {
                float p = sr[j] == -INFINITY ? 0.0f : exp(sr[j] - mx);
                sr[j] = p;
                sum += p;
            }
            l_s[lid] = l_s[lid] * alpha + sum;
            m_s[lid] = mx;
            a_s[lid] = alpha;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
        for (int i = 0; i < NR; i++) {
            int idx = lid + i * AWG;
            if (idx < BQ * HD) {
                int r = idx / HD, d = idx % HD;
                local const float *pr = S + r * LDS;
                float acc = o[i] * a_s[r];
                for (int j = 0; j < BKV; j++)
                    acc += pr[j] * KV[j * LDK + d];
                o[i] = acc;
            }
        }
    }

    if (n_split > 1) {
        const ulong wgi = ((ulong)(seq * n_kv_heads + kvh) * (get_num_groups(0) / n_split) + rb) *
                          (ulong)n_split + (ulong)sp;
        global float *pp = part + wgi * (BQ * (HD + 2));
#pragma unroll
        for (int i = 0; i < NR; i++) {
            int idx = lid + i * AWG;
            if (idx < BQ * HD)
                pp[(idx / HD) * (HD + 2) + idx % HD] = o[i];
        }
        if (lid < BQ) {     /* the items that last wrote m_s[lid] and l_s[lid] */
            pp[lid * (HD + 2) + HD] = m_s[lid];
            pp[lid * (HD + 2) + HD + 1] = l_s[lid];
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < NR; i++) {
        int idx = lid + i * AWG;
        if (idx < BQ * HD) {
            int r = idx / HD, d = idx % HD, row = r0 + r;
            if (row < rows)
                out[(ulong)(row / HG) * qrow + (ulong)(kvh * HG + row % HG) * HD + d] = o[i] / l_s[r];
        }
    }
}

/* Merges the n_split partial results of every row: item (d, row, seq * n_kv_heads + kvh). */
kernel void attention_combine(global const float *part, global float *out, ulong oo, int q_len,
                              int n_heads, int n_kv_heads, int n_split)
{
    const int d = get_global_id(0), row = get_global_id(1), z = get_global_id(2);
    const int HG = n_heads / n_kv_heads, rows = q_len * HG;
    if (d >= HD || row >= rows)
        return;
    const int seq = z / n_kv_heads, kvh = z % n_kv_heads, n_rb = (rows + BQ - 1) / BQ;
    const ulong stride = BQ * (HD + 2);
    global const float *pp = part + ((ulong)z * (ulong)n_rb + (ulong)(row / BQ)) * (ulong)n_split *
                             stride + (ulong)(row % BQ) * (HD + 2);
    float mx = -INFINITY;
    for (int s = 0; s < n_split; s++)
        mx = fmax(mx, pp[s * stride + HD]);
    float l = 0.0f, o = 0.0f;
    for (int s = 0; s < n_split; s++) {
        float m = pp[s * stride + HD];
        if (m == -INFINITY)
            continue;
        float w = exp(m - mx);
        l += pp[s * stride + HD + 1] * w;
        o += pp[s * stride + d] * w;
    }
    const ulong qrow = (ulong)n_heads * HD;
    out[oo + ((ulong)seq * (ulong)q_len + (ulong)(row / HG)) * qrow + (ulong)(kvh * HG + row % HG) * HD +
        d] = o / l;
}
