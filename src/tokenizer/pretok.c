/* Pre-tokenizers: Split (regex or literal, with tokenizers' five delimiter behaviours), ByteLevel
 * (optional prefix space, GPT-2 regex, byte -> unicode mapping) and Metaspace. Each works on every
 * text piece of a list and appends the pieces it makes to another list. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"

int tok_pieces_push(struct tok_pieces *p, const char *s, size_t len, int32_t added, int at_start)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct tok_piece *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return AWQ_ERR_OUT_OF_MEMORY;
        p->v = v;
        p->cap = cap;
    }
    struct tok_piece *x = &p->v[p->n];
    x->off = p->buf.len;
    x->len = len;
    x->added = added;
    x->at_start = at_start;
    if (tok_buf_put(&p->buf, s, len))
        return AWQ_ERR_OUT_OF_MEMORY;
    p->n++;
    return 0;
}

void tok_pieces_reset(struct tok_pieces *p)
{
    p->n = 0;
    p->buf.len = 0;
}

void tok_pieces_free(struct tok_pieces *p)
{
    tok_buf_free(&p->buf);
    free(p->v);
    memset(p, 0, sizeof *p);
}

void tok_pre_scratch_free(struct tok_pre_scratch *s)
{
    free(s->sp);
    tok_buf_free(&s->tmp);
    tok_buf_free(&s->tmp2);
    memset(s, 0, sizeof *s);
}

static int span_push(struct tok_pre_scratch *sc, size_t s, size_t e, int m)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        struct tok_span *v = realloc(sc->sp, cap * sizeof *v);
        if (!v)
            return AWQ_ERR_OUT_OF_MEMORY;
        sc->sp = v;
        sc->cap = cap;
    }
    sc->sp[sc->n].s = s;
    sc->sp[sc->n].e = e;
    sc->sp[sc->n].m = m;
    sc->n++;
    return 0;
}

/* Pushes one piece; `map` applies the ByteLevel mapping on the way. */
static int emit(struct tok_pieces *out, const char *s, size_t len, int at_start, int map)
{
    if (!map)
        return tok_pieces_push(out, s, len, -1, at_start);
    size_t before = out->buf.len;
    if (tok_pieces_push(out, "", 0, -1, at_start) || tok_buf_reserve(&out->buf, 2 * len))
        return AWQ_ERR_OUT_OF_MEMORY;
    tok_bytelevel_encode(s, len, &out->buf);
    out->v[out->n - 1].len = out->buf.len - before;
    return 0;
}

/* Splits s by the matches of pat as tokenizers' NormalizedString::split does: the string is cut
 * into alternating non-match / match spans, `invert` swaps their roles, the behaviour decides
 * what happens to matches, and empty results are dropped. */
static int split_by(const struct tok_pattern *pat, enum tok_split_behavior beh, int invert,
                    const char *s, size_t len, int at_start, int map, pcre2_match_data *md,
                    struct tok_pre_scratch *sc, struct tok_pieces *out, struct awq_errbuf *err)
{
    sc->n = 0;
    size_t prev = 0, ms, me;
    for (;;) {
        int rc = tok_pattern_next(pat, md, s, len, prev, &ms, &me);
        if (rc < 0)
            return awq_err_set(err, AWQ_ERR_BAD_INPUT, "tokenizer: regex match failed (PCRE2 error %d)", rc);
        if (!rc)
            break;
        if (ms > prev && span_push(sc, prev, ms, invert))
            goto oom;
        if (span_push(sc, ms, me, !invert))
            goto oom;
        prev = me;
    }
    if (prev < len && span_push(sc, prev, len, invert))
        goto oom;

