/* Encoding, in tokenizers' order: added tokens are cut out of the raw text; each remaining piece
 * is normalized on its own and searched for "normalized" added tokens; the pre-tokenizers split
 * the text pieces into words; the BPE model turns each word into ids; the post-processor
 * template adds BOS/EOS. All scratch memory belongs to the call, so one tokenizer may encode on
 * several threads at once. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"

/* Words up to this length are remembered for the rest of the call: running text repeats its
 * words, and a hash lookup is cheaper than the merge loop. */
#define CACHE_MAX_WORD 64
#define CACHE_MAX_ENTRIES 65536

struct word_cache {
    struct tok_strmap map;      /* word -> index into spans */
    struct { uint32_t off, n; } *spans;
    size_t n_spans, cap_spans;
    struct tok_ivec ids;
};

static int cache_add(struct word_cache *c, const char *w, size_t len, const int32_t *ids, size_t n)
{
    if (c->n_spans >= CACHE_MAX_ENTRIES)
        return 0;
    if (c->n_spans == c->cap_spans) {
        size_t cap = c->cap_spans ? c->cap_spans * 2 : 256;
        void *p = realloc(c->spans, cap * sizeof *c->spans);
        if (!p)
            return AWQ_ERR_OUT_OF_MEMORY;
        c->spans = p;
        c->cap_spans = cap;
    }
    c->spans[c->n_spans].off = (uint32_t)c->ids.n;
    c->spans[c->n_spans].n = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        if (tok_ivec_push(&c->ids, ids[i]))
            return AWQ_ERR_OUT_OF_MEMORY;
    if (tok_strmap_put(&c->map, w, len, (int32_t)c->n_spans, NULL) < 0)
        return AWQ_ERR_OUT_OF_MEMORY;
    c->n_spans++;
    return 0;
}

static void cache_free(struct word_cache *c)
{
    tok_strmap_free(&c->map);
    free(c->spans);
    tok_ivec_free(&c->ids);
}

#define META "\xe2\x96\x81"

/* Encodes one word through the cache. */
static int encode_word(const struct awq_tok *t, const char *w, size_t len, struct word_cache *c,
                       struct tok_bpe_scratch *bs, struct tok_ivec *out, struct awq_errbuf *err)
{
    if (len > CACHE_MAX_WORD && t->split_at_metaspace) {
        size_t start = 0;
        for (size_t i = 1; i + 3 <= len; i++) {
            if (memcmp(w + i, META, 3) || (i >= 3 && !memcmp(w + i - 3, META, 3)))
                continue;
            if (i - start <= CACHE_MAX_WORD) {
                int rc = encode_word(t, w + start, i - start, c, bs, out, err);
                if (rc)
                    return rc;
            } else {
                int rc = tok_bpe_word(&t->bpe, w + start, i - start, bs, out, err);
                if (rc)
                    return rc;
            }
            start = i;
            i += 2;
        }
        if (len - start <= CACHE_MAX_WORD)
            return encode_word(t, w + start, len - start, c, bs, out, err);
        return tok_bpe_word(&t->bpe, w + start, len - start, bs, out, err);
    }
    if (len > CACHE_MAX_WORD)
        return tok_bpe_word(&t->bpe, w, len, bs, out, err);
    int32_t e = tok_strmap_get(&c->map, w, len);
    if (e >= 0) {
        for (uint32_t i = 0; i < c->spans[e].n; i++)
            if (tok_ivec_push(out, c->ids.v[c->spans[e].off + i]))
                return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        return 0;
    }
    size_t before = out->n;
    int rc = tok_bpe_word(&t->bpe, w, len, bs, out, err);
    if (rc)
        return rc;
    if (cache_add(c, w, len, out->v + before, out->n - before))
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    return 0;
}

int awq_tok_encode(const struct awq_tok *t, const char *text, size_t len, int add_special,
                   int32_t **ids, size_t *n, struct awq_errbuf *err)
{
    if (!t || !ids || !n || (!text && len))
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "tokenizer encode: NULL argument");
    *ids = NULL;
    *n = 0;
    if (!text)
        text = "";

    int rc = 0;
    struct tok_pieces a = { 0 }, b = { 0 };
    struct tok_buf norm = { 0 };
    struct tok_pre_scratch sc = { 0 };
    struct tok_bpe_scratch bs = { 0 };
    struct word_cache cache;
    memset(&cache, 0, sizeof cache);
    struct tok_ivec out = { 0 };
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    if (!md)
        goto oom;

    /* 1. added tokens matched on the raw text */
    if (tok_added_split(t, &t->trie_raw, text, len, 1, md, &a))
        goto oom;
    /* 2. normalize each text piece; then added tokens matched on the normalized text */
    for (size_t i = 0; i < a.n; i++) {
        const struct tok_piece *p = &a.v[i];
        if (p->added >= 0) {
            if (tok_pieces_push(&b, a.buf.p + p->off, p->len, p->added, 0))
                goto oom;
            continue;
        }
        rc = tok_normalize(t, a.buf.p + p->off, p->len, md, &norm, err);
        if (rc)
            goto done;
        if (tok_added_split(t, &t->trie_norm, norm.p ? norm.p : "", norm.len, p->at_start, md, &b))
            goto oom;
    }
    /* 3. pre-tokenizers, one after the other over all pieces */
    for (size_t k = 0; k < t->n_pres; k++) {
        struct tok_pieces x = a;
        a = b;
        b = x;
        tok_pieces_reset(&b);
        rc = tok_pretokenize(&t->pres[k], &a, md, &sc, &b, err);
        if (rc)
            goto done;
    }
    /* 4. the model; 5. the template */
    for (size_t k = 0; k < (add_special ? t->n_tmpl : 1); k++) {
        if (add_special && t->tmpl[k] != TOK_TMPL_SEQ) {
            if (tok_ivec_push(&out, t->tmpl[k]))
                goto oom;
            continue;
        }
        for (size_t i = 0; i < b.n; i++) {
            const struct tok_piece *p = &b.v[i];
            if (p->added >= 0)
                rc = tok_ivec_push(&out, p->added) ? awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory") : 0;
            else
                rc = encode_word(t, b.buf.p + p->off, p->len, &cache, &bs, &out, err);
            if (rc)
                goto done;
        }
    }
    if (!out.n) {
        /* a valid empty result; still hand back a freeable pointer */
        out.v = malloc(sizeof *out.v);
        if (!out.v)
            goto oom;
    }
    *ids = out.v;
    *n = out.n;
    out.v = NULL;
    goto done;
oom:
    rc = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
done:
    if (md)
        pcre2_match_data_free(md);
    tok_pieces_free(&a);
    tok_pieces_free(&b);
    tok_buf_free(&norm);
    tok_pre_scratch_free(&sc);
    tok_bpe_scratch_free(&bs);
    cache_free(&cache);
    tok_ivec_free(&out);
    return rc;
}
