/* Decoding: ids -> token strings -> the decoder chain of tokenizer.json (Replace, ByteFallback,
 * Fuse, Strip, ByteLevel, Metaspace), each working on the list of strings as tokenizers'
 * decode_chain does. One deliberate difference: where tokenizers turns bytes that are not valid
 * UTF-8 into U+FFFD (ByteFallback, ByteLevel), we keep the bytes, so decode(encode(x)) == x for
 * any x and a caller streaming tokens can join partial characters itself. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "<0xAB>" -> 0xAB, else -1 */
static int byte_token(const char *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    int h = hexval(s[3]), l = hexval(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/* Character at s[i]: its length, and its code point or UINT32_MAX for an invalid byte. */
static size_t char_at(const char *s, size_t len, size_t i, uint32_t *cp)
{
    size_t k = tok_utf8_valid((const unsigned char *)s + i, len - i, cp);
    if (!k) {
        *cp = UINT32_MAX;
        return 1;
    }
    return k;
}

static int apply(const struct tok_dec *d, const struct tok_pieces *in, pcre2_match_data *md,
                 struct tok_pieces *out, struct awq_errbuf *err)
{
    struct tok_buf acc = { 0 };
    int rc = 0;
    switch (d->kind) {
    case TOK_DEC_REPLACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->buf.p + in->v[i].off;
            size_t len = in->v[i].len, pos = 0, ms, me;
            acc.len = 0;
            for (;;) {
                int r = tok_pattern_next(&d->pat, md, s, len, pos, &ms, &me);
                if (r < 0) {
                    rc = awq_err_set(err, AWQ_ERR_BAD_INPUT, "tokenizer: regex match failed (PCRE2 error %d)", r);
                    break;
                }
                if (!r)
                    break;
                if (tok_buf_put(&acc, s + pos, ms - pos) || tok_buf_put(&acc, d->str, d->str_len))
                    goto oom;
                pos = me;
            }
            if (!rc && (tok_buf_put(&acc, s + pos, len - pos) || tok_pieces_push(out, acc.p, acc.len, -1, 0)))
                goto oom;
        }
        break;
    case TOK_DEC_BYTE_FALLBACK:
        /* runs of <0xXX> tokens become one string of those bytes */
        for (size_t i = 0; i <= in->n; i++) {
            int byte = i < in->n ? byte_token(in->buf.p + in->v[i].off, in->v[i].len) : -1;
            if (byte >= 0) {
                char c = (char)byte;
                if (tok_buf_put(&acc, &c, 1))
                    goto oom;
                continue;
            }
            if (acc.len) {
                if (tok_pieces_push(out, acc.p, acc.len, -1, 0))
                    goto oom;
                acc.len = 0;
            }
            if (i < in->n && tok_pieces_push(out, in->buf.p + in->v[i].off, in->v[i].len, -1, 0))
                goto oom;
        }
        break;
    case TOK_DEC_FUSE:
        for (size_t i = 0; i < in->n; i++)
            if (tok_buf_put(&acc, in->buf.p + in->v[i].off, in->v[i].len))
                goto oom;
        if (tok_pieces_push(out, acc.p ? acc.p : "", acc.len, -1, 0))
            goto oom;
        break;
    case TOK_DEC_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = in->buf.p + in->v[i].off;
            size_t len = in->v[i].len, b = 0, e = len;
            uint32_t cp;
            for (int k = 0; k < d->start && b < len; k++) {
                size_t cl = char_at(s, len, b, &cp);
                if (cp != d->cp)
                    break;
                b += cl;
            }
            for (int k = 0; k < d->stop && e > b; k++) {
                size_t st = e - 1;
                while (st > b && e - st < 4 && ((unsigned char)s[st] & 0xC0) == 0x80)
                    st--;
                size_t cl = char_at(s, e, st, &cp);
                if (st + cl != e || cp != d->cp)
                    break;
                e = st;
            }
            if (tok_pieces_push(out, s + b, e - b, -1, 0))
                goto oom;
        }
        break;
    case TOK_DEC_BYTELEVEL:
        /* every token maps back to bytes, or (when it has a character outside the mapping, as
         * added tokens may) is taken as it is; the result is one string */
        for (size_t i = 0; i < in->n; i++) {
            const char *s = in->buf.p + in->v[i].off;
            size_t len = in->v[i].len, before = acc.len;
            if (tok_buf_reserve(&acc, len))
                goto oom;
            int ok = 1;
            for (size_t j = 0; j < len;) {
                uint32_t cp;
                j += char_at(s, len, j, &cp);
                int byte = cp == UINT32_MAX ? -1 : tok_bytelevel_byte(cp);
                if (byte < 0) {
                    ok = 0;
                    break;
                }
                acc.p[acc.len++] = (char)byte;
            }
            if (!ok) {
                acc.len = before;
                if (tok_buf_put(&acc, s, len))
                    goto oom;
            }
        }
        if (tok_pieces_push(out, acc.p ? acc.p : "", acc.len, -1, 0))
            goto oom;
        break;
    case TOK_DEC_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = in->buf.p + in->v[i].off;
            size_t len = in->v[i].len;
            acc.len = 0;
            for (size_t j = 0; j < len;) {
                uint32_t cp;
                size_t cl = char_at(s, len, j, &cp);
                if (cp == d->cp) {
                    if (!(i == 0 && d->scheme != TOK_PREPEND_NEVER) && tok_buf_put(&acc, " ", 1))
                        goto oom;
                } else if (tok_buf_put(&acc, s + j, cl)) {
                    goto oom;
                }
                j += cl;
            }
            if (tok_pieces_push(out, acc.p ? acc.p : "", acc.len, -1, 0))
                goto oom;
        }
        break;
    }
    tok_buf_free(&acc);
    return rc;