    struct tok_span *v = sc->sp;
    size_t n = sc->n, k = 0;   /* results are folded in place into v[0..k) */
    int prev_match = 0;
    switch (beh) {
    case TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!v[i].m)
                v[k++] = v[i];
        break;
    case TOK_SPLIT_ISOLATED:
        k = n;
        break;
    case TOK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int m = v[i].m;
            if (m && !prev_match && k)
                v[k - 1].e = v[i].e;
            else
                v[k++] = v[i];
            prev_match = m;
        }
        break;
    case TOK_SPLIT_MERGED_NEXT:
        /* the same fold from the right: a match joins the piece after it */
        k = n;
        for (size_t i = n; i-- > 0;) {
            int m = v[i].m;
            if (m && !prev_match && k < n)
                v[k].s = v[i].s;
            else
                v[--k] = v[i];
            prev_match = m;
        }
        v += k;
        k = n - k;
        break;
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            int m = v[i].m;
            if (m == prev_match && k)
                v[k - 1].e = v[i].e;
            else
                v[k++] = v[i];
            prev_match = m;
        }
        break;
    }
    for (size_t i = 0; i < k; i++)
        if (v[i].e > v[i].s && emit(out, s + v[i].s, v[i].e - v[i].s, at_start && v[i].s == 0, map))
            goto oom;
    return 0;
oom:
    return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

int tok_pretokenize(const struct tok_pre *pre, const struct tok_pieces *in, pcre2_match_data *md,
                    struct tok_pre_scratch *sc, struct tok_pieces *out, struct awq_errbuf *err)
{
    for (size_t i = 0; i < in->n; i++) {
        const struct tok_piece *pc = &in->v[i];
        const char *s = in->buf.p + pc->off;
        size_t len = pc->len;
        if (pc->added >= 0) {
            if (tok_pieces_push(out, s, len, pc->added, 0))
                goto oom;
            continue;
        }
        int rc = 0;
        switch (pre->kind) {
        case TOK_PRE_SPLIT:
            rc = split_by(&pre->pat, pre->behavior, pre->invert, s, len, pc->at_start, 0, md, sc, out, err);
            break;
        case TOK_PRE_BYTELEVEL:
            if (pre->add_prefix_space && len && s[0] != ' ') {
                sc->tmp.len = 0;
                if (tok_buf_put(&sc->tmp, " ", 1) || tok_buf_put(&sc->tmp, s, len))
                    goto oom;
                s = sc->tmp.p;
                len = sc->tmp.len;
            }
            if (!len)
                break;
            if (pre->use_regex)
                rc = split_by(&pre->pat, TOK_SPLIT_ISOLATED, 0, s, len, pc->at_start, 1, md, sc, out, err);
            else
                rc = emit(out, s, len, pc->at_start, 1) ? AWQ_ERR_OUT_OF_MEMORY : 0;
            break;
        case TOK_PRE_METASPACE: {
            struct tok_buf *b = &sc->tmp;
            b->len = 0;
            int starts_rep = len >= pre->rep_len && !memcmp(s, pre->rep, pre->rep_len);
            /* the ' ' -> replacement step cannot create a leading replacement from nothing, so
             * "starts with it" can be read on the result as tokenizers does */
            starts_rep = starts_rep || (len && s[0] == ' ');
            if (len && !starts_rep && (pre->scheme == TOK_PREPEND_ALWAYS ||
                                (pre->scheme == TOK_PREPEND_FIRST && pc->at_start)))
                if (tok_buf_put(b, pre->rep, pre->rep_len))
                    goto oom;
            for (size_t j = 0; j < len;) {
                const char *sp = memchr(s + j, ' ', len - j);
                size_t run = sp ? (size_t)(sp - s) - j : len - j;
                if (tok_buf_put(b, s + j, run) || (sp && tok_buf_put(b, pre->rep, pre->rep_len)))
                    goto oom;
                j += run + (sp != NULL);
            }
            if (!b->len)
                break;
            if (pre->split)
                rc = split_by(&pre->pat, TOK_SPLIT_MERGED_NEXT, 0, b->p, b->len, pc->at_start, 0, md,
                              sc, out, err);
            else
                rc = emit(out, b->p, b->len, pc->at_start, 0) ? AWQ_ERR_OUT_OF_MEMORY : 0;
            break;
        }
        }
        if (rc == AWQ_ERR_OUT_OF_MEMORY)
            goto oom;
        if (rc)
            return rc;
    }
    return 0;
oom:
    return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}
