/* Private structures of the tokenizer: what tokenizer.json describes, in the form the encoder and
 * decoder walk. Shared by the files of src/tokenizer only. */
#ifndef AWQ_TOKENIZER_INTERNAL_H
#define AWQ_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/map.h"
#include "tokenizer/util.h"
#include "util/error.h"

/* Largest id accepted anywhere (model vocab or added token): far above any real vocabulary, low
 * enough that id-indexed tables stay small for a hostile file. */
#define TOK_MAX_ID (1 << 24)

/* ---- patterns (Split, Replace) ---- */
struct tok_pattern {
    int is_regex;
    char *lit;              /* literal text (is_regex == 0), never empty */
    size_t lit_len;
    pcre2_code *re;         /* compiled with UTF, UCP and MATCH_INVALID_UTF */
};

/* Finds the next match of `p` in s[from..len): returns 1 and sets [*ms, *me), or 0 when none.
 * Empty regex matches are skipped, as tokenizers' splitting ignores them. A negative return is a
 * regex engine failure (a PCRE2 error code). */
int tok_pattern_next(const struct tok_pattern *p, pcre2_match_data *md, const char *s, size_t len,
                     size_t from, size_t *ms, size_t *me);
void tok_pattern_free(struct tok_pattern *p);
/* Compiles a regex; on failure sets err (AWQ_ERR_UNSUPPORTED, naming `where`). */
int tok_regex_compile(const char *src, size_t len, const char *where, pcre2_code **out,
                      struct awq_errbuf *err);

/* ---- normalizers ---- */
enum tok_norm_kind { TOK_NORM_PREPEND, TOK_NORM_REPLACE, TOK_NORM_NFC, TOK_NORM_BYTELEVEL };

struct tok_norm {
    enum tok_norm_kind kind;
    char *str;              /* PREPEND: the prefix; REPLACE: the replacement */
    size_t str_len;
    struct tok_pattern pat; /* REPLACE */
};

/* ---- pre-tokenizers ---- */
enum tok_split_behavior {
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_PREV,
    TOK_SPLIT_MERGED_NEXT,
    TOK_SPLIT_CONTIGUOUS
};
enum tok_prepend_scheme { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };
enum tok_pre_kind { TOK_PRE_SPLIT, TOK_PRE_BYTELEVEL, TOK_PRE_METASPACE };

struct tok_pre {
    enum tok_pre_kind kind;
    struct tok_pattern pat;         /* SPLIT; BYTELEVEL with use_regex (GPT-2's pattern) */
    enum tok_split_behavior behavior;
    int invert;
    int add_prefix_space;           /* BYTELEVEL */
    int use_regex;                  /* BYTELEVEL */
    char rep[4];                    /* METASPACE replacement character (UTF-8) */
    size_t rep_len;
    enum tok_prepend_scheme scheme; /* METASPACE */
    int split;                      /* METASPACE */
};

/* ---- decoders ---- */
enum tok_dec_kind {
    TOK_DEC_REPLACE,
    TOK_DEC_BYTE_FALLBACK,
    TOK_DEC_FUSE,
    TOK_DEC_STRIP,
    TOK_DEC_BYTELEVEL,
    TOK_DEC_METASPACE
};

struct tok_dec {
    enum tok_dec_kind kind;
    struct tok_pattern pat;         /* REPLACE */
    char *str;                      /* REPLACE: content */
    size_t str_len;
    uint32_t cp;                    /* STRIP: the character; METASPACE: the replacement */
    int start, stop;                /* STRIP */
    enum tok_prepend_scheme scheme; /* METASPACE */
};

/* ---- added tokens ---- */
struct tok_added {
    char *content;
    size_t len;
    char *norm;             /* content after the normalizer (matched when `normalized`) */
    size_t norm_len;
    int32_t id;
    unsigned special : 1, normalized : 1, lstrip : 1, rstrip : 1, single_word : 1;
};

/* Byte trie over added-token strings for leftmost-longest matching. */
struct tok_trie_node {
    uint32_t first_child, next_sibling;   /* 0 = none (node 0 is the root) */
    int32_t token;                        /* index into tok->added ending here, or -1 */
    uint8_t byte;
};
struct tok_trie {
    struct tok_trie_node *nodes;
    uint32_t n, cap;
    uint8_t first[32];                    /* bitmap of first bytes, to skip quickly */
};

/* ---- the BPE model ---- */
struct tok_bpe {
    struct tok_strmap vocab;        /* token text -> id */
    uint32_t n_vocab;               /* entries; ids are exactly 0..n_vocab-1 */
    uint32_t *id_ent;               /* id -> entry index in vocab (for its text) */
    struct tok_pairmap merges;      /* (left id, right id) -> (rank, merged id) */
    int32_t unk_id;                 /* -1: none */
    int has_unk_token;              /* unk_token named (maybe absent from the vocab) */
    char *unk_token;
    int byte_fallback, fuse_unk, ignore_merges;
    char *prefix, *suffix;          /* continuing_subword_prefix, end_of_word_suffix (or NULL) */
    size_t prefix_len, suffix_len;
    int32_t byte_id[256];           /* id of "<0xXX>", or -1 */
    int32_t char_id[512];           /* id of the one-character token U+0000..U+01FF, or -1: spares
                                     * a hash lookup for ASCII, Latin-1 and GPT-2's byte characters */
};

