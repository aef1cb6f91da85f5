/* Loading tokenizer.json (and tokenizer_config.json) into struct awq_tok. Every component the
 * encoder or decoder would need is checked here, so encoding never meets a malformed table:
 * model.vocab must map distinct tokens to the ids 0..n-1, every merge must name vocabulary
 * tokens whose concatenation is itself in the vocabulary, and components we do not implement are
 * refused by name (AWQ_ERR_UNSUPPORTED) rather than skipped. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "awq.h"
#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"
#include "util/array.h"

#define TJ "tokenizer.json"
#define TC "tokenizer_config.json"

/* GPT-2's pre-tokenization regex, used by ByteLevel with use_regex = true. */
static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct loader {
    struct awq_tok *t;
    struct awq_errbuf *err;
    const char *file;               /* named in error messages */
    struct tok_strmap added_map;    /* content -> index into t->added */
    size_t cap_added;
};

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Sets the error with the file name in front; returns code. */
static int lerr(struct loader *L, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lerr(struct loader *L, int code, const char *fmt, ...)
{
    char msg[AWQ_ERRBUF_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return awq_err_set(L->err, code, "%s: %s", L->file, msg);
}

static int oom(struct loader *L)
{
    return awq_err_set(L->err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

/* ---- JSON field helpers (each names the field in its error) ---- */

static const char *type_of(const json_t *o)
{
    const json_t *t = json_object_get(o, "type");
    return json_is_string(t) ? json_string_value(t) : NULL;
}

/* Optional bool field; *out keeps its default when absent or null. */
static int get_bool(struct loader *L, const json_t *o, const char *key, const char *where, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return lerr(L, AWQ_ERR_BAD_JSON, "%s.%s must be true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

/* Optional string field (NULL when absent or null). */
static int get_str(struct loader *L, const json_t *o, const char *key, const char *where,
                   const char **out, size_t *len)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (len)
        *len = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return lerr(L, AWQ_ERR_BAD_JSON, "%s.%s must be a string", where, key);
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return 0;
}

static int get_int(struct loader *L, const json_t *o, const char *key, const char *where,
                   long long lo, long long hi, long long *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return lerr(L, AWQ_ERR_BAD_JSON, "%s.%s must be an integer", where, key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.%s = %lld is out of range %lld..%lld",
                           where, key, x, lo, hi);
    *out = x;
    return 0;
}

/* A single character given as a string (Metaspace replacement, Strip content). */
static int get_char(struct loader *L, const json_t *o, const char *key, const char *where,
                    uint32_t *cp, int required)
{
    const char *s;
    size_t n;
    if (get_str(L, o, key, where, &s, &n))
        return L->err->code;
    if (!s) {
        if (required)
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.%s is missing", where, key);
        return 0;
    }
    size_t k = tok_utf8_valid((const unsigned char *)s, n, cp);
    if (!k || k != n)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.%s must be one character, not '%s'",
                           where, key, s);
    return 0;
}

/* {"String": "..."} or {"Regex": "..."} */
static int get_pattern(struct loader *L, const json_t *o, const char *where, struct tok_pattern *p)
{
    const json_t *pat = json_object_get(o, "pattern");
    char w[160];
    snprintf(w, sizeof w, "%s.pattern", where);
    if (!json_is_object(pat))
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s is missing (an object with "
                           "\"String\" or \"Regex\")", w);
    const json_t *s = json_object_get(pat, "String");
    const json_t *r = json_object_get(pat, "Regex");
    if (json_is_string(s)) {
        if (!json_string_length(s))
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.String is empty", w);
        p->is_regex = 0;
        p->lit_len = json_string_length(s);
        p->lit = dupn(json_string_value(s), p->lit_len);
        return p->lit ? 0 : oom(L);
    }
    if (json_is_string(r)) {
        p->is_regex = 1;
        return tok_regex_compile(json_string_value(r), json_string_length(r), w, &p->re, L->err);
    }
    return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s must have a string \"String\" or "
                       "\"Regex\"", w);
}

static int literal_pattern(struct loader *L, const char *s, size_t n, struct tok_pattern *p)
{
    p->is_regex = 0;
    p->lit = dupn(s, n);
    p->lit_len = n;
    return p->lit ? 0 : oom(L);
}

/* ---- pipeline components (normalizers, pre-tokenizers, decoders, post-processors) ---- */

/* push_norm, push_pre, push_dec: append a zeroed element to the tokenizer's list. */
#define DEFINE_PUSH(fn, type, list, count)                                                         \
    static int fn(struct loader *L, size_t *cap, type **slot)                                   \
    {                                                                                            \
        type *v = awq_array_reserve(L->t->list, L->t->count, cap, sizeof *v, 4);                 \
        if (!v)                                                                                  \
            return oom(L);                                                                       \
        L->t->list = v;                                                                          \
        *slot = memset(&v[L->t->count++], 0, sizeof *v);                                         \
        return 0;                                                                                \
    }
DEFINE_PUSH(push_norm, struct tok_norm, norms, n_norms)
DEFINE_PUSH(push_pre, struct tok_pre, pres, n_pres)
DEFINE_PUSH(push_dec, struct tok_dec, decs, n_decs)

/* The "type" of a component object, or NULL with the error set. */
static const char *component_type(struct loader *L, const json_t *o, const char *where)
{
    if (!json_is_object(o)) {
        lerr(L, AWQ_ERR_BAD_JSON, "%s must be an object or null", where);
        return NULL;
    }
    const char *type = type_of(o);
    if (!type)
        lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.type is missing", where);
    return type;
}

typedef int (*component_parser)(struct loader *L, const json_t *o, const char *where, size_t *cap,
                                int depth);

/* {"type": "Sequence", "<key>": [component, ...]}: each element through `parse`. */
static int parse_sequence(struct loader *L, const json_t *o, const char *key, const char *where,
                          size_t *cap, int depth, component_parser parse)
{
    const json_t *list = json_object_get(o, key);
    if (!json_is_array(list) || depth > 8)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.%s must be an array", where, key);
    char w[160];
    for (size_t i = 0; i < json_array_size(list); i++) {
        snprintf(w, sizeof w, "%s.%s[%zu]", where, key, i);
        if (parse(L, json_array_get(list, i), w, cap, depth + 1))
            return L->err->code;
    }
    return 0;
}

/* The error for a type this loader does not handle: UNSUPPORTED for a type `tokenizers` knows
 * (listed in `known`), BAD_TOKENIZER for anything else. */
static int unknown_type(struct loader *L, const char *where, const char *type, const char *what,
                        const char *const *known, size_t n_known)
{
    for (size_t i = 0; i < n_known; i++)
        if (!strcmp(type, known[i]))
            return lerr(L, AWQ_ERR_UNSUPPORTED, "%s: %s type '%s' is not supported", where, what, type);
    return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.type '%s' is not a known %s", where, type, what);
}

/* A required string field, copied: *out (NUL-terminated) and *len. */
static int dup_required(struct loader *L, const json_t *o, const char *key, const char *where,
                        char **out, size_t *len)
{
    const char *s;
    if (get_str(L, o, key, where, &s, len))
        return L->err->code;
    if (!s)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.%s is missing", where, key);
    *out = dupn(s, *len);
    return *out ? 0 : oom(L);
}

/* ---- normalizer ---- */

static int parse_normalizer(struct loader *L, const json_t *o, const char *where, size_t *cap, int depth)
{
    const char *type = component_type(L, o, where);
    if (!type)
        return L->err->code;
    struct tok_norm *n;
    if (!strcmp(type, "Sequence"))
        return parse_sequence(L, o, "normalizers", where, cap, depth, parse_normalizer);
    if (!strcmp(type, "Prepend")) {
        if (push_norm(L, cap, &n) || dup_required(L, o, "prepend", where, &n->str, &n->str_len))
            return L->err->code;
        n->kind = TOK_NORM_PREPEND;
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        if (push_norm(L, cap, &n) || dup_required(L, o, "content", where, &n->str, &n->str_len))
            return L->err->code;
        n->kind = TOK_NORM_REPLACE;
        return get_pattern(L, o, where, &n->pat);
    }
    if (!strcmp(type, "NFC") || !strcmp(type, "ByteLevel")) {
        if (push_norm(L, cap, &n))
            return L->err->code;
        n->kind = !strcmp(type, "NFC") ? TOK_NORM_NFC : TOK_NORM_BYTELEVEL;
        return 0;
    }
    static const char *const known[] = { "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents",
                                         "BertNormalizer", "Precompiled", "Nmt", "Append" };
    return unknown_type(L, where, type, "normalizer", known, sizeof known / sizeof known[0]);
}

/* ---- pre-tokenizer ---- */

static int parse_behavior(struct loader *L, const json_t *o, const char *where, enum tok_split_behavior *b)
{
    const char *s;
    if (get_str(L, o, "behavior", where, &s, NULL))
        return L->err->code;
    static const char *const names[] = { "Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                         "Contiguous" };
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, names[i])) {
            *b = (enum tok_split_behavior)i;
            return 0;
        }
    return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.behavior '%s' is not one of Removed, "
                       "Isolated, MergedWithPrevious, MergedWithNext, Contiguous", where, s ? s : "(missing)");
}

static int parse_scheme(struct loader *L, const json_t *o, const char *where, enum tok_prepend_scheme *sch)
{
    /* newer files: prepend_scheme; older ones: add_prefix_space (true = always) */
    const char *s;
    int aps = 1;
    if (get_str(L, o, "prepend_scheme", where, &s, NULL) || get_bool(L, o, "add_prefix_space", where, &aps))
        return L->err->code;
    if (!s) {
        *sch = aps ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
        return 0;
    }
    if (!strcmp(s, "always"))
        *sch = TOK_PREPEND_ALWAYS;
    else if (!strcmp(s, "first"))
        *sch = TOK_PREPEND_FIRST;
    else if (!strcmp(s, "never"))
        *sch = TOK_PREPEND_NEVER;
    else
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.prepend_scheme '%s' is not always, "
                           "first or never", where, s);
    return 0;
}

