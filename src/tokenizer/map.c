#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/map.h"
#include "tokenizer/util.h"

static int strmap_grow(struct tok_strmap *m)
{
    uint32_t nslots = m->mask ? (m->mask + 1) * 2 : 64;
    if (nslots == 0 || nslots > (1u << 30))
        return AWQ_ERR_OUT_OF_MEMORY;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return AWQ_ERR_OUT_OF_MEMORY;
    uint32_t mask = nslots - 1;
    for (uint32_t e = 0; e < m->n; e++) {
        uint32_t i = m->ents[e].hash & mask;
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = e + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = mask;
    return 0;
}

int64_t tok_strmap_find(const struct tok_strmap *m, const char *key, size_t len)
{
    if (!m->n)
        return -1;
    uint32_t h = (uint32_t)tok_hash(key, len);
    uint32_t i = h & m->mask;
    for (;;) {
        uint32_t s = m->slots[i];
        if (!s)
            return -1;
        const struct tok_strmap_ent *e = &m->ents[s - 1];
        if (e->hash == h && e->len == len && !memcmp(m->pool + e->off, key, len))
            return s - 1;
        i = (i + 1) & m->mask;
    }
}

int32_t tok_strmap_get(const struct tok_strmap *m, const char *key, size_t len)
{
    int64_t e = tok_strmap_find(m, key, len);
    return e < 0 ? -1 : m->ents[e].val;
}

int tok_strmap_put(struct tok_strmap *m, const char *key, size_t len, int32_t val, uint32_t *ent)
{
    int64_t found = tok_strmap_find(m, key, len);
    if (found >= 0) {
        if (ent)
            *ent = (uint32_t)found;
        return 1;
    }
    if (len > UINT32_MAX / 2 || m->pool_len + len + 1 > UINT32_MAX)
        return AWQ_ERR_OUT_OF_MEMORY;
    /* keep the table at most half full */
    if ((size_t)(m->n + 1) * 2 > (size_t)m->mask + 1 || !m->slots)
        if (strmap_grow(m))
            return AWQ_ERR_OUT_OF_MEMORY;
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 64;
        struct tok_strmap_ent *e = realloc(m->ents, (size_t)cap * sizeof *e);
        if (!e)
            return AWQ_ERR_OUT_OF_MEMORY;
        m->ents = e;
        m->cap = cap;
    }
    if (m->pool_len + len + 1 > m->pool_cap) {
        size_t cap = m->pool_cap ? m->pool_cap : 1024;
        while (cap < m->pool_len + len + 1)
            cap *= 2;
        char *p = realloc(m->pool, cap);
        if (!p)
            return AWQ_ERR_OUT_OF_MEMORY;
        m->pool = p;
        m->pool_cap = cap;
    }
    uint32_t h = (uint32_t)tok_hash(key, len);
    struct tok_strmap_ent *e = &m->ents[m->n];
    e->off = (uint32_t)m->pool_len;
    e->len = (uint32_t)len;
    e->hash = h;
    e->val = val;
    if (len)
        memcpy(m->pool + m->pool_len, key, len);
    m->pool[m->pool_len + len] = '\0';
    m->pool_len += len + 1;
    uint32_t i = h & m->mask;
    while (m->slots[i])
        i = (i + 1) & m->mask;
    m->slots[i] = m->n + 1;
    if (ent)
        *ent = m->n;
    m->n++;
    return 0;
}

void tok_strmap_clear(struct tok_strmap *m)
{
    if (m->slots)
        memset(m->slots, 0, ((size_t)m->mask + 1) * sizeof *m->slots);
    m->n = 0;
    m->pool_len = 0;
}

void tok_strmap_free(struct tok_strmap *m)
{
    free(m->slots);
    free(m->ents);
    free(m->pool);
    memset(m, 0, sizeof *m);
}

static int pairmap_grow(struct tok_pairmap *m)
{
    uint32_t nslots = m->slots ? (m->mask + 1) * 2 : 1024;
    if (nslots == 0 || nslots > (1u << 30))
        return AWQ_ERR_OUT_OF_MEMORY;
    struct tok_pair_slot *slots = malloc((size_t)nslots * sizeof *slots);
    if (!slots)
        return AWQ_ERR_OUT_OF_MEMORY;
    for (uint32_t i = 0; i < nslots; i++)
        slots[i].key = UINT64_MAX;
    uint32_t mask = nslots - 1;
    if (m->slots) {
        for (uint32_t j = 0; j <= m->mask; j++) {
            if (m->slots[j].key == UINT64_MAX)
                continue;
            uint32_t i = (uint32_t)((m->slots[j].key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
            while (slots[i].key != UINT64_MAX)
                i = (i + 1) & mask;
            slots[i] = m->slots[j];
        }
    }
    free(m->slots);
    m->slots = slots;
    m->mask = mask;
    return 0;
}

int tok_pairmap_set(struct tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    if (!m->slots || (size_t)(m->n + 1) * 2 > (size_t)m->mask + 1)
        if (pairmap_grow(m))
            return AWQ_ERR_OUT_OF_MEMORY;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & m->mask;
    while (m->slots[i].key != UINT64_MAX && m->slots[i].key != key)
        i = (i + 1) & m->mask;
    if (m->slots[i].key == UINT64_MAX)
        m->n++;
    m->slots[i].key = key;
    m->slots[i].rank = rank;
    m->slots[i].id = id;
    return 0;
}

void tok_pairmap_free(struct tok_pairmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}
