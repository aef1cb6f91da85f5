/* Added tokens (<s>, <|begin_of_text|>...): found in the text before the model sees it, the way
 * tokenizers' AddedVocabulary does — leftmost-longest over all tokens, matches scanned without
 * overlap, then each token's single_word / lstrip / rstrip options applied to the match. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"

static int32_t trie_child(const struct tok_trie *tr, uint32_t node, uint8_t byte)
{
    for (uint32_t c = tr->nodes[node].first_child; c; c = tr->nodes[c].next_sibling)
        if (tr->nodes[c].byte == byte)
            return (int32_t)c;
    return -1;
}

int tok_trie_add(struct tok_trie *tr, const char *s, size_t len, int32_t token)
{
    if (!tr->nodes) {
        tr->nodes = calloc(16, sizeof *tr->nodes);
        if (!tr->nodes)
            return AWQ_ERR_OUT_OF_MEMORY;
        tr->cap = 16;
        tr->n = 1;
        tr->nodes[0].token = -1;
    }
    if (!len)
        return 0;
    tr->first[(uint8_t)s[0] >> 3] |= (uint8_t)(1u << ((uint8_t)s[0] & 7));
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t c = trie_child(tr, node, (uint8_t)s[i]);
        if (c < 0) {
            if (tr->n == tr->cap) {
                if (tr->cap > UINT32_MAX / 4)
                    return AWQ_ERR_OUT_OF_MEMORY;
                struct tok_trie_node *p = realloc(tr->nodes, (size_t)tr->cap * 2 * sizeof *p);
                if (!p)
                    return AWQ_ERR_OUT_OF_MEMORY;
                tr->nodes = p;
                tr->cap *= 2;
            }
            c = (int32_t)tr->n++;
            tr->nodes[c].byte = (uint8_t)s[i];
            tr->nodes[c].token = -1;
            tr->nodes[c].first_child = 0;
            tr->nodes[c].next_sibling = tr->nodes[node].first_child;
            tr->nodes[node].first_child = (uint32_t)c;
        }
        node = (uint32_t)c;
    }
    /* a later token with the same text replaces the earlier one, as in a map */
    tr->nodes[node].token = token;
    return 0;
}

void tok_trie_free(struct tok_trie *tr)
{
    free(tr->nodes);
    memset(tr, 0, sizeof *tr);
}

/* Longest token starting at s[i]: its index into t->added (and *end), or -1. */
static int32_t longest_at(const struct tok_trie *tr, const char *s, size_t len, size_t i, size_t *end)
{
    int32_t best = -1;
    uint32_t node = 0;
    for (size_t j = i; j < len; j++) {
        int32_t c = trie_child(tr, node, (uint8_t)s[j]);
        if (c < 0)
            break;
        node = (uint32_t)c;
        if (tr->nodes[node].token >= 0) {
            best = tr->nodes[node].token;
            *end = j + 1;
        }
    }
    return best;
}

/* Does the single character at s[at..) match re (\w or \s)? */
static int char_is(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t len, size_t at)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, at, PCRE2_ANCHORED, md, NULL);
    return rc >= 0;
}

/* Start of the character that ends at s[end) (UTF-8 stepping back; invalid bytes count alone). */
static size_t char_before(const char *s, size_t end)
{
    size_t k = end - 1;
    size_t lim = end >= 4 ? end - 4 : 0;
    while (k > lim && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    if (tok_utf8_valid((const unsigned char *)s + k, end - k, NULL) == end - k)
        return k;
    return end - 1;
}

int tok_added_split(const struct awq_tok *t, const struct tok_trie *trie, const char *s, size_t len,
                    int at_start, pcre2_match_data *md, struct tok_pieces *out)
{
    size_t start_offset = 0;
    if (trie->n > 1) {
        size_t i = 0;
        while (i < len) {
            uint8_t b = (uint8_t)s[i];
            size_t end = 0;
            int32_t k = (trie->first[b >> 3] >> (b & 7)) & 1 ? longest_at(trie, s, len, i, &end) : -1;
            if (k < 0) {
                i++;
                continue;
            }
            const struct tok_added *a = &t->added[k];
            size_t start = i, stop = end;
            i = end;    /* the scan goes on after this match, used or not */
            if (a->single_word) {
                int start_space = start == 0 || !char_is(t->re_word, md, s, start, char_before(s, start));
                int stop_space = stop == len || !char_is(t->re_word, md, s, len, stop);
                if (!start_space || !stop_space)
                    continue;
            }
            if (a->lstrip) {
                size_t ns = start;
                while (ns > 0) {
                    size_t c = char_before(s, ns);
                    if (!char_is(t->re_space, md, s, ns, c))
                        break;
                    ns = c;
                }
                start = ns > start_offset ? ns : start_offset;
            }
            if (a->rstrip) {
                while (stop < len) {
                    int rc = pcre2_match(t->re_space, (PCRE2_SPTR)s, len, stop, PCRE2_ANCHORED, md, NULL);
                    if (rc < 0)
                        break;
                    size_t e = pcre2_get_ovector_pointer(md)[1];
                    if (e <= stop)
                        break;
                    stop = e;
                }
                if (stop > i)
                    i = stop;
            }
            if (start_offset < start &&
                tok_pieces_push(out, s + start_offset, start - start_offset, -1, at_start && start_offset == 0))
                return AWQ_ERR_OUT_OF_MEMORY;
            if (tok_pieces_push(out, s + start, stop - start, a->id, 0))
                return AWQ_ERR_OUT_OF_MEMORY;
            start_offset = stop;
        }
    }
    if (start_offset < len || len == 0)
        if (tok_pieces_push(out, s + start_offset, len - start_offset, -1, at_start && start_offset == 0))
            return AWQ_ERR_OUT_OF_MEMORY;
    return 0;
}