static int parse_pretokenizer(struct loader *L, const json_t *o, const char *where, size_t *cap, int depth)
{
    const char *type = component_type(L, o, where);
    if (!type)
        return L->err->code;
    struct tok_pre *p;
    if (!strcmp(type, "Sequence"))
        return parse_sequence(L, o, "pretokenizers", where, cap, depth, parse_pretokenizer);
    if (!strcmp(type, "Split")) {
        if (push_pre(L, cap, &p))
            return L->err->code;
        p->kind = TOK_PRE_SPLIT;
        if (parse_behavior(L, o, where, &p->behavior) || get_bool(L, o, "invert", where, &p->invert))
            return L->err->code;
        return get_pattern(L, o, where, &p->pat);
    }
    if (!strcmp(type, "Digits")) {
        /* Digits = Split on \p{N} (each digit alone, or runs of digits) */
        int individual = 0;
        if (get_bool(L, o, "individual_digits", where, &individual) || push_pre(L, cap, &p))
            return L->err->code;
        p->kind = TOK_PRE_SPLIT;
        p->behavior = TOK_SPLIT_ISOLATED;
        p->pat.is_regex = 1;
        const char *re = individual ? "\\p{N}" : "\\p{N}+";
        return tok_regex_compile(re, strlen(re), where, &p->pat.re, L->err);
    }
    if (!strcmp(type, "ByteLevel")) {
        if (push_pre(L, cap, &p))
            return L->err->code;
        p->kind = TOK_PRE_BYTELEVEL;
        p->add_prefix_space = 1;
        p->use_regex = 1;
        if (get_bool(L, o, "add_prefix_space", where, &p->add_prefix_space) ||
            get_bool(L, o, "use_regex", where, &p->use_regex))
            return L->err->code;
        if (p->use_regex) {
            p->pat.is_regex = 1;
            return tok_regex_compile(gpt2_regex, strlen(gpt2_regex), where, &p->pat.re, L->err);
        }
        return 0;
    }
    if (!strcmp(type, "Metaspace")) {
        uint32_t cp = 0x2581;
        if (push_pre(L, cap, &p))
            return L->err->code;
        p->kind = TOK_PRE_METASPACE;
        p->split = 1;
        if (get_char(L, o, "replacement", where, &cp, 0) || parse_scheme(L, o, where, &p->scheme) ||
            get_bool(L, o, "split", where, &p->split))
            return L->err->code;
        p->rep_len = tok_utf8_put(cp, p->rep);
        return literal_pattern(L, p->rep, p->rep_len, &p->pat);
    }
    static const char *const known[] = { "Whitespace", "WhitespaceSplit", "Punctuation", "BertPreTokenizer",
                                         "CharDelimiterSplit", "UnicodeScripts", "FixedLength" };
    return unknown_type(L, where, type, "pre-tokenizer", known, sizeof known / sizeof known[0]);
}

