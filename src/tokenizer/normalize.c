/* Normalizers (Prepend, Replace, NFC, ByteLevel) and GPT-2's byte <-> unicode mapping. */
#include "config.h"

#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"

/* GPT-2 maps the 188 printable bytes (33..126, 161..172, 174..255) to themselves and the other
 * 68, in increasing order, to U+0100.. so that every byte is a visible character. */
static uint32_t bytelevel_cp(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    if (b <= 32)
        return 256 + b;
    if (b <= 160)
        return 256 + 33 + (b - 127);
    return 256 + 33 + 34;   /* 173 */
}

int tok_bytelevel_byte(uint32_t cp)
{
    if (cp < 256)
        return ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || cp >= 174) ? (int)cp : -1;
    if (cp <= 288)
        return (int)(cp - 256);
    if (cp <= 322)
        return (int)(cp - 289 + 127);
    if (cp == 323)
        return 173;
    return -1;
}

void tok_bytelevel_encode(const char *s, size_t len, struct tok_buf *out)
{
    /* callers reserve 2 bytes per input byte */
    char *o = out->p + out->len;
    for (size_t i = 0; i < len; i++)
        o += tok_utf8_put(bytelevel_cp((unsigned char)s[i]), o);
    out->len = (size_t)(o - out->p);
}

static int replace_all(const struct tok_pattern *pat, const char *with, size_t with_len,
                       const char *s, size_t len, pcre2_match_data *md, struct tok_buf *out,
                       struct awq_errbuf *err)
{
    size_t pos = 0, ms, me;
    for (;;) {
        int rc = tok_pattern_next(pat, md, s, len, pos, &ms, &me);
        if (rc < 0)
            return awq_err_set(err, AWQ_ERR_BAD_INPUT, "tokenizer: regex match failed (PCRE2 error %d)", rc);
        if (!rc)
            break;
        if (tok_buf_put(out, s + pos, ms - pos) || tok_buf_put(out, with, with_len))
            return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        pos = me;
    }
    if (tok_buf_put(out, s + pos, len - pos))
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    return 0;
}

int tok_normalize(const struct awq_tok *t, const char *s, size_t len, pcre2_match_data *md,
                  struct tok_buf *out, struct awq_errbuf *err)
{
    out->len = 0;
    if (!t->n_norms)
        return tok_buf_put(out, s, len) ? awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory") : 0;
    struct tok_buf a = { 0 }, b = { 0 };
    struct tok_buf *cur = &a, *nxt = &b;
    int rc = 0;
    if (tok_buf_put(cur, s, len)) {
        rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        goto done;
    }
    for (size_t k = 0; k < t->n_norms; k++) {
        const struct tok_norm *n = &t->norms[k];
        nxt->len = 0;
        switch (n->kind) {
        case TOK_NORM_PREPEND:
            /* tokenizers' Prepend leaves an empty string empty */
            if (cur->len && tok_buf_put(nxt, n->str, n->str_len))
                rc = AWQ_ERR_OUT_OF_MEMORY;
            if (!rc && tok_buf_put(nxt, cur->p, cur->len))
                rc = AWQ_ERR_OUT_OF_MEMORY;
            break;
        case TOK_NORM_REPLACE:
            rc = replace_all(&n->pat, n->str, n->str_len, cur->p, cur->len, md, nxt, err);
            break;
        case TOK_NORM_NFC:
            rc = tok_nfc(cur->p, cur->len, nxt);
            break;
        case TOK_NORM_BYTELEVEL:
            if (tok_buf_reserve(nxt, cur->len * 2))
                rc = AWQ_ERR_OUT_OF_MEMORY;
            else
                tok_bytelevel_encode(cur->p, cur->len, nxt);
            break;
        }
        if (rc) {
            if (rc == AWQ_ERR_OUT_OF_MEMORY)
                awq_err_set(err, rc, "tokenizer: out of memory");
            goto done;
        }
        struct tok_buf *x = cur;
        cur = nxt;
        nxt = x;
    }
    if (tok_buf_put(out, cur->p, cur->len))
        rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
done:
    tok_buf_free(&a);
    tok_buf_free(&b);
    return rc;
}
