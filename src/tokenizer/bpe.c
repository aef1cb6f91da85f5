/* The BPE model of tokenizers: a pre-token is split into characters (with byte fallback and
 * unknown-token fusing), then adjacent pairs are merged lowest rank first, leftmost first among
 * equal ranks, until no pair of the merge table is left. A binary heap of candidate merges over
 * a linked list of symbols makes a word of n characters cost O(n log n). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"

static int sym_reserve(struct tok_bpe_scratch *s, size_t n)
{
    if (n <= s->sym_cap)
        return 0;
    size_t cap = s->sym_cap ? s->sym_cap : 64;
    while (cap < n)
        cap *= 2;
    struct tok_sym *p = realloc(s->sym, cap * sizeof *p);
    if (!p)
        return AWQ_ERR_OUT_OF_MEMORY;
    s->sym = p;
    s->sym_cap = cap;
    return 0;
}

static int add_sym(struct tok_bpe_scratch *s, size_t *n, int32_t id)
{
    if (sym_reserve(s, *n + 1))
        return AWQ_ERR_OUT_OF_MEMORY;
    s->sym[*n].id = id;
    s->sym[*n].prev = (int32_t)*n - 1;
    s->sym[*n].next = -1;
    if (*n)
        s->sym[*n - 1].next = (int32_t)*n;
    (*n)++;
    return 0;
}

static inline int merge_less(const struct tok_merge_ent *a, const struct tok_merge_ent *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int heap_push(struct tok_bpe_scratch *s, size_t *n, uint32_t rank, uint32_t pos, int32_t id)
{
    if (*n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        struct tok_merge_ent *h = realloc(s->heap, cap * sizeof *h);
        if (!h)
            return AWQ_ERR_OUT_OF_MEMORY;
        s->heap = h;
        s->heap_cap = cap;
    }
    struct tok_merge_ent e = { rank, pos, id };
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!merge_less(&e, &s->heap[p]))
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
    return 0;
}

static struct tok_merge_ent heap_pop(struct tok_bpe_scratch *s, size_t *n)
{
    struct tok_merge_ent top = s->heap[0];
    struct tok_merge_ent last = s->heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && merge_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!merge_less(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (*n)
        s->heap[i] = last;
    return top;
}

/* Pushes the merge of symbols a and its successor, if the merge table has one. */
static int push_pair(const struct tok_bpe *m, struct tok_bpe_scratch *s, size_t *hn, int32_t a)
{
    int32_t b = s->sym[a].next;
    if (b < 0)
        return 0;
    const struct tok_pair_slot *slot = tok_pairmap_get(&m->merges, s->sym[a].id, s->sym[b].id);
    return slot ? heap_push(s, hn, slot->rank, (uint32_t)a, slot->id) : 0;
}

int tok_bpe_word(const struct tok_bpe *m, const char *w, size_t len, struct tok_bpe_scratch *s,
                 struct tok_ivec *out, struct awq_errbuf *err)
{
    if (!len)
        return 0;
    if (m->ignore_merges) {
        int32_t id = tok_strmap_get(&m->vocab, w, len);
        if (id >= 0)
            return tok_ivec_push(out, id);
    }

    /* 1. characters -> symbols */
    size_t n = 0;
    int32_t pending_unk = -1;   /* an unknown run not emitted yet (fuse_unk extends it) */
    for (size_t i = 0; i < len;) {
        size_t k = tok_utf8_step(w + i, len - i);
        int first = i == 0, last = i + k == len;
        const char *cs = w + i;
        size_t cl = k;
        if ((!first && m->prefix) || (last && m->suffix)) {
            s->tmp.len = 0;
            if ((!first && m->prefix && tok_buf_put(&s->tmp, m->prefix, m->prefix_len)) ||
                tok_buf_put(&s->tmp, w + i, k) ||
                (last && m->suffix && tok_buf_put(&s->tmp, m->suffix, m->suffix_len)))
                return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
            cs = s->tmp.p;
            cl = s->tmp.len;
        }
        i += k;
        int32_t id;
        if (cs == w + i - k && (unsigned char)cs[0] < 0x80)
            id = m->char_id[(unsigned char)cs[0]];
        else if (cs == w + i - k && cl == 2 && (unsigned char)cs[0] < 0xC8)
            id = m->char_id[((unsigned char)cs[0] & 0x1F) << 6 | ((unsigned char)cs[1] & 0x3F)];
        else
            id = tok_strmap_get(&m->vocab, cs, cl);
        if (id >= 0) {
            if (pending_unk >= 0) {
                if (add_sym(s, &n, pending_unk))
                    goto oom;
                pending_unk = -1;
            }
            if (add_sym(s, &n, id))
                goto oom;
            continue;
        }
        if (m->byte_fallback) {
            size_t b = 0;
            while (b < cl && m->byte_id[(unsigned char)cs[b]] >= 0)
                b++;
            if (b == cl) {
                for (b = 0; b < cl; b++)
                    if (add_sym(s, &n, m->byte_id[(unsigned char)cs[b]]))
                        goto oom;
                continue;
            }
        }
        if (m->has_unk_token) {
            if (m->unk_id < 0)
                return awq_err_set(err, AWQ_ERR_BAD_TOKENIZER,
                                   "tokenizer.json: model.unk_token '%s' is needed but is not in "
                                   "model.vocab", m->unk_token);
            if (pending_unk >= 0 && !m->fuse_unk)
                if (add_sym(s, &n, pending_unk))
                    goto oom;
            pending_unk = m->unk_id;
        }
        /* without an unk token, tokenizers drops the character */
    }
    if (pending_unk >= 0 && add_sym(s, &n, pending_unk))
        goto oom;
    if (!n)
        return 0;

    /* 2. merges, lowest (rank, position) first */
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (push_pair(m, s, &hn, (int32_t)i))
            goto oom;
    while (hn) {
        struct tok_merge_ent top = heap_pop(s, &hn);
        struct tok_sym *a = &s->sym[top.pos];
        if (a->id < 0 || a->next < 0)
            continue;                       /* merged into its left neighbour, or last */
        int32_t bi = a->next;
        const struct tok_pair_slot *slot = tok_pairmap_get(&m->merges, a->id, s->sym[bi].id);
        if (!slot || slot->id != top.id)
            continue;                       /* stale: a neighbour changed since it was queued */
        a->id = top.id;
        a->next = s->sym[bi].next;
        s->sym[bi].id = -1;
        if (a->next >= 0)
            s->sym[a->next].prev = (int32_t)top.pos;
        if (a->prev >= 0 && push_pair(m, s, &hn, a->prev))
            goto oom;
        if (push_pair(m, s, &hn, (int32_t)top.pos))
            goto oom;
    }
    for (int32_t i = 0; i >= 0; i = s->sym[i].next)
        if (tok_ivec_push(out, s->sym[i].id))
            goto oom;
    return 0;
oom:
    return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

void tok_bpe_scratch_free(struct tok_bpe_scratch *s)
{
    free(s->sym);
    free(s->heap);
    tok_buf_free(&s->tmp);
    memset(s, 0, sizeof *s);
}

void tok_bpe_free(struct tok_bpe *m)
{
    tok_strmap_free(&m->vocab);
    tok_pairmap_free(&m->merges);
    free(m->id_ent);
    free(m->unk_token);
    free(m->prefix);
    free(m->suffix);
    memset(m, 0, sizeof *m);
}