/* ---- decoder ---- */

static int parse_decoder(struct loader *L, const json_t *o, const char *where, size_t *cap, int depth)
{
    const char *type = component_type(L, o, where);
    if (!type)
        return L->err->code;
    struct tok_dec *d;
    if (!strcmp(type, "Sequence"))
        return parse_sequence(L, o, "decoders", where, cap, depth, parse_decoder);
    if (!strcmp(type, "Replace")) {
        if (push_dec(L, cap, &d) || dup_required(L, o, "content", where, &d->str, &d->str_len))
            return L->err->code;
        d->kind = TOK_DEC_REPLACE;
        return get_pattern(L, o, where, &d->pat);
    }
    if (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse") || !strcmp(type, "ByteLevel")) {
        if (push_dec(L, cap, &d))
            return L->err->code;
        d->kind = !strcmp(type, "ByteFallback") ? TOK_DEC_BYTE_FALLBACK
                  : !strcmp(type, "Fuse")       ? TOK_DEC_FUSE
                                                : TOK_DEC_BYTELEVEL;
        return 0;
    }
    if (!strcmp(type, "Strip")) {
        long long start = 0, stop = 0;
        if (push_dec(L, cap, &d))
            return L->err->code;
        d->kind = TOK_DEC_STRIP;
        if (get_char(L, o, "content", where, &d->cp, 1) || get_int(L, o, "start", where, 0, 1 << 20, &start) ||
            get_int(L, o, "stop", where, 0, 1 << 20, &stop))
            return L->err->code;
        d->start = (int)start;
        d->stop = (int)stop;
        return 0;
    }
    if (!strcmp(type, "Metaspace")) {
        if (push_dec(L, cap, &d))
            return L->err->code;
        d->kind = TOK_DEC_METASPACE;
        d->cp = 0x2581;
        if (get_char(L, o, "replacement", where, &d->cp, 0) || parse_scheme(L, o, where, &d->scheme))
            return L->err->code;
        return 0;
    }
    static const char *const known[] = { "WordPiece", "BPEDecoder", "CTC" };
    return unknown_type(L, where, type, "decoder", known, sizeof known / sizeof known[0]);
}

/* ---- the BPE model ---- */

static const char *key_of(void *iter, size_t *len)
{
    const char *k = json_object_iter_key(iter);
#if JANSSON_VERSION_HEX >= 0x020E00
    *len = json_object_iter_key_len(iter);
#else
    *len = strlen(k);
#endif
    return k;
}

