/* Hash maps of the tokenizer: token text -> id (the vocabulary, and the per-call word cache),
 * and (id, id) -> (rank, id) for BPE merges. Open addressing with linear probing. */
#ifndef AWQ_TOKENIZER_MAP_H
#define AWQ_TOKENIZER_MAP_H

#include <stddef.h>
#include <stdint.h>

struct tok_strmap_ent {
    uint32_t off, len;          /* key bytes in the pool */
    uint32_t hash;
    int32_t val;
};

struct tok_strmap {
    uint32_t *slots;            /* entry index + 1; 0 = empty */
    uint32_t mask;
    struct tok_strmap_ent *ents;
    uint32_t n, cap;
    char *pool;                 /* keys, each followed by a NUL */
    size_t pool_len, pool_cap;
};

/* Adds key -> val. *ent receives the entry index (of the existing entry when the key was already
 * there: then nothing changes and 1 is returned). 0 when added, AWQ_ERR_OUT_OF_MEMORY on failure. */
int tok_strmap_put(struct tok_strmap *m, const char *key, size_t len, int32_t val, uint32_t *ent);
/* Value of key, or -1. */
int32_t tok_strmap_get(const struct tok_strmap *m, const char *key, size_t len);
/* Entry index of key, or -1. */
int64_t tok_strmap_find(const struct tok_strmap *m, const char *key, size_t len);
static inline const char *tok_strmap_key(const struct tok_strmap *m, uint32_t ent, size_t *len)
{
    *len = m->ents[ent].len;
    return m->pool + m->ents[ent].off;
}
void tok_strmap_clear(struct tok_strmap *m);     /* keeps the storage */
void tok_strmap_free(struct tok_strmap *m);

struct tok_pair_slot {
    uint64_t key;               /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t id;
};
struct tok_pairmap {
    struct tok_pair_slot *slots;
    uint32_t mask, n;
};

/* Sets (a, b) -> (rank, id), replacing an earlier value (as tokenizers' HashMap collect does). */
int tok_pairmap_set(struct tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
/* The slot of (a, b), or NULL. */
static inline const struct tok_pair_slot *tok_pairmap_get(const struct tok_pairmap *m, int32_t a, int32_t b)
{
    if (!m->n)
        return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 32) & m->mask;
    for (;;) {
        const struct tok_pair_slot *s = &m->slots[i];
        if (s->key == key)
            return s;
        if (s->key == UINT64_MAX)
            return NULL;
        i = (i + 1) & m->mask;
    }
}
void tok_pairmap_free(struct tok_pairmap *m);

#endif