/* Scratch of one BPE word (reused between words of one encode call). */
struct tok_bpe_scratch {
    struct tok_sym { int32_t id, prev, next; } *sym;
    size_t sym_cap;
    struct tok_merge_ent { uint32_t rank, pos; int32_t id; } *heap;
    size_t heap_cap;
    struct tok_buf tmp;
};

/* Encodes one pre-token with the BPE model, appending ids to `out`. */
int tok_bpe_word(const struct tok_bpe *m, const char *w, size_t len, struct tok_bpe_scratch *s,
                 struct tok_ivec *out, struct awq_errbuf *err);
void tok_bpe_scratch_free(struct tok_bpe_scratch *s);
void tok_bpe_free(struct tok_bpe *m);

/* ---- post-processing template ---- */
#define TOK_TMPL_SEQ INT32_MIN      /* marks where the encoded text goes */

struct awq_tok {
    struct tok_bpe bpe;

    struct tok_added *added;
    size_t n_added;
    struct tok_trie trie_raw, trie_norm;   /* normalized == false / true tokens */
    int32_t *added_of_id;                  /* id -> index into added, or -1 (vocab_size entries) */
    uint8_t *special_id;                   /* id -> 1 when decode(skip_special) drops it */

    struct tok_norm *norms;
    size_t n_norms;
    struct tok_pre *pres;
    size_t n_pres;
    struct tok_dec *decs;
    size_t n_decs;
    int has_decoder;

    int32_t *tmpl;                         /* ids and TOK_TMPL_SEQ */
    size_t n_tmpl;

    int32_t bos, eos;
    int32_t vocab_size;

    /* Long SentencePiece-style words (a whole line: there is no pre-tokenizer) may be cut before
     * each "▁" that follows another character: exact when no merge result has "▁" after another
     * character, so no merge can cross the cut (checked at load). The pieces then go through the
     * word cache like byte-level words. */
    int split_at_metaspace;

    /* \w and \s for the single_word / lstrip / rstrip options of added tokens */
    pcre2_code *re_word, *re_space;
};

/* ---- pieces: the text as it moves through the pipeline ---- */
struct tok_piece {
    size_t off, len;        /* into the owning buffer */
    int32_t added;          /* id of an added token, or -1 for text still to encode */
    int at_start;           /* starts at offset 0 of the original text (Metaspace "first") */
};
struct tok_pieces {
    struct tok_buf buf;
    struct tok_piece *v;
    size_t n, cap;
};
int tok_pieces_push(struct tok_pieces *p, const char *s, size_t len, int32_t added, int at_start);
void tok_pieces_reset(struct tok_pieces *p);
void tok_pieces_free(struct tok_pieces *p);

/* Splits text on added tokens of `trie` (leftmost-longest, with the tokens' lstrip, rstrip and
 * single_word options), appending pieces to `out`. */
int tok_added_split(const struct awq_tok *t, const struct tok_trie *trie, const char *s, size_t len,
                    int at_start, pcre2_match_data *md, struct tok_pieces *out);
int tok_trie_add(struct tok_trie *tr, const char *s, size_t len, int32_t token);
void tok_trie_free(struct tok_trie *tr);

/* Applies the normalizers to s, writing the result into out (cleared first). */
int tok_normalize(const struct awq_tok *t, const char *s, size_t len, pcre2_match_data *md,
                  struct tok_buf *out, struct awq_errbuf *err);
/* Scratch of the pre-tokenizers (reused between pieces of one encode call). */
struct tok_span {
    size_t s, e;
    int m;
};
struct tok_pre_scratch {
    struct tok_span *sp;
    size_t n, cap;
    struct tok_buf tmp, tmp2;
};
void tok_pre_scratch_free(struct tok_pre_scratch *s);
/* Runs one pre-tokenizer over every text piece of `in`, appending to `out`. */
int tok_pretokenize(const struct tok_pre *pre, const struct tok_pieces *in, pcre2_match_data *md,
                    struct tok_pre_scratch *sc, struct tok_pieces *out, struct awq_errbuf *err);

/* GPT-2's byte <-> unicode mapping of the ByteLevel components. */
void tok_bytelevel_encode(const char *s, size_t len, struct tok_buf *out);
/* Byte of code point cp in the mapping, or -1. */
int tok_bytelevel_byte(uint32_t cp);

/* NFC normalization (canonical decomposition, reordering, composition). Invalid UTF-8 bytes pass
 * through unchanged. */
int tok_nfc(const char *s, size_t len, struct tok_buf *out);

/* Frees everything the loader allocated (tolerates a half-built struct). */
void tok_free_all(struct awq_tok *t);

#endif