static int parse_model(struct loader *L, const json_t *m)
{
    struct tok_bpe *b = &L->t->bpe;
    if (!json_is_object(m))
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model is missing (an object)");
    const char *type = type_of(m);
    if (type && strcmp(type, "BPE")) {
        if (!strcmp(type, "WordPiece") || !strcmp(type, "Unigram") || !strcmp(type, "WordLevel"))
            return lerr(L, AWQ_ERR_UNSUPPORTED, "model.type '%s' is not supported "
                               "(only BPE)", type);
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.type '%s' is not a known model "
                           "type", type);
    }
    if (!type && json_object_get(m, "type"))
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.type must be a string");
    const json_t *vocab = json_object_get(m, "vocab");
    const json_t *merges = json_object_get(m, "merges");
    if (!json_is_object(vocab))
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.vocab is missing (an object of "
                           "token: id)");
    if (!json_is_array(merges))
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.merges is missing (an array)");

    const json_t *dropout = json_object_get(m, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return lerr(L, AWQ_ERR_UNSUPPORTED, "model.dropout (BPE dropout) is not supported");
    if (get_bool(L, m, "fuse_unk", "model", &b->fuse_unk) ||
        get_bool(L, m, "byte_fallback", "model", &b->byte_fallback) ||
        get_bool(L, m, "ignore_merges", "model", &b->ignore_merges))
        return L->err->code;
    const char *s;
    size_t len;
    if (get_str(L, m, "continuing_subword_prefix", "model", &s, &len))
        return L->err->code;
    if (s && len) {
        if (!(b->prefix = dupn(s, len)))
            return oom(L);
        b->prefix_len = len;
    }
    if (get_str(L, m, "end_of_word_suffix", "model", &s, &len))
        return L->err->code;
    if (s && len) {
        if (!(b->suffix = dupn(s, len)))
            return oom(L);
        b->suffix_len = len;
    }

    /* vocab: distinct tokens -> exactly the ids 0..n-1 */
    size_t n = json_object_size(vocab);
    if (n == 0)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.vocab is empty");
    if (n >= TOK_MAX_ID)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.vocab has %zu entries (at most %d)",
                           n, TOK_MAX_ID - 1);
    b->n_vocab = (uint32_t)n;
    b->id_ent = malloc(n * sizeof *b->id_ent);
    if (!b->id_ent)
        return oom(L);
    memset(b->id_ent, 0xFF, n * sizeof *b->id_ent);
    for (void *it = json_object_iter((json_t *)vocab); it; it = json_object_iter_next((json_t *)vocab, it)) {
        size_t klen;
        const char *k = key_of(it, &klen);
        const json_t *v = json_object_iter_value(it);
        if (!json_is_integer(v))
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.vocab['%s'] must be an integer id", k);
        long long id = json_integer_value(v);
        if (id < 0 || (size_t)id >= n)
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.vocab['%s'] = %lld is out of range "
                               "(the vocab has %zu entries, so ids must be 0..%zu)", k, id, n, n - 1);
        if (b->id_ent[id] != UINT32_MAX) {
            size_t ol;
            const char *other = tok_strmap_key(&b->vocab, b->id_ent[id], &ol);
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.vocab: id %lld is given to both "
                               "'%s' and '%s'", id, other, k);
        }
        uint32_t ent;
        int rc = tok_strmap_put(&b->vocab, k, klen, (int32_t)id, &ent);
        if (rc < 0)
            return oom(L);
        if (rc == 1)   /* only with NUL-truncated keys on an old Jansson */
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.vocab: token '%s' appears twice", k);
        b->id_ent[id] = ent;
    }

    /* merges: "a b" strings (exactly one space; "#version" lines skipped) or ["a", "b"] pairs */
    uint32_t rank = 0;
    struct tok_buf joined = { 0 };
    for (size_t i = 0; i < json_array_size(merges); i++) {
        const json_t *e = json_array_get(merges, i);
        const char *a, *c;
        size_t al, cl;
        if (json_is_string(e)) {
            const char *line = json_string_value(e);
            size_t ll = json_string_length(e);
            if (ll >= 8 && !memcmp(line, "#version", 8))
                continue;
            const char *sp = memchr(line, ' ', ll);
            if (!sp || memchr(sp + 1, ' ', ll - (size_t)(sp + 1 - line))) {
                tok_buf_free(&joined);
                return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.merges[%zu] = '%s' is not "
                                   "two tokens separated by one space", i, line);
            }
            a = line;
            al = (size_t)(sp - line);
            c = sp + 1;
            cl = ll - al - 1;
        } else if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            a = json_string_value(json_array_get(e, 0));
            al = json_string_length(json_array_get(e, 0));
            c = json_string_value(json_array_get(e, 1));
            cl = json_string_length(json_array_get(e, 1));
        } else {
            tok_buf_free(&joined);
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.merges[%zu] must be a string "
                               "\"a b\" or a pair [\"a\", \"b\"]", i);
        }
        int32_t ia = tok_strmap_get(&b->vocab, a, al), ic = tok_strmap_get(&b->vocab, c, cl);
        if (ia < 0 || ic < 0) {
            tok_buf_free(&joined);
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.merges[%zu]: '%.*s' is not in "
                               "model.vocab", i, (int)(ia < 0 ? al : cl), ia < 0 ? a : c);
        }
        if (cl < b->prefix_len) {
            tok_buf_free(&joined);
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.merges[%zu]: '%.*s' is shorter "
                               "than continuing_subword_prefix", i, (int)cl, c);
        }
        joined.len = 0;
        if (tok_buf_put(&joined, a, al) || tok_buf_put(&joined, c + b->prefix_len, cl - b->prefix_len)) {
            tok_buf_free(&joined);
            return oom(L);
        }
        int32_t im = tok_strmap_get(&b->vocab, joined.p, joined.len);
        if (im < 0) {
            lerr(L, AWQ_ERR_BAD_TOKENIZER, "model.merges[%zu]: the merged token '%.*s' "
                        "is not in model.vocab", i, (int)joined.len, joined.p);
            tok_buf_free(&joined);
            return L->err->code;
        }
        if (tok_pairmap_set(&b->merges, ia, ic, rank++, im)) {
            tok_buf_free(&joined);
            return oom(L);
        }
    }
    tok_buf_free(&joined);

    for (int x = 0; x < 256; x++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", x);
        b->byte_id[x] = tok_strmap_get(&b->vocab, name, 6);
    }
    for (uint32_t cp = 0; cp < 512; cp++) {
        char u[4];
        size_t ul = tok_utf8_put(cp, u);
        b->char_id[cp] = tok_strmap_get(&b->vocab, u, ul);
    }
    b->unk_id = -1;
    if (get_str(L, m, "unk_token", "model", &s, &len))
        return L->err->code;
    if (s) {
        b->has_unk_token = 1;
        if (!(b->unk_token = dupn(s, len)))
            return oom(L);
        b->unk_id = tok_strmap_get(&b->vocab, s, len);
    }
    return 0;
}

/* ---- added tokens ---- */

static int32_t token_to_id(struct loader *L, const char *s, size_t len)
{
    int32_t k = tok_strmap_get(&L->added_map, s, len);
    if (k >= 0)
        return L->t->added[k].id;
    return tok_strmap_get(&L->t->bpe.vocab, s, len);
}

/* Registers an added token as tokenizers' AddedVocabulary::add_tokens does: a token already known
 * (added or in the model vocab) keeps that id, a new one takes the next free id after the model
 * vocab; the ids written in the file are not used (tokenizers only warns about a mismatch). */
static int add_token(struct loader *L, const char *content, size_t len, int special, int normalized,
                     int lstrip, int rstrip, int single_word)
{
    struct awq_tok *t = L->t;
    if (!len)
        return 0;
    int32_t k = tok_strmap_get(&L->added_map, content, len);
    if (k < 0) {
        int32_t id = tok_strmap_get(&t->bpe.vocab, content, len);
        if (id < 0) {
            int32_t max = -1;
            for (size_t i = 0; i < t->n_added; i++)
                if (t->added[i].id > max)
                    max = t->added[i].id;
            id = (max < 0 || (uint32_t)max < t->bpe.n_vocab) ? (int32_t)t->bpe.n_vocab : max + 1;
            if (id >= TOK_MAX_ID)
                return lerr(L, AWQ_ERR_BAD_TOKENIZER, "added_tokens: more than %d ids", TOK_MAX_ID);
        }
        if (t->n_added == L->cap_added) {
            size_t c = L->cap_added ? L->cap_added * 2 : 16;
            struct tok_added *v = realloc(t->added, c * sizeof *v);
            if (!v)
                return oom(L);
            t->added = v;
            L->cap_added = c;
        }
        k = (int32_t)t->n_added;
        struct tok_added *a = &t->added[k];
        memset(a, 0, sizeof *a);
        a->id = id;
        if (!(a->content = dupn(content, len)))
            return oom(L);
        a->len = len;
        t->n_added++;
        if (tok_strmap_put(&L->added_map, content, len, k, NULL) < 0)
            return oom(L);
    }
    struct tok_added *a = &t->added[k];
    /* once special, always special (tokenizers keeps a set of special contents) */
    a->special = a->special || special;
    a->normalized = normalized;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    a->single_word = single_word;
    return 0;
}