oom:
    tok_buf_free(&acc);
    return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

int awq_tok_decode(const struct awq_tok *t, const int32_t *ids, size_t n, int skip_special,
                   char **text, size_t *len, struct awq_errbuf *err)
{
    if (!t || !text || !len || (!ids && n))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "tokenizer decode: NULL argument");
    *text = NULL;
    *len = 0;
    int rc = 0;
    struct tok_pieces a = { 0 }, b = { 0 };
    struct tok_buf res = { 0 };
    pcre2_match_data *md = NULL;

    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab_size) {
            rc = awq_err_set(err, AWQ_ERR_BAD_INPUT, "token id %d (position %zu) is outside the "
                             "vocabulary (0..%d)", id, i, t->vocab_size - 1);
            goto done;
        }
        if (skip_special && t->special_id[id])
            continue;
        const char *s;
        size_t sl;
        if (t->added_of_id[id] >= 0) {
            s = t->added[t->added_of_id[id]].content;
            sl = t->added[t->added_of_id[id]].len;
        } else if ((uint32_t)id < t->bpe.n_vocab) {
            s = tok_strmap_key(&t->bpe.vocab, t->bpe.id_ent[id], &sl);
        } else {
            rc = awq_err_set(err, AWQ_ERR_BAD_INPUT, "token id %d (position %zu) has no token text", id, i);
            goto done;
        }
        if (tok_pieces_push(&a, s, sl, -1, 0))
            goto oom;
    }
    if (!t->has_decoder) {
        /* tokenizers without a decoder joins tokens with spaces */
        for (size_t i = 0; i < a.n; i++)
            if ((i && tok_buf_put(&res, " ", 1)) || tok_buf_put(&res, a.buf.p + a.v[i].off, a.v[i].len))
                goto oom;
    } else {
        md = pcre2_match_data_create(16, NULL);
        if (!md)
            goto oom;
        for (size_t k = 0; k < t->n_decs; k++) {
            tok_pieces_reset(&b);
            rc = apply(&t->decs[k], &a, md, &b, err);
            if (rc)
                goto done;
            struct tok_pieces x = a;
            a = b;
            b = x;
        }
        for (size_t i = 0; i < a.n; i++)
            if (tok_buf_put(&res, a.buf.p + a.v[i].off, a.v[i].len))
                goto oom;
    }
    if (tok_buf_reserve(&res, 0))
        goto oom;
    res.p[res.len] = '\0';
    *text = res.p;
    *len = res.len;
    res.p = NULL;
    goto done;
oom:
    rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
done:
    if (md)
        pcre2_match_data_free(md);
    tok_pieces_free(&a);
    tok_pieces_free(&b);
    tok_buf_free(&res);
    return rc;
}
