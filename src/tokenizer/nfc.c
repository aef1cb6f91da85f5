/* Unicode NFC (the normalizer of Qwen2-style tokenizers), per UAX #15: full canonical
 * decomposition, canonical ordering of combining marks, canonical composition. Text below
 * U+0300 is always in NFC, so the common case is a copy. Bytes that are not valid UTF-8 pass
 * through unchanged and block composition like any starter. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"
#include "tokenizer/nfc_tables.h"

#define S_BASE 0xAC00u
#define L_BASE 0x1100u
#define V_BASE 0x1161u
#define T_BASE 0x11A7u
#define L_COUNT 19u
#define V_COUNT 21u
#define T_COUNT 28u
#define N_COUNT (V_COUNT * T_COUNT)
#define S_COUNT (L_COUNT * N_COUNT)
#define RAW_BYTE 0x110000u          /* RAW_BYTE + b stands for an invalid byte b */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static unsigned ccc_of(uint32_t cp)
{
    size_t lo = 0, hi = N_OF(nfc_ccc);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_ccc[mid].lo)
            hi = mid;
        else if (cp > nfc_ccc[mid].hi)
            lo = mid + 1;
        else
            return nfc_ccc[mid].ccc;
    }
    return 0;
}

static const struct nfc_decomp *decomp_of(uint32_t cp)
{
    size_t lo = 0, hi = N_OF(nfc_decomp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_decomp[mid].cp)
            hi = mid;
        else if (cp > nfc_decomp[mid].cp)
            lo = mid + 1;
        else
            return &nfc_decomp[mid];
    }
    return NULL;
}

/* Primary composite of a + b, or 0. */
static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = N_OF(nfc_comp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct nfc_comp *c = &nfc_comp[mid];
        if (a < c->a || (a == c->a && b < c->b))
            hi = mid;
        else if (a > c->a || b > c->b)
            lo = mid + 1;
        else
            return c->c;
    }
    return 0;
}

struct cps {
    uint32_t *v;
    size_t n, cap;
};

static int cps_push(struct cps *a, uint32_t cp)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        uint32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return AWQ_ERR_OUT_OF_MEMORY;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = cp;
    return 0;
}

int tok_nfc(const char *s, size_t len, struct tok_buf *out)
{
    /* fast path: ASCII and U+0080..U+02FF (lead bytes C2..CB) */
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80)
            i++;
        else if (c >= 0xC2 && c <= 0xCB && i + 1 < len && ((unsigned char)s[i + 1] & 0xC0) == 0x80)
            i += 2;
        else
            break;
    }
    if (i == len)
        return tok_buf_put(out, s, len);

    struct cps d = { 0 };
    int rc = AWQ_ERR_OUT_OF_MEMORY;
    /* 1. decompose */
    for (i = 0; i < len;) {
        uint32_t cp;
        size_t k = tok_utf8_valid((const unsigned char *)s + i, len - i, &cp);
        if (!k) {
            cp = RAW_BYTE + (unsigned char)s[i];
            k = 1;
        }
        i += k;
        if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
            uint32_t si = cp - S_BASE;
            if (cps_push(&d, L_BASE + si / N_COUNT) || cps_push(&d, V_BASE + (si % N_COUNT) / T_COUNT))
                goto done;
            if (si % T_COUNT && cps_push(&d, T_BASE + si % T_COUNT))
                goto done;
            continue;
        }
        const struct nfc_decomp *dc = cp < 0xC0 || cp >= RAW_BYTE ? NULL : decomp_of(cp);
        if (!dc) {
            if (cps_push(&d, cp))
                goto done;
            continue;
        }
        for (unsigned j = 0; j < dc->len; j++)
            if (cps_push(&d, nfc_decomp_pool[dc->off + j]))
                goto done;
    }
    /* 2. canonical order: stable insertion sort of each run of non-starters by class */
    for (size_t a = 0; a < d.n; a++) {
        unsigned ca = d.v[a] >= RAW_BYTE ? 0 : ccc_of(d.v[a]);
        if (!ca)
            continue;
        size_t b = a;
        while (b > 0) {
            unsigned cb = d.v[b - 1] >= RAW_BYTE ? 0 : ccc_of(d.v[b - 1]);
            if (cb <= ca)
                break;
            uint32_t x = d.v[b];
            d.v[b] = d.v[b - 1];
            d.v[b - 1] = x;
            b--;
        }
    }
    /* 3. compose: each character joins the last starter unless something in between blocks it */
    size_t w = 0, starter = SIZE_MAX;
    unsigned last_ccc = 0;
    for (size_t r = 0; r < d.n; r++) {
        uint32_t cp = d.v[r];
        unsigned cc = cp >= RAW_BYTE ? 0 : ccc_of(cp);
        if (starter != SIZE_MAX && cp < RAW_BYTE && d.v[starter] < RAW_BYTE) {
            int blocked = w > starter + 1 && (last_ccc == 0 || last_ccc >= cc);
            uint32_t c = blocked ? 0 : compose(d.v[starter], cp);
            if (c) {
                d.v[starter] = c;
                continue;
            }
        }
        if (cc == 0) {
            starter = w;
            last_ccc = 0;
        } else {
            last_ccc = cc;
        }
        d.v[w++] = cp;
    }
    /* 4. back to UTF-8 */
    if (tok_buf_reserve(out, w * 4))
        goto done;
    for (size_t r = 0; r < w; r++) {
        if (d.v[r] >= RAW_BYTE)
            out->p[out->len++] = (char)(d.v[r] - RAW_BYTE);
        else
            out->len += tok_utf8_put(d.v[r], out->p + out->len);
    }
    rc = 0;
done:
    free(d.v);
    return rc;
}