static int parse_added_token(struct loader *L, const json_t *o, const char *where, int default_special)
{
    const char *content;
    size_t len;
    if (!json_is_object(o))
        return lerr(L, AWQ_ERR_BAD_JSON, "%s must be an object", where);
    if (get_str(L, o, "content", where, &content, &len))
        return L->err->code;
    if (!content)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.content is missing", where);
    int special = default_special, lstrip = 0, rstrip = 0, single_word = 0, normalized;
    if (get_bool(L, o, "special", where, &special))
        return L->err->code;
    normalized = !special;
    if (get_bool(L, o, "normalized", where, &normalized) || get_bool(L, o, "lstrip", where, &lstrip) ||
        get_bool(L, o, "rstrip", where, &rstrip) || get_bool(L, o, "single_word", where, &single_word))
        return L->err->code;
    return add_token(L, content, len, special, normalized, lstrip, rstrip, single_word);
}

/* ---- post-processor ---- */

static int tmpl_push(struct loader *L, size_t *cap, int32_t x)
{
    struct awq_tok *t = L->t;
    if (t->n_tmpl == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        int32_t *v = realloc(t->tmpl, c * sizeof *v);
        if (!v)
            return oom(L);
        t->tmpl = v;
        *cap = c;
    }
    t->tmpl[t->n_tmpl++] = x;
    return 0;
}

static int check_id(struct loader *L, long long id, const char *where)
{
    if (id < 0 || id >= TOK_MAX_ID)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s: id %lld is out of range", where, id);
    return 0;
}

static int parse_template(struct loader *L, const json_t *o, const char *where, size_t *cap)
{
    const json_t *single = json_object_get(o, "single");
    const json_t *specials = json_object_get(o, "special_tokens");
    char w[200];
    if (!json_is_array(single))
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.single is missing (an array)", where);
    int has_seq = 0;
    for (size_t i = 0; i < json_array_size(single); i++) {
        const json_t *item = json_array_get(single, i);
        const json_t *sp = json_object_get(item, "SpecialToken");
        const json_t *sq = json_object_get(item, "Sequence");
        snprintf(w, sizeof w, "%s.single[%zu]", where, i);
        if (json_is_object(sq)) {
            const json_t *id = json_object_get(sq, "id");
            if (!json_is_string(id) || strcmp(json_string_value(id), "A") || has_seq)
                return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s: a single-sequence template "
                                   "takes sequence \"A\" once", w);
            has_seq = 1;
            if (tmpl_push(L, cap, TOK_TMPL_SEQ))
                return L->err->code;
        } else if (json_is_object(sp)) {
            const json_t *name = json_object_get(sp, "id");
            if (!json_is_string(name))
                return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.SpecialToken.id must be a string", w);
            const json_t *st = json_object_get(specials, json_string_value(name));
            const json_t *ids = json_object_get(st, "ids");
            if (!json_is_array(ids))
                return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s: special token '%s' is not in "
                                   "%s.special_tokens (with its ids)", w, json_string_value(name), where);
            for (size_t j = 0; j < json_array_size(ids); j++) {
                const json_t *v = json_array_get(ids, j);
                if (!json_is_integer(v))
                    return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.special_tokens['%s'].ids must "
                                       "be integers", where, json_string_value(name));
                if (check_id(L, json_integer_value(v), w) || tmpl_push(L, cap, (int32_t)json_integer_value(v)))
                    return L->err->code;
            }
        } else {
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s must be {\"SpecialToken\": ...} or "
                               "{\"Sequence\": ...}", w);
        }
    }
    if (!has_seq)
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.single has no sequence \"A\"", where);
    return 0;
}

/* ["<s>", 0] of RobertaProcessing / BertProcessing */
static int pair_id(struct loader *L, const json_t *o, const char *key, const char *where, int32_t *id)
{
    const json_t *p = json_object_get(o, key);
    if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(json_array_get(p, 1)))
        return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.%s must be [token, id]", where, key);
    long long v = json_integer_value(json_array_get(p, 1));
    if (check_id(L, v, where))
        return L->err->code;
    *id = (int32_t)v;
    return 0;
}

static int parse_post(struct loader *L, const json_t *o, const char *where, size_t *cap, int depth)
{
    const char *type = component_type(L, o, where);
    if (!type)
        return L->err->code;
    if (!strcmp(type, "ByteLevel"))
        return 0;   /* only adjusts offsets */
    if (L->t->n_tmpl && strcmp(type, "Sequence"))
        return lerr(L, AWQ_ERR_UNSUPPORTED, "%s: more than one template post-processor",
                           where);
    if (!strcmp(type, "Sequence"))
        return parse_sequence(L, o, "processors", where, cap, depth, parse_post);
    if (!strcmp(type, "TemplateProcessing"))
        return parse_template(L, o, where, cap);
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        int32_t cls, sep;
        if (pair_id(L, o, "cls", where, &cls) || pair_id(L, o, "sep", where, &sep) ||
            tmpl_push(L, cap, cls) || tmpl_push(L, cap, TOK_TMPL_SEQ) || tmpl_push(L, cap, sep))
            return L->err->code;
        return 0;
    }
    return lerr(L, AWQ_ERR_UNSUPPORTED, "%s: post-processor type '%s' is not supported",
                       where, type);
}

/* ---- tokenizer_config.json ---- */

/* "<s>" or {"content": "<s>", ...} */
static const char *config_token(const json_t *cfg, const char *key, size_t *len)
{
    const json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static int config_special(struct loader *L, const json_t *v)
{
    /* transformers adds the named special tokens it does not know yet: special, not normalized */
    const char *s = NULL;
    size_t len = 0;
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);
    }
    if (!s || tok_strmap_get(&L->added_map, s, len) >= 0)
        return 0;
    return add_token(L, s, len, 1, 0, 0, 0, 0);
}

/* transformers 5 builds LlamaTokenizer(Fast) itself from the vocabulary and merges of
 * tokenizer.json, ignoring the file's normalizer, pre-tokenizer and decoder: Metaspace("▁",
 * split = false) with prepend_scheme "always" (legacy = true), "first" (legacy = false, the
 * default) or "never" (add_prefix_space = false), and the decoder Replace("▁", " "),
 * ByteFallback, Fuse, Strip(1 leading space) when the prefix is added. The two differ for text
 * that starts with a space (the file's Prepend normalizer adds a second ▁) and, with "first", for
 * text after a special token. AutoTokenizer is what the reference numbers of a model come from, so
 * a model directory loads this way. Only SentencePiece-style files are rebuilt: a byte-level one
 * that names the Llama class would be broken by it. */
static int llama_pipeline(struct loader *L, const json_t *cfg)
{
    struct awq_tok *t = L->t;
    int sp = t->bpe.byte_fallback;
    for (size_t i = 0; i < t->n_norms; i++) {
        if (t->norms[i].kind == TOK_NORM_PREPEND)
            sp = 1;
        if (t->norms[i].kind == TOK_NORM_BYTELEVEL)
            return 0;
    }
    for (size_t i = 0; i < t->n_pres; i++) {
        if (t->pres[i].kind == TOK_PRE_METASPACE)
            sp = 1;
        if (t->pres[i].kind == TOK_PRE_BYTELEVEL)
            return 0;
    }
    for (size_t i = 0; i < t->n_decs; i++)
        if (t->decs[i].kind == TOK_DEC_BYTELEVEL)
            return 0;
    if (!sp)
        return 0;
    const json_t *aps = json_object_get(cfg, "add_prefix_space"), *leg = json_object_get(cfg, "legacy");
    int prefix = json_is_boolean(aps) ? json_is_true(aps) : 1;
    int legacy = json_is_boolean(leg) ? json_is_true(leg) : 0;

    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].str);
        tok_pattern_free(&t->norms[i].pat);
    }
    t->n_norms = 0;
    for (size_t i = 0; i < t->n_pres; i++)
        tok_pattern_free(&t->pres[i].pat);
    t->n_pres = 0;
    for (size_t i = 0; i < t->n_decs; i++) {
        free(t->decs[i].str);
        tok_pattern_free(&t->decs[i].pat);
    }
    t->n_decs = 0;
    t->has_decoder = 1;
    t->bpe.fuse_unk = 1;
    t->bpe.byte_fallback = 1;

    static const char rep[] = "\xe2\x96\x81";   /* ▁ */
    size_t cap = 0;
    struct tok_pre *p;
    if (push_pre(L, &cap, &p))
        return L->err->code;
    p->kind = TOK_PRE_METASPACE;
    p->scheme = !prefix ? TOK_PREPEND_NEVER : legacy ? TOK_PREPEND_ALWAYS : TOK_PREPEND_FIRST;
    p->split = 0;
    memcpy(p->rep, rep, 3);
    p->rep_len = 3;
    if (literal_pattern(L, rep, 3, &p->pat))
        return L->err->code;
    cap = 0;
    struct tok_dec *d;
    if (push_dec(L, &cap, &d))
        return L->err->code;
    d->kind = TOK_DEC_REPLACE;
    if (!(d->str = dupn(" ", 1)) || literal_pattern(L, rep, 3, &d->pat))
        return oom(L);
    d->str_len = 1;
    if (push_dec(L, &cap, &d))
        return L->err->code;
    d->kind = TOK_DEC_BYTE_FALLBACK;
    if (push_dec(L, &cap, &d))
        return L->err->code;
    d->kind = TOK_DEC_FUSE;
    if (prefix) {
        if (push_dec(L, &cap, &d))
            return L->err->code;
        d->kind = TOK_DEC_STRIP;
        d->cp = ' ';
        d->start = 1;
    }
    return 0;
}

static int cmp_keyed(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static int parse_config(struct loader *L, const json_t *cfg, int32_t *bos, int32_t *eos, size_t *tcap)
{
    struct awq_tok *t = L->t;
    if (!json_is_object(cfg))
        return lerr(L, AWQ_ERR_BAD_JSON, "the top level must be an object");

    /* added_tokens_decoder entries not in tokenizer.json, in id order */
    const json_t *atd = json_object_get(cfg, "added_tokens_decoder");
    if (json_is_object(atd) && json_object_size(atd)) {
        size_t n = 0, cap = json_object_size(atd);
        struct keyed { long long id; const json_t *v; } *v = malloc(cap * sizeof *v);
        if (!v)
            return oom(L);
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)atd, key, val) {
            char *end;
            long long id = strtoll(key, &end, 10);
            if (*end || end == key || id < 0) {
                free(v);
                return lerr(L, AWQ_ERR_BAD_JSON, "added_tokens_decoder key '%s' is not an id", key);
            }
            v[n].id = id;
            v[n++].v = val;
        }
        qsort(v, n, sizeof *v, cmp_keyed);
        for (size_t i = 0; i < n; i++) {
            char w[64];
            snprintf(w, sizeof w, "added_tokens_decoder['%lld']", v[i].id);
            const json_t *c = json_object_get(v[i].v, "content");
            if (!json_is_string(c) || tok_strmap_get(&L->added_map, json_string_value(c), json_string_length(c)) < 0)
                if (parse_added_token(L, v[i].v, w, 0)) {
                    free(v);
                    return L->err->code;
                }
        }
        free(v);
    }
    static const char *const named[] = { "bos_token", "eos_token", "unk_token", "pad_token" };
    for (size_t i = 0; i < 4; i++)
        if (config_special(L, json_object_get(cfg, named[i])))
            return L->err->code;
    const json_t *extra = json_object_get(cfg, "additional_special_tokens");
    for (size_t i = 0; json_is_array(extra) && i < json_array_size(extra); i++)
        if (config_special(L, json_array_get(extra, i)))
            return L->err->code;

    size_t len;
    const char *s;
    if ((s = config_token(cfg, "bos_token", &len)))
        *bos = token_to_id(L, s, len);
    if ((s = config_token(cfg, "eos_token", &len)))
        *eos = token_to_id(L, s, len);

    const json_t *cls = json_object_get(cfg, "tokenizer_class");
    const char *cn = json_is_string(cls) ? json_string_value(cls) : "";
    int llama = !strncmp(cn, "LlamaTokenizer", 14) || !strncmp(cn, "CodeLlamaTokenizer", 18) ||
                !strncmp(cn, "GemmaTokenizer", 14);
    if (!strcmp(cn, "LlamaTokenizer") || !strcmp(cn, "LlamaTokenizerFast")) {
        if (llama_pipeline(L, cfg))
            return L->err->code;
        if (*bos < 0)
            *bos = token_to_id(L, "<s>", 3);
        if (*eos < 0)
            *eos = token_to_id(L, "</s>", 4);
    }

    /* add_bos_token / add_eos_token rebuild the template as transformers does: always for the
     * Llama-family classes (whose defaults are BOS yes, EOS no), else when the config sets one */
    const json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
    if (!llama && !json_is_boolean(ab) && !json_is_boolean(ae))
        return 0;
    int add_bos = json_is_boolean(ab) ? json_is_true(ab) : llama;
    int add_eos = json_is_boolean(ae) ? json_is_true(ae) : 0;
    t->n_tmpl = 0;
    if ((add_bos && *bos >= 0 && tmpl_push(L, tcap, *bos)) || tmpl_push(L, tcap, TOK_TMPL_SEQ) ||
        (add_eos && *eos >= 0 && tmpl_push(L, tcap, *eos)))
        return L->err->code;
    return 0;
}

/* ---- files ---- */

static int load_json(const char *path, const char *name, json_t **out, struct awq_errbuf *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return awq_err_set(err, errno == ENOENT ? AWQ_ERR_NOT_FOUND : AWQ_ERR_IO, "%s: cannot open %s: %s",
                           name, path, strerror(errno));
    json_error_t je;
    *out = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err)
        return awq_err_set(err, AWQ_ERR_IO, "%s: read error on %s", name, path);
    if (!*out)
        return awq_err_set(err, AWQ_ERR_BAD_JSON, "%s: line %d, column %d: %s", name, je.line, je.column,
                           je.text);
    return 0;
}

void tok_free_all(struct awq_tok *t)
{
    if (!t)
        return;
    tok_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].norm);
    }
    free(t->added);
    tok_trie_free(&t->trie_raw);
    tok_trie_free(&t->trie_norm);
    free(t->added_of_id);
    free(t->special_id);
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].str);
        tok_pattern_free(&t->norms[i].pat);
    }
    free(t->norms);
    for (size_t i = 0; i < t->n_pres; i++)
        tok_pattern_free(&t->pres[i].pat);
    free(t->pres);
    for (size_t i = 0; i < t->n_decs; i++) {
        free(t->decs[i].str);
        tok_pattern_free(&t->decs[i].pat);
    }
    free(t->decs);
    free(t->tmpl);
    if (t->re_word)
        pcre2_code_free(t->re_word);
    if (t->re_space)
        pcre2_code_free(t->re_space);
    free(t);
}

void awq_tok_free(struct awq_tok *t)
{
    tok_free_all(t);
}

static int build(struct loader *L, const json_t *root, const json_t *cfg)
{
    struct awq_tok *t = L->t;
    if (!json_is_object(root))
        return lerr(L, AWQ_ERR_BAD_JSON, "the top level must be an object");
    const json_t *ver = json_object_get(root, "version");
    if (json_is_string(ver) && strcmp(json_string_value(ver), "1.0"))
        return lerr(L, AWQ_ERR_UNSUPPORTED, "version '%s' is not supported (1.0 is)",
                           json_string_value(ver));
    if (parse_model(L, json_object_get(root, "model")))
        return L->err->code;

    size_t cap = 0;
    const json_t *o;
    if ((o = json_object_get(root, "normalizer")) && !json_is_null(o) && parse_normalizer(L, o, "normalizer", &cap, 0))
        return L->err->code;
    cap = 0;
    if ((o = json_object_get(root, "pre_tokenizer")) && !json_is_null(o) &&
        parse_pretokenizer(L, o, "pre_tokenizer", &cap, 0))
        return L->err->code;
    cap = 0;
    if ((o = json_object_get(root, "decoder")) && !json_is_null(o)) {
        t->has_decoder = 1;
        if (parse_decoder(L, o, "decoder", &cap, 0))
            return L->err->code;
    }
    size_t tcap = 0;
    if ((o = json_object_get(root, "post_processor")) && !json_is_null(o) &&
        parse_post(L, o, "post_processor", &tcap, 0))
        return L->err->code;
    if (!t->n_tmpl && tmpl_push(L, &tcap, TOK_TMPL_SEQ))
        return L->err->code;

    const json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added))
        return lerr(L, AWQ_ERR_BAD_JSON, "added_tokens must be an array");
    for (size_t i = 0; i < json_array_size(added); i++) {
        char w[64];
        snprintf(w, sizeof w, "added_tokens[%zu]", i);
        const json_t *a = json_array_get(added, i);
        if (json_is_object(a)) {
            long long id = 0;
            /* the id is checked for shape only: tokenizers assigns ids itself (see add_token) */
            if (!json_is_integer(json_object_get(a, "id")))
                return lerr(L, AWQ_ERR_BAD_TOKENIZER, "%s.id must be an integer", w);
            if (get_int(L, a, "id", w, 0, TOK_MAX_ID - 1, &id))
                return L->err->code;
        }
        if (parse_added_token(L, a, w, 0))
            return L->err->code;
    }

    t->bos = t->eos = -1;
    L->file = TC;
    if (cfg && parse_config(L, cfg, &t->bos, &t->eos, &tcap))
        return L->err->code;
    L->file = TJ;
    /* without a config, BOS/EOS are what the template puts around the text */
    size_t seq = 0;
    while (t->tmpl[seq] != TOK_TMPL_SEQ)
        seq++;
    if (t->bos < 0 && seq > 0)
        t->bos = t->tmpl[seq - 1];
    if (t->eos < 0 && seq + 1 < t->n_tmpl)
        t->eos = t->tmpl[seq + 1];

    /* id tables */
    int32_t vs = (int32_t)t->bpe.n_vocab;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id >= vs)
            vs = t->added[i].id + 1;
    for (size_t i = 0; i < t->n_tmpl; i++)
        if (t->tmpl[i] != TOK_TMPL_SEQ && t->tmpl[i] >= vs)
            return lerr(L, AWQ_ERR_BAD_TOKENIZER, "post_processor: id %d is not in the "
                               "vocabulary (%d ids)", t->tmpl[i], vs);
    t->vocab_size = vs;
    t->added_of_id = malloc((size_t)vs * sizeof *t->added_of_id);
    t->special_id = calloc((size_t)vs, 1);
    if (!t->added_of_id || !t->special_id)
        return oom(L);
    memset(t->added_of_id, 0xFF, (size_t)vs * sizeof *t->added_of_id);

    /* matchers: raw text for normalized == false, normalized text (the token normalized the same
     * way) for normalized == true */
    struct tok_buf nb = { 0 };
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    if (!md)
        return oom(L);
    int rc = 0;
    if (tok_trie_add(&t->trie_raw, "", 0, -1) || tok_trie_add(&t->trie_norm, "", 0, -1))
        rc = oom(L);
    for (size_t i = 0; i < t->n_added && !rc; i++) {
        struct tok_added *a = &t->added[i];
        t->added_of_id[a->id] = (int32_t)i;
        t->special_id[a->id] = a->special;
        if (!a->normalized) {
            if (tok_trie_add(&t->trie_raw, a->content, a->len, (int32_t)i))
                rc = oom(L);
            continue;
        }
        rc = tok_normalize(t, a->content, a->len, md, &nb, L->err);
        if (!rc && !(a->norm = dupn(nb.p ? nb.p : "", nb.len)))
            rc = oom(L);
        if (!rc) {
            a->norm_len = nb.len;
            if (tok_trie_add(&t->trie_norm, a->norm, a->norm_len, (int32_t)i))
                rc = oom(L);
        }
    }
    pcre2_match_data_free(md);
    tok_buf_free(&nb);
    if (rc)
        return rc;
    /* may long words be cut before "▁"? (see split_at_metaspace) */
    const struct tok_bpe *b = &t->bpe;
    t->split_at_metaspace = tok_strmap_get(&b->vocab, "\xe2\x96\x81", 3) >= 0 && !b->ignore_merges &&
                            !b->prefix && !b->suffix;
    for (uint32_t i = 0; i <= b->merges.mask && t->split_at_metaspace && b->merges.slots; i++) {
        if (b->merges.slots[i].key == UINT64_MAX)
            continue;
        size_t ml;
        const char *m = tok_strmap_key(&b->vocab, b->id_ent[b->merges.slots[i].id], &ml);
        for (size_t k = 1; k + 3 <= ml; k++)
            if (!memcmp(m + k, "\xe2\x96\x81", 3) && (k < 3 || memcmp(m + k - 3, "\xe2\x96\x81", 3))) {
                t->split_at_metaspace = 0;
                break;
            }
    }
    /* single_word / lstrip / rstrip use Rust's Unicode \w and \s: \w is Alphabetic, marks,
     * decimal digits, connector punctuation and the joiners (PCRE2's \w lacks marks); binary
     * properties need PCRE2 10.40, older ones get \w */
    static const char word[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]";
    if (tok_regex_compile(word, sizeof word - 1, "(internal)", &t->re_word, L->err) &&
        tok_regex_compile("\\w", 2, "(internal)", &t->re_word, L->err))
        return L->err->code;
    if (tok_regex_compile("\\s", 2, "(internal)", &t->re_space, L->err))
        return L->err->code;
    return 0;
}

int awq_tok_load(const char *path, struct awq_tok **out, struct awq_errbuf *err)
{
    if (!path || !out)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "tokenizer load: NULL argument");
    *out = NULL;
    struct stat st;
    if (stat(path, &st))
        return awq_err_set(err, errno == ENOENT ? AWQ_ERR_NOT_FOUND : AWQ_ERR_IO, "tokenizer: %s: %s", path,
                           strerror(errno));
    size_t pl = strlen(path);
    char *tj = malloc(pl + 32), *tc = malloc(pl + 32);
    if (!tj || !tc) {
        free(tj);
        free(tc);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(tj, pl + 32, "%s/" TJ, path);
        snprintf(tc, pl + 32, "%s/" TC, path);
    } else {
        /* a tokenizer.json file alone: exactly what the tokenizers library makes of it */
        memcpy(tj, path, pl + 1);
        free(tc);
        tc = NULL;
    }

    json_t *root = NULL, *cfg = NULL;
    struct loader L;
    memset(&L, 0, sizeof L);
    L.err = err;
    L.file = TJ;
    int rc = load_json(tj, TJ, &root, err);
    if (!rc && tc) {
        FILE *f = fopen(tc, "rb");
        if (f) {
            fclose(f);
            rc = load_json(tc, TC, &cfg, err);
        }
    }
    if (!rc) {
        L.t = calloc(1, sizeof *L.t);
        rc = L.t ? build(&L, root, cfg) : awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    tok_strmap_free(&L.added_map);
    json_decref(root);
    json_decref(cfg);
    free(tj);
    free(tc);
    if (rc) {
        tok_free_all(L.t);
        return rc;
    }
    *out = L.t;
    return 0;
}

int awq_tok_vocab_size(const struct awq_tok *t)
{
    return t ? t->vocab_size : 0;
}

int awq_tok_bos(const struct awq_tok *t)
{
    return t ? t->bos : -1;
}

int awq_tok_eos(const struct awq_tok *t)
{
    return t ? t->eos : -1;
}
