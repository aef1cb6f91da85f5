/* Tokenizer: hand-derived ids on the committed tiny fixtures (SentencePiece-style and byte-level),
 * NFC against Python's unicodedata, the REFERENCE.md ids of stories260K and round trips over the
 * TinyStories text (with AWQ_TEST_DATA), vectors made by the real `tokenizers` library (when the
 * files from tests/data/make_tokenizer_vectors.py are committed), specific errors for bad
 * tokenizer.json files, and random bytes / corrupted files that must neither crash nor leak. */
#include "config.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "awq.h"
#include "testutil.h"
#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"

#ifndef AWQ_TOP_SRCDIR
#define AWQ_TOP_SRCDIR "."
#endif

/* ---- helpers ---- */

static char *src_path(const char *rel)
{
    const char *root = getenv("srcdir");    /* set by automake's test driver */
    if (!root || !*root)
        root = AWQ_TOP_SRCDIR;
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", root, rel);
    return p;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    p[n] = '\0';
    *len = (size_t)n;
    return p;
}

static struct awq_tok *load_ok(const char *path)
{
    struct awq_errbuf err = { 0 };
    struct awq_tok *t = NULL;
    int rc = awq_tok_load(path, &t, &err);
    ck_assert_msg(rc == 0, "loading %s: %s", path, err.msg);
    return t;
}

static struct awq_tok *load_fixture(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/%s", name);
    char *p = src_path(rel);
    struct awq_tok *t = load_ok(p);
    free(p);
    return t;
}

/* Encodes and compares with the expected ids (count n, then the ids). */
static void expect_ids(const struct awq_tok *t, const char *text, size_t len, int special, size_t n, ...)
{
    struct awq_errbuf err = { 0 };
    int32_t *ids;
    size_t got;
    ck_assert_msg(awq_tok_encode(t, text, len, special, &ids, &got, &err) == 0, "encode: %s", err.msg);
    va_list ap;
    va_start(ap, n);
    char want_s[512] = "", got_s[512] = "";
    int same = got == n;
    for (size_t i = 0; i < n; i++) {
        int w = va_arg(ap, int);
        snprintf(want_s + strlen(want_s), sizeof want_s - strlen(want_s), " %d", w);
        if (i < got && ids[i] != w)
            same = 0;
    }
    va_end(ap);
    for (size_t i = 0; i < got; i++)
        snprintf(got_s + strlen(got_s), sizeof got_s - strlen(got_s), " %d", ids[i]);
    ck_assert_msg(same, "'%.*s': expected%s, got%s", (int)len, text, want_s, got_s);
    free(ids);
}
#define EXPECT(t, text, special, ...)                                                                  \
    expect_ids(t, text, strlen(text), special, sizeof((int[]){ __VA_ARGS__ }) / sizeof(int), __VA_ARGS__)
#define EXPECT_NONE(t, text, special) expect_ids(t, text, strlen(text), special, 0)

/* decode(encode(x)) == x, without special tokens */
static void expect_roundtrip(const struct awq_tok *t, const char *text, size_t len)
{
    struct awq_errbuf err = { 0 };
    int32_t *ids;
    size_t n;
    ck_assert_msg(awq_tok_encode(t, text, len, 0, &ids, &n, &err) == 0, "encode: %s", err.msg);
    char *back;
    size_t blen;
    ck_assert_msg(awq_tok_decode(t, ids, n, 0, &back, &blen, &err) == 0, "decode: %s", err.msg);
    ck_assert_msg(blen == len && !memcmp(back, text, len), "round trip of '%.*s' gave '%s'",
                  (int)(len > 200 ? 200 : len), text, back);
    ck_assert_int_eq(back[blen], '\0');
    free(ids);
    free(back);
}

static char *decode_str(const struct awq_tok *t, const int32_t *ids, size_t n, int skip)
{
    struct awq_errbuf err = { 0 };
    char *s;
    size_t len;
    ck_assert_msg(awq_tok_decode(t, ids, n, skip, &s, &len, &err) == 0, "decode: %s", err.msg);
    return s;
}

/* Writes json (a fixture modified by the caller) to a fresh directory and loads it. Returns the
 * status; *t is set on success; *msg receives the error text. */
static int load_json_variant(json_t *root, const char *config, struct awq_tok **t, char *msg, size_t msg_len)
{
    char *dir = tu_tmpdir("tok");
    ck_assert_ptr_nonnull(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    ck_assert_int_eq(json_dump_file(root, path, JSON_COMPACT), 0);
    if (config) {
        char cpath[512];
        snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
        ck_assert_int_eq(tu_write_file(cpath, config, strlen(config)), 0);
    }
    struct awq_errbuf err = { 0 };
    *t = NULL;
    int rc = awq_tok_load(dir, t, &err);
    if (msg)
        snprintf(msg, msg_len, "%s", err.msg);
    tu_rmtree(dir);
    free(dir);
    return rc;
}

static json_t *fixture_json(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/%s/tokenizer.json", name);
    char *p = src_path(rel);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", p, je.text);
    free(p);
    return j;
}

/* ---- hand-derived vectors on the committed fixtures ---- */

START_TEST(test_tiny_bytelevel_llama3)
{
    /* tests/data/make_tiny_tokenizers.py: byte b is id b; merges 256.. in order: Ġt he Ġthe in
     * ing Ġa ll ĊĊ Ġw or Ġwor ld Ġworld Ã© 12; <|begin_of_text|> 271, <|end_of_text|> 272 */
    struct awq_tok *t = load_fixture("tokenizer-tiny-bytelevel");
    EXPECT(t, "the", 1, 271, 116, 257);              /* h+e; no "t he" merge */
    EXPECT(t, " the", 0, 258);                       /* Ġ+t, h+e, Ġt+he */
    EXPECT(t, "Hello world", 0, 72, 101, 262, 111, 268);
    EXPECT(t, "singing", 0, 115, 260, 260);          /* leftmost i+n first, rank before position */
    EXPECT(t, "caf\xc3\xa9", 0, 99, 97, 102, 269);   /* é = bytes C3 A9 = chars Ã © */
    EXPECT(t, "a\n\nb", 0, 97, 263, 98);             /* \s*[\r\n]+ keeps the newlines together */
    EXPECT(t, "12345", 0, 270, 51, 52, 53);          /* \p{N}{1,3}: 123 | 45 */
    EXPECT(t, "<|begin_of_text|>the", 1, 271, 271, 116, 257);
    EXPECT(t, "  the", 0, 32, 258);                  /* \s+(?!\S) leaves the last space to the word */
    EXPECT(t, "don't", 0, 100, 111, 110, 39, 116);
    EXPECT(t, "HELLO'S", 0, 72, 69, 76, 76, 79, 39, 83);  /* (?i:'s) */
    EXPECT(t, "", 1, 271);
    EXPECT_NONE(t, "", 0);
    EXPECT(t, "the<|end_of_text|>", 0, 116, 257, 272);
    EXPECT(t, "a \t b", 0, 97, 32, 9, 32, 98);
    EXPECT(t, "\xff", 0, 255);                       /* invalid UTF-8: its own piece, byte 0xFF */
    ck_assert_int_eq(awq_tok_bos(t), 271);
    ck_assert_int_eq(awq_tok_eos(t), -1);
    ck_assert_int_eq(awq_tok_vocab_size(t), 273);

    const char *rt[] = { "Hello world", "caf\xc3\xa9 \xe2\x82\xac 12345\n\n\tx", "\xff\xfe\xc3", "  ", "a\r\nb",
                         "\xf0\x9f\x98\x80 emoji", "<|end_of_text|>x" };
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++)
        expect_roundtrip(t, rt[i], strlen(rt[i]));
    int32_t ids[] = { 271, 258, 272 };
    char *s = decode_str(t, ids, 3, 0);
    ck_assert_str_eq(s, "<|begin_of_text|> the<|end_of_text|>");
    free(s);
    s = decode_str(t, ids, 3, 1);
    ck_assert_str_eq(s, " the");
    free(s);
    awq_tok_free(t);
}
END_TEST

START_TEST(test_tiny_gpt2)
{
    /* same vocabulary; ByteLevel(add_prefix_space = true, use_regex = true), merges as "a b" */
    struct awq_tok *t = load_fixture("tokenizer-tiny-gpt2");
    EXPECT(t, "the", 1, 258);                        /* no template: nothing added */
    EXPECT(t, "Hello world", 0, 32, 72, 101, 262, 111, 268);
    EXPECT(t, "a\n\nb", 0, 261, 10, 10, 98);         /* GPT-2: \s+(?!\S) then \s+ */
    EXPECT(t, "12345", 0, 32, 270, 51, 52, 53);      /* ' ?\p{N}+' keeps the digits together */
    EXPECT(t, "  the", 0, 32, 258);
    EXPECT(t, "HELLO'S", 0, 32, 72, 69, 76, 76, 79, 39, 83);
    ck_assert_int_eq(awq_tok_bos(t), -1);
    /* decoding keeps the prefix space the encoder added */
    int32_t ids[] = { 32, 72, 101, 262, 111, 268 };
    char *s = decode_str(t, ids, 6, 0);
    ck_assert_str_eq(s, " Hello world");
    free(s);
    awq_tok_free(t);
}
END_TEST

START_TEST(test_tiny_sp)
{
    /* <unk> <s> </s>, <0x00>..<0xFF> = 3..258, ▁ t h e a c = 259..264, then ▁t 265 he 266 ▁the 267
     * at 268 ▁c 269 ▁cat 270 */
    struct awq_tok *t = load_fixture("tokenizer-tiny-sp");
    EXPECT(t, "the cat", 1, 1, 267, 270);
    EXPECT(t, "x", 1, 1, 259, 3 + 'x');              /* byte fallback */
    EXPECT(t, "\xc3\xa9", 0, 259, 3 + 0xC3, 3 + 0xA9);
    EXPECT(t, "", 1, 1);                             /* Prepend leaves "" alone */
    EXPECT(t, " the", 0, 259, 267);                  /* ▁▁the */
    EXPECT(t, "<s>the", 1, 1, 1, 267);               /* special tokens split before normalizing */
    EXPECT(t, "the<s> cat", 0, 267, 1, 259, 270);    /* each piece gets its own ▁ */
    EXPECT(t, "\xff", 0, 259, 3 + 0xFF);
    ck_assert_int_eq(awq_tok_bos(t), 1);
    int32_t ids[] = { 1, 267, 270, 2 };
    char *s = decode_str(t, ids, 4, 0);
    ck_assert_str_eq(s, "<s> the cat</s>");     /* Strip only takes a space at the very start */
    free(s);
    s = decode_str(t, ids, 4, 1);
    ck_assert_str_eq(s, "the cat");
    free(s);
    int32_t bytes[] = { 259, 3 + 0xC3, 3 + 0xA9, 3 + 0xFF };
    s = decode_str(t, bytes, 4, 1);
    ck_assert_str_eq(s, "\xc3\xa9\xff");        /* bytes kept, even when not UTF-8 */
    free(s);
    const char *rt[] = { "the cat", " the  cat ", "\xff\xfe", "a\nb\tc", "\xe4\xb8\xad\xe6\x96\x87" };
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++)
        expect_roundtrip(t, rt[i], strlen(rt[i]));

    struct awq_errbuf err = { 0 };
    char *txt;
    size_t len;
    int32_t bad[] = { 1, 271 };
    ck_assert_int_eq(awq_tok_decode(t, bad, 2, 0, &txt, &len, &err), AWQ_ERR_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "271"));
    bad[1] = -5;
    ck_assert_int_eq(awq_tok_decode(t, bad, 2, 0, &txt, &len, &err), AWQ_ERR_BAD_INPUT);
    awq_tok_free(t);
}
END_TEST

START_TEST(test_sp_unk_and_options)
{
    /* without byte fallback, unknown characters become <unk>, fused or not */
    json_t *j = fixture_json("tokenizer-tiny-sp");
    json_t *model = json_object_get(j, "model");
    json_object_set_new(model, "byte_fallback", json_false());
    struct awq_tok *t;
    char msg[1024];
    ck_assert_int_eq(load_json_variant(j, NULL, &t, msg, sizeof msg), 0);
    EXPECT(t, "xyz the", 0, 259, 0, 267);            /* ▁ <unk>(xyz) ▁the */
    awq_tok_free(t);
    json_object_set_new(model, "fuse_unk", json_false());
    ck_assert_int_eq(load_json_variant(j, NULL, &t, msg, sizeof msg), 0);
    EXPECT(t, "xyz the", 0, 259, 0, 0, 0, 267);
    awq_tok_free(t);
    /* no unk token at all: tokenizers drops the characters */
    json_object_set_new(model, "unk_token", json_null());
    ck_assert_int_eq(load_json_variant(j, NULL, &t, msg, sizeof msg), 0);
    EXPECT(t, "xyz the", 0, 259, 267);
    awq_tok_free(t);
    json_decref(j);

    /* added tokens: rstrip/lstrip take the spaces around, single_word needs word boundaries,
     * normalized tokens match the normalized text */
    j = fixture_json("tokenizer-tiny-sp");
    json_t *added = json_object_get(j, "added_tokens");
    json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 271, "content", "<X>",
                                           "single_word", 0, "lstrip", 1, "rstrip", 1, "normalized", 0,
                                           "special", 1));
    json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 272, "content", "cat",
                                           "single_word", 1, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                           "special", 0));
    json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", 273, "content", "a c",
                                           "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 1,
                                           "special", 0));
    ck_assert_int_eq(load_json_variant(j, NULL, &t, msg, sizeof msg), 0);
    ck_assert_int_eq(awq_tok_vocab_size(t), 274);
    EXPECT(t, "the  <X>  the", 0, 267, 271, 267);    /* both runs of spaces belong to <X> */
    EXPECT(t, "cat", 0, 272);
    EXPECT(t, "the cat", 0, 267, 259, 272);          /* a word on its own */
    EXPECT(t, "tcat", 0, 265, 264, 268);             /* not a single word: ▁t c at */
    EXPECT(t, "cats", 0, 270, 3 + 's');              /* ▁cat s */
    EXPECT(t, "cat\xcc\x81", 0, 270, 3 + 0xCC, 3 + 0x81);  /* a combining mark is a word character */
    /* "a c" is normalized like text (Prepend too): "▁a▁c", found inside "▁▁a▁c" but not in "▁ta▁c" */
    EXPECT(t, " a c", 0, 259, 273);
    EXPECT(t, "ta c", 0, 265, 263, 269);
    int32_t ids[] = { 267, 271, 267 };
    char *s = decode_str(t, ids, 3, 1);
    ck_assert_str_eq(s, "the the");             /* the special <X> is dropped, with the spaces it took */
    free(s);
    awq_tok_free(t);
    json_decref(j);
}
END_TEST

START_TEST(test_tokenizer_config)
{
    json_t *j = fixture_json("tokenizer-tiny-sp");
    struct awq_tok *t;
    char msg[1024];
    /* explicit add_eos_token (any class): template rebuilt as [BOS] A [EOS] */
    ck_assert_int_eq(load_json_variant(j, "{\"add_eos_token\": true, \"eos_token\": \"</s>\", \"bos_token\": "
                                          "{\"content\": \"<s>\", \"special\": true}}", &t, msg, sizeof msg), 0);
    EXPECT(t, "the", 1, 267, 2);                     /* add_bos_token absent: false for a generic class */
    ck_assert_int_eq(awq_tok_bos(t), 1);
    ck_assert_int_eq(awq_tok_eos(t), 2);
    awq_tok_free(t);
    /* Llama classes: add_bos_token defaults to true */
    ck_assert_int_eq(load_json_variant(j, "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"add_eos_token\": true, "
                                          "\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}", &t, msg, sizeof msg), 0);
    EXPECT(t, "the", 1, 1, 267, 2);
    awq_tok_free(t);
    ck_assert_int_eq(load_json_variant(j, "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": false}",
                                       &t, msg, sizeof msg), 0);
    EXPECT(t, "the", 1, 267);
    awq_tok_free(t);
    /* no add_* keys, other class: tokenizer.json's template stays; named special tokens from the
     * config become added tokens (here "cat" from the vocab) */
    ck_assert_int_eq(load_json_variant(j, "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", "
                                          "\"additional_special_tokens\": [\"\\u2581cat\"]}", &t, msg, sizeof msg), 0);
    EXPECT(t, "the", 1, 1, 267);
    EXPECT(t, "the\xe2\x96\x81" "cat", 0, 267, 270);  /* raw ▁cat is now matched before normalizing */
    int32_t ids[] = { 267, 270 };
    char *s = decode_str(t, ids, 2, 1);
    ck_assert_str_eq(s, "the");
    free(s);
    awq_tok_free(t);
    /* a malformed config is an error, naming the file */
    ck_assert_int_eq(load_json_variant(j, "{\"add_bos_token\": tru", &t, msg, sizeof msg), AWQ_ERR_BAD_JSON);
    ck_assert_ptr_nonnull(strstr(msg, "tokenizer_config.json"));
    json_decref(j);
}
END_TEST

START_TEST(test_metaspace)
{
    /* the legacy = false form: no normalizer, Metaspace(prepend_scheme first, split false) */
    json_t *j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "normalizer", json_null());
    json_object_set_new(j, "pre_tokenizer", json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                                      "\xe2\x96\x81", "prepend_scheme", "first", "split", 0));
    json_object_set_new(j, "decoder", json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                                "\xe2\x96\x81", "prepend_scheme", "first", "split", 0));
    struct awq_tok *t;
    char msg[1024];
    ck_assert_int_eq(load_json_variant(j, NULL, &t, msg, sizeof msg), 0);
    EXPECT(t, "the cat", 0, 267, 270);
    EXPECT(t, "<s>the", 0, 1, 260, 266);              /* after a special token: no ▁ */
    EXPECT(t, " the", 0, 267);                        /* already starts with ▁: none added */
    int32_t ids[] = { 267, 270 };
    char *s = decode_str(t, ids, 2, 0);
    ck_assert_str_eq(s, "the cat");
    free(s);
    awq_tok_free(t);
    /* prepend_scheme always + split true */
    json_object_set_new(j, "pre_tokenizer", json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                                      "\xe2\x96\x81", "prepend_scheme", "always", "split", 1));
    ck_assert_int_eq(load_json_variant(j, NULL, &t, msg, sizeof msg), 0);
    EXPECT(t, "<s>the", 0, 1, 267);
    EXPECT(t, "at  the", 0, 259, 268, 259, 267);     /* ▁at | ▁ | ▁the, and "▁ at" is no merge */
    awq_tok_free(t);
    json_decref(j);
}
END_TEST

START_TEST(test_split_behaviors)
{
    /* Split on "-" with each behaviour, then ByteLevel; merges "a -", "- b", "- -" (ids 271, 272,
     * 273) make the piece boundaries visible: a 97, b 98, c 99, - 45 */
    static const struct {
        const char *behavior;
        int invert;
        const char *want;
    } cases[] = {
        { "Removed", 0, " 97 98 99" },                  /* a | b | c */
        { "Isolated", 0, " 97 45 98 45 45 99" },        /* a | - | b | - | - | c */
        { "MergedWithPrevious", 0, " 271 98 45 45 99" },/* a- | b- | - | c  ("b -" is no merge) */
        { "MergedWithNext", 0, " 97 272 45 45 99" },    /* a | -b | - | -c */
        { "Contiguous", 0, " 97 45 98 273 99" },        /* a | - | b | -- | c */
        { "Removed", 1, " 45 45 45" },                  /* inverted: the dashes stay */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        json_t *j = fixture_json("tokenizer-tiny-bytelevel");
        json_t *model = json_object_get(j, "model");
        json_t *vocab = json_object_get(model, "vocab");
        json_object_set_new(vocab, "a-", json_integer(271));
        json_object_set_new(vocab, "-b", json_integer(272));
        json_object_set_new(vocab, "--", json_integer(273));
        json_array_append_new(json_object_get(model, "merges"), json_pack("[s,s]", "a", "-"));
        json_array_append_new(json_object_get(model, "merges"), json_pack("[s,s]", "-", "b"));
        json_array_append_new(json_object_get(model, "merges"), json_pack("[s,s]", "-", "-"));
        json_array_clear(json_object_get(j, "added_tokens"));
        json_object_set_new(j, "post_processor", json_null());
        json_object_set_new(j, "pre_tokenizer",
                            json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b}]}", "type", "Sequence",
                                      "pretokenizers", "type", "Split", "pattern", "String", "-", "behavior",
                                      cases[c].behavior, "invert", cases[c].invert, "type", "ByteLevel",
                                      "add_prefix_space", 0, "use_regex", 0));
        struct awq_tok *t;
        char msg[1024];
        ck_assert_msg(load_json_variant(j, NULL, &t, msg, sizeof msg) == 0, "%s", msg);
        json_decref(j);
        int32_t *ids;
        size_t n;
        struct awq_errbuf err = { 0 };
        ck_assert_int_eq(awq_tok_encode(t, "a-b--c", 6, 0, &ids, &n, &err), 0);
        char got[256] = "";
        for (size_t i = 0; i < n; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %d", ids[i]);
        ck_assert_msg(!strcmp(got, cases[c].want), "%s%s: got%s, want%s", cases[c].behavior,
                      cases[c].invert ? " inverted" : "", got, cases[c].want);
        free(ids);
        awq_tok_free(t);
    }
}
END_TEST

START_TEST(test_regex_spaces)
{
    /* regexes of tokenizer.json are Oniguruma's: \s is White_Space, without U+180E (which PCRE2's
     * \h has); the rewrite keeps \s, \S and [^\s] consistent */
    static const struct {
        const char *re, *subject;
        int match;
    } cases[] = {
        { "\\s", "\xe1\xa0\x8e", 0 },          /* U+180E */
        { "\\s", "\xe3\x80\x80", 1 },          /* U+3000 */
        { "\\s", "\xc2\x85", 1 },               /* U+0085 */
        { "\\s", "\xe2\x80\xa8", 1 },          /* U+2028 */
        { "\\s", "\x0b", 1 },
        { "\\S", "\xe1\xa0\x8e", 1 },
        { "\\S", " ", 0 },
        { "[^\\s\\p{L}]", "\xe1\xa0\x8e", 1 },
        { "[^\\s\\p{L}]", "\t", 0 },
        { "[\\s]", "\xe1\xa0\x8e", 0 },
        { "[]\\s]", "]", 1 },
        { "\\Q\\s\\E", "\\s", 1 },               /* quoted: a backslash and an s */
        { "[[:alpha:]\\s]+", "a b", 1 },
    };
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pcre2_code *re;
        struct awq_errbuf err = { 0 };
        ck_assert_msg(tok_regex_compile(cases[i].re, strlen(cases[i].re), "test", &re, &err) == 0, "%s: %s",
                      cases[i].re, err.msg);
        int rc = pcre2_match(re, (PCRE2_SPTR)cases[i].subject, strlen(cases[i].subject), 0, PCRE2_ANCHORED, md, NULL);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int full = rc >= 0 && ov[1] == strlen(cases[i].subject);
        ck_assert_msg(full == cases[i].match, "/%s/ on case %zu: %d", cases[i].re, i, rc);
        pcre2_code_free(re);
    }
    pcre2_match_data_free(md);
}
END_TEST

START_TEST(test_nfc_vectors)
{
    char *p = src_path("tests/data/nfc-vectors.txt");
    size_t len;
    char *data = read_file(p, &len);
    ck_assert_msg(data != NULL, "%s missing", p);
    free(p);
    int checked = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char in[256], want[256];
        size_t ni = 0, nw = 0;
        char *sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        for (char *q = line; q < sp; q += 2)
            in[ni++] = (char)strtol((char[]){ q[0], q[1], 0 }, NULL, 16);
        for (char *q = sp + 1; *q; q += 2)
            want[nw++] = (char)strtol((char[]){ q[0], q[1], 0 }, NULL, 16);
        struct tok_buf out = { 0 };
        ck_assert_int_eq(tok_nfc(in, ni, &out), 0);
        ck_assert_msg(out.len == nw && !memcmp(out.p, want, nw), "NFC of %.*s", (int)(sp - line), line);
        tok_buf_free(&out);
        checked++;
    }
    ck_assert_int_ge(checked, 3000);
    free(data);
    /* invalid bytes pass through and block composition */
    struct tok_buf out = { 0 };
    ck_assert_int_eq(tok_nfc("e\xff\xcc\x81", 4, &out), 0);
    ck_assert_int_eq(out.len, 4);
    ck_assert(!memcmp(out.p, "e\xff\xcc\x81", 4));
    tok_buf_free(&out);
}
END_TEST

/* ---- the real model (AWQ_TEST_DATA) ---- */

static struct awq_tok *load_stories(void)
{
    char *p = tu_data_path("models/stories260K");
    if (!p)
        return NULL;
    struct awq_tok *t = load_ok(p);
    free(p);
    return t;
}

START_TEST(test_stories_reference)
{
    struct awq_tok *t = load_stories();
    if (!t) {
        fprintf(stderr, "test_stories_reference: AWQ_TEST_DATA unset, skipped\n");
        return;
    }
    /* ../shared/REFERENCE.md (transformers' AutoTokenizer) */
    EXPECT(t, "Once upon a time, there was a little girl named Lily.", 1, 1, 403, 407, 261, 378, 432, 383, 286, 261,
           376, 298, 315, 421, 395, 317, 426);
    EXPECT(t, "Hello world!", 1, 1, 346, 306, 414, 263, 304, 341, 443);
    EXPECT(t, "The cat sat on the mat.\n", 1, 1, 291, 280, 294, 262, 294, 353, 265, 284, 294, 426, 13);
    ck_assert_int_eq(awq_tok_bos(t), 1);
    ck_assert_int_eq(awq_tok_eos(t), 2);
    ck_assert_int_eq(awq_tok_vocab_size(t), 512);
    int32_t ids[] = { 1, 346, 306, 414, 263, 304, 341, 443 };
    char *s = decode_str(t, ids, 8, 1);
    ck_assert_str_eq(s, "Hello world!");
    free(s);
    s = decode_str(t, ids, 8, 0);
    ck_assert_str_eq(s, "<s> Hello world!");
    free(s);
    awq_tok_free(t);
}
END_TEST

START_TEST(test_stories_dir_vs_file)
{
    /* the directory (tokenizer_config: LlamaTokenizerFast, legacy true) loads as transformers 5
     * does, Metaspace "always": one ▁ before a leading space; tokenizer.json alone loads as the
     * tokenizers library does, Prepend + Replace: two */
    struct awq_tok *t = load_stories();
    if (!t) {
        fprintf(stderr, "test_stories_dir_vs_file: AWQ_TEST_DATA unset, skipped\n");
        return;
    }
    char *p = tu_data_path("models/stories260K/tokenizer.json");
    struct awq_tok *f = load_ok(p);
    free(p);
    EXPECT(t, " ", 1, 1, 410);
    EXPECT(f, " ", 1, 1, 410, 410);
    EXPECT(t, " Emma", 1, 1, 410, 459, 423, 423, 412);
    EXPECT(f, " Emma", 1, 1, 410, 410, 459, 423, 423, 412);
    /* the file's pipeline keeps every byte; transformers' loses the one leading space */
    expect_roundtrip(f, " Emma  ", 7);
    int32_t ids[] = { 410, 459, 423, 423, 412, 410, 410 };
    char *s = decode_str(t, ids, 7, 0);
    ck_assert_str_eq(s, "Emma  ");
    free(s);
    awq_tok_free(t);
    awq_tok_free(f);
}
END_TEST

static size_t lead_lines(const char *text, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        k += text[i] == ' ' && (i == 0 || text[i - 1] == '\n');
    return k;
}

START_TEST(test_stories_eval_roundtrip)
{
    struct awq_tok *t = load_stories();
    if (!t) {
        fprintf(stderr, "test_stories_eval_roundtrip: AWQ_TEST_DATA unset, skipped\n");
        return;
    }
    char *p = tu_data_path("data/tinystories-eval.txt");
    size_t len;
    char *text = read_file(p, &len);
    ck_assert_msg(text != NULL, "%s missing", p);
    free(p);

    /* the whole file in one call (timed), then every line; REFERENCE.md's perplexity protocol
     * (each non-empty line with BOS) must give 194,111 tokens */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct awq_errbuf err = { 0 };
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(awq_tok_encode(t, text, len, 0, &ids, &n, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "tinystories-eval.txt: %zu bytes -> %zu tokens in %.1f ms (one call)\n", len, n, ms);
    char *back;
    size_t blen;
    ck_assert_int_eq(awq_tok_decode(t, ids, n, 0, &back, &blen, &err), 0);
    ck_assert(blen == len && !memcmp(back, text, len));
    free(back);
    free(ids);

    /* line by line, with the directory (transformers) and with tokenizer.json alone (tokenizers) */
    p = tu_data_path("models/stories260K/tokenizer.json");
    struct awq_tok *f = load_ok(p);
    free(p);
    for (int mode = 0; mode < 2; mode++) {
        const struct awq_tok *tk = mode ? f : t;
        size_t total = 0, lines = 0, lead = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t i = 0; i < len;) {
            size_t e = i;
            while (e < len && text[e] != '\n')
                e++;
            if (e > i) {
                ck_assert_int_eq(awq_tok_encode(tk, text + i, e - i, 1, &ids, &n, &err), 0);
                total += n;
                lines++;
                ck_assert_int_eq(ids[0], 1);
                ck_assert_int_eq(awq_tok_decode(tk, ids, n, 1, &back, &blen, &err), 0);
                /* transformers' Metaspace drops a line's leading space on the way back */
                size_t skip = !mode && text[i] == ' ';
                lead += skip;
                ck_assert_msg(blen == e - i - skip && !memcmp(back, text + i + skip, blen), "%s: line at byte %zu",
                              mode ? "file" : "dir", i);
                free(back);
                free(ids);
            }
            i = e + 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        fprintf(stderr, "tinystories-eval.txt (%s): %zu lines -> %zu tokens with BOS in %.1f ms (line by line), "
                "%zu lines start with a space\n", mode ? "tokenizer.json" : "model dir", lines, total, ms, lead);
        /* REFERENCE.md's perplexity protocol: 194,111 tokens with transformers; the tokenizers
         * library gives one more ▁ for each of the lines that start with a space */
        ck_assert_uint_eq(total, mode ? 194111 + lead_lines(text, len) : 194111);
    }
    free(text);
    awq_tok_free(t);
    awq_tok_free(f);
}
END_TEST

/* ---- vectors of the real tokenizers library (tests/data/make_tokenizer_vectors.py) ---- */

static int json_ids_equal(const json_t *arr, const int32_t *ids, size_t n)
{
    if (!json_is_array(arr) || json_array_size(arr) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, i)) != ids[i])
            return 0;
    return 1;
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s:", label);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

/* The stories260K tokenizer (test data, not part of the project) as a tokenizer.json file, or its
 * Metaspace variant; NULL (skip) without AWQ_TEST_DATA. */
static struct awq_tok *load_stories_variant(const char *name)
{
    char *p = tu_data_path("models/stories260K/tokenizer.json");
    if (!p) {
        fprintf(stderr, "%s: AWQ_TEST_DATA unset, skipped\n", name);
        return NULL;
    }
    if (!strcmp(name, "tokenizer-sp")) {
        struct awq_tok *t = load_ok(p);
        free(p);
        return t;
    }
    json_error_t je;
    json_t *j = json_load_file(p, JSON_PRESERVE_ORDER, &je);
    ck_assert_msg(j != NULL, "%s: %s", p, je.text);
    free(p);
    json_object_set_new(j, "normalizer", json_null());
    json_object_set_new(j, "pre_tokenizer", json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                                       "\u2581", "prepend_scheme", "first", "split", 0));
    json_object_set_new(j, "decoder", json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}",
        "type", "Sequence", "decoders", "type", "Replace", "pattern", "String", "\u2581", "content", " ",
        "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    char *dir = tu_tmpdir("metaspace"), path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    ck_assert_int_eq(json_dump_file(j, path, 0), 0);
    json_decref(j);
    struct awq_tok *t = load_ok(path);
    tu_rmtree(dir);
    free(dir);
    return t;
}

static void check_vectors_dir(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/%s/vectors.json", name);
    char *vp = src_path(rel);
    if (!file_exists(vp)) {
        fprintf(stderr, "%s: not generated yet (run tests/data/make_tokenizer_vectors.py), skipped\n", rel);
        free(vp);
        return;
    }
    json_error_t je;
    json_t *root = json_load_file(vp, 0, &je);
    ck_assert_msg(root != NULL, "%s: %s", vp, je.text);
    free(vp);
    struct awq_tok *t = strncmp(name, "tokenizer-sp", 12) ? load_fixture(name) : load_stories_variant(name);
    if (!t) {
        json_decref(root);
        return;
    }
    const json_t *cases = json_object_get(root, "cases");
    ck_assert_msg(json_array_size(cases) > 0, "%s has no cases", rel);
    size_t bad = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const json_t *jt = json_object_get(c, "text");
        ck_assert(json_is_string(jt));
        const char *text = json_string_value(jt);
        size_t tlen = json_string_length(jt);
        for (int special = 1; special >= 0; special--) {
            struct awq_errbuf err = { 0 };
            int32_t *ids;
            size_t n;
            ck_assert_msg(awq_tok_encode(t, text, tlen, special, &ids, &n, &err) == 0, "%s", err.msg);
            const json_t *want = json_object_get(c, special ? "ids" : "ids_plain");
            if (!json_ids_equal(want, ids, n)) {
                if (bad++ < 10) {
                    fprintf(stderr, "%s case %zu (%s special): text '%s'\n", name, i, special ? "with" : "without", text);
                    print_ids("ours", ids, n);
                    fprintf(stderr, "    tokenizers:");
                    for (size_t k = 0; k < json_array_size(want) && k < 40; k++)
                        fprintf(stderr, " %lld", (long long)json_integer_value(json_array_get(want, k)));
                    fprintf(stderr, "\n");
                }
            } else {
                /* our decode against the library's, with and without special tokens */
                const char *dkey = special ? "decoded_skip" : "decoded";
                const json_t *dj = json_object_get(c, dkey);
                char *s;
                size_t sl;
                ck_assert_int_eq(awq_tok_decode(t, ids, n, special, &s, &sl, &err), 0);
                if (json_is_string(dj) && (sl != json_string_length(dj) || memcmp(s, json_string_value(dj), sl))) {
                    if (bad++ < 10)
                        fprintf(stderr, "%s case %zu: %s: ours '%s', tokenizers '%s'\n", name, i, dkey, s,
                                json_string_value(dj));
                }
                free(s);
            }
            free(ids);
        }
    }
    fprintf(stderr, "%s: %zu cases, %zu mismatches\n", name, json_array_size(cases), bad);
    ck_assert_msg(bad == 0, "%s: %zu mismatches against the tokenizers library", name, bad);
    awq_tok_free(t);
    json_decref(root);
}

START_TEST(test_generated_vectors)
{
    static const char *const dirs[] = { "tokenizer-bytelevel", "tokenizer-gpt2", "tokenizer-qwen2",
                                        "tokenizer-sp", "tokenizer-sp-metaspace" };
    check_vectors_dir(dirs[_i]);
}
END_TEST

/* ---- bad tokenizer.json files ---- */

static void expect_load_error(json_t *j, int code, const char *needle)
{
    struct awq_tok *t;
    char msg[1024];
    int rc = load_json_variant(j, NULL, &t, msg, sizeof msg);
    ck_assert_msg(rc == code, "expected %s, got %d (%s)", awq_strerror(code), rc, msg);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(msg, needle) != NULL, "message '%s' does not name '%s'", msg, needle);
    json_decref(j);
}

START_TEST(test_bad_files)
{
    json_t *j;
    /* not JSON at all, and a duplicated key */
    char *dir = tu_tmpdir("tokbad");
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    struct awq_errbuf err = { 0 };
    struct awq_tok *t = NULL;
    ck_assert_int_eq(awq_tok_load(dir, &t, &err), AWQ_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "tokenizer.json"));
    ck_assert_int_eq(tu_write_file(path, "{\"model\": {\"type\": \"BPE\",", 25), 0);
    ck_assert_int_eq(awq_tok_load(dir, &t, &err), AWQ_ERR_BAD_JSON);
    ck_assert_ptr_nonnull(strstr(err.msg, "line 1"));
    const char dup[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}, \"merges\": []}}";
    ck_assert_int_eq(tu_write_file(path, dup, strlen(dup)), 0);
    ck_assert_int_eq(awq_tok_load(path, &t, &err), AWQ_ERR_BAD_JSON);
    ck_assert_ptr_nonnull(strstr(err.msg, "duplicate"));
    ck_assert_int_eq(tu_write_file(path, "[1, 2]", 6), 0);
    ck_assert_int_eq(awq_tok_load(path, &t, &err), AWQ_ERR_BAD_JSON);
    tu_rmtree(dir);
    free(dir);
    ck_assert_int_eq(awq_tok_load("/nonexistent/dir", &t, &err), AWQ_ERR_NOT_FOUND);

    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(j, "model"), "type", json_string("Frobnicate"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.type");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(j, "model"), "type", json_string("Unigram"));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "model.type");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_del(json_object_get(j, "model"), "merges");
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.merges");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_del(json_object_get(j, "model"), "vocab");
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.vocab");
    j = fixture_json("tokenizer-tiny-sp");
    json_array_append_new(json_object_get(json_object_get(j, "model"), "merges"), json_string("q u"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.merges[6]: 'q' is not in model.vocab");
    j = fixture_json("tokenizer-tiny-sp");
    json_array_append_new(json_object_get(json_object_get(j, "model"), "merges"), json_string("t h"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "merged token 'th'");
    j = fixture_json("tokenizer-tiny-sp");
    json_array_append_new(json_object_get(json_object_get(j, "model"), "merges"), json_string("t  h"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.merges[6]");
    j = fixture_json("tokenizer-tiny-sp");
    json_array_append_new(json_object_get(json_object_get(j, "model"), "merges"), json_integer(3));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.merges[6]");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(json_object_get(j, "model"), "vocab"), "zz", json_integer(100000));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.vocab['zz'] = 100000 is out of range");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(json_object_get(j, "model"), "vocab"), "zz", json_integer(-1));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.vocab['zz']");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(json_object_get(j, "model"), "vocab"), "zz", json_integer(5));
    json_object_set_new(json_object_get(json_object_get(j, "model"), "vocab"), "zy", json_integer(272));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "id 5 is given to both");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(json_object_get(j, "model"), "vocab"), "zz", json_string("5"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "model.vocab['zz']");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "normalizer", json_pack("{s:s}", "type", "Lowercase"));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "normalizer type 'Lowercase'");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "normalizer", json_pack("{s:s}", "type", "Whatever"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "normalizer.type 'Whatever'");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "pre_tokenizer", json_pack("{s:s}", "type", "Whitespace"));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "pre-tokenizer type 'Whitespace'");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "pre_tokenizer", json_pack("{s:s, s:{s:s}, s:s}", "type", "Split", "pattern", "Regex",
                                                      "(unclosed", "behavior", "Isolated"));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "pre_tokenizer.pattern");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "pre_tokenizer", json_pack("{s:s, s:{s:s}, s:s}", "type", "Split", "pattern", "String",
                                                      "x", "behavior", "Sideways"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "pre_tokenizer.behavior 'Sideways'");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "decoder", json_pack("{s:s}", "type", "WordPiece"));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "decoder type 'WordPiece'");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "post_processor", json_pack("{s:s, s:[{s:{s:s}}], s:{}}", "type", "TemplateProcessing",
                                                       "single", "SpecialToken", "id", "<nope>", "special_tokens"));
    expect_load_error(j, AWQ_ERR_BAD_TOKENIZER, "'<nope>'");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "post_processor", json_pack("{s:s}", "type", "Frob"));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "post-processor type 'Frob'");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(j, "model"), "fuse_unk", json_string("yes"));
    expect_load_error(j, AWQ_ERR_BAD_JSON, "model.fuse_unk");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_array_get(json_object_get(j, "added_tokens"), 0), "content", json_integer(3));
    expect_load_error(j, AWQ_ERR_BAD_JSON, "added_tokens[0].content");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(j, "version", json_string("2.0"));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "version");
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(j, "model"), "dropout", json_real(0.1));
    expect_load_error(j, AWQ_ERR_UNSUPPORTED, "model.dropout");

    /* an unk token named but missing from the vocab fails when it is needed, not before */
    j = fixture_json("tokenizer-tiny-sp");
    json_object_set_new(json_object_get(j, "model"), "byte_fallback", json_false());
    json_object_set_new(json_object_get(j, "model"), "unk_token", json_string("<missing>"));
    char msg[1024];
    ck_assert_int_eq(load_json_variant(j, NULL, &t, msg, sizeof msg), 0);
    EXPECT(t, "the", 0, 267);
    int32_t *ids = NULL;
    size_t n;
    ck_assert_int_eq(awq_tok_encode(t, "xyz", 3, 0, &ids, &n, &err), AWQ_ERR_BAD_TOKENIZER);
    ck_assert_ptr_nonnull(strstr(err.msg, "<missing>"));
    ck_assert_ptr_null(ids);
    awq_tok_free(t);
    json_decref(j);
}
END_TEST

/* ---- robustness ---- */

START_TEST(test_random_bytes)
{
    uint64_t s = tu_seed();
    const char *names[] = { "tokenizer-tiny-sp", "tokenizer-tiny-bytelevel", "tokenizer-tiny-gpt2" };
    struct awq_tok *toks[5];
    int nt = 3;
    for (int i = 0; i < 3; i++)
        toks[i] = load_fixture(names[i]);
    if ((toks[3] = load_stories())) {
        char *p = tu_data_path("models/stories260K/tokenizer.json");
        toks[4] = load_ok(p);
        free(p);
        nt = 5;
    }
    /* an NFC byte-level variant too, so random combining marks meet the normalizer */
    json_t *j = fixture_json("tokenizer-tiny-bytelevel");
    json_object_set_new(j, "normalizer", json_pack("{s:s}", "type", "NFC"));
    struct awq_tok *nfc;
    char msg[1024];
    ck_assert_int_eq(load_json_variant(j, NULL, &nfc, msg, sizeof msg), 0);
    json_decref(j);

    static const char *const frags[] = { " ", "\n", "\t", "\xe2\x96\x81", "\xc3\xa9", "e\xcc\x81", "<s>", "</s>",
                                         "<|begin_of_text|>", "'s", "123", "the", "\xf0\x9f\x98\x80", "\xe4\xb8\xad",
                                         "\xff", "\xc3", "\r\n", "  ", "\xe1\x84\x80\xe1\x85\xa1" };
    char buf[160];
    for (int iter = 0; iter < 4000; iter++) {
        size_t len = tu_next(&s) % sizeof buf;
        for (size_t k = 0; k < len;) {
            if (tu_next(&s) % 3 == 0) {
                const char *f = frags[tu_next(&s) % (sizeof frags / sizeof frags[0])];
                size_t fl = strlen(f);
                if (k + fl > len) {
                    len = k;
                    break;
                }
                memcpy(buf + k, f, fl);
                k += fl;
            } else {
                buf[k++] = (char)(tu_next(&s) & 0xFF);
            }
        }
        int has_special = memchr(buf, '<', len) != NULL;
        for (int ti = 0; ti <= nt; ti++) {
            const struct awq_tok *t = ti < nt ? toks[ti] : nfc;
            struct awq_errbuf err = { 0 };
            int32_t *ids;
            size_t n;
            ck_assert_msg(awq_tok_encode(t, buf, len, iter & 1, &ids, &n, &err) == 0, "%s", err.msg);
            char *back;
            size_t blen;
            ck_assert_msg(awq_tok_decode(t, ids, n, iter & 1, &back, &blen, &err) == 0, "%s", err.msg);
            /* exact round trip, except where the text itself holds special tokens or (for the
             * SentencePiece ones) a literal ▁, or the NFC variant changed it */
            int sp = ti == 0 || ti >= 3;
            int exact = !has_special && ti < nt && !(sp && memmem(buf, len, "\xe2\x96\x81", 3));
            if (ti == 3 && len && buf[0] == ' ')
                exact = 0;      /* transformers' Metaspace: a leading space is not given back */
            /* the GPT-2 fixture adds a prefix space (add_prefix_space) that decoding keeps */
            int pre = ti == 2 && len && buf[0] != ' ';
            if (exact)
                ck_assert_msg(blen == len + pre && !memcmp(back + pre, buf, len) && (!pre || back[0] == ' '),
                              "tokenizer %d, iteration %d: round trip", ti, iter);
            free(ids);
            free(back);
        }
    }
    for (int i = 0; i < nt; i++)
        awq_tok_free(toks[i]);
    awq_tok_free(nfc);
}
END_TEST

START_TEST(test_corrupted_files)
{
    uint64_t s = tu_seed() ^ 0x5EED;
    const char *names[] = { "tokenizer-tiny-sp", "tokenizer-tiny-bytelevel" };
    char *dir = tu_tmpdir("tokfuzz");
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int loaded = 0, failed = 0;
    for (int f = 0; f < 2; f++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/data/%s/tokenizer.json", names[f]);
        char *p = src_path(rel);
        size_t len;
        char *orig = read_file(p, &len);
        free(p);
        char *buf = malloc(len);
        for (int iter = 0; iter < 150; iter++) {
            memcpy(buf, orig, len);
            size_t n = len;
            int kind = (int)(tu_next(&s) % 3);
            if (kind == 0) {
                n = tu_next(&s) % len;                          /* truncate */
            } else {
                int flips = 1 + (int)(tu_next(&s) % 4);         /* change a few bytes */
                for (int k = 0; k < flips; k++) {
                    static const char pool[] = "0123456789-\"{}[],: tfnu\\<>a";
                    buf[tu_next(&s) % len] = kind == 1 ? pool[tu_next(&s) % (sizeof pool - 1)]
                                                       : (char)(tu_next(&s) & 0xFF);
                }
            }
            ck_assert_int_eq(tu_write_file(path, buf, n), 0);
            struct awq_errbuf err = { 0 };
            struct awq_tok *t = NULL;
            int rc = awq_tok_load(dir, &t, &err);
            if (rc == 0) {
                loaded++;
                int32_t *ids;
                size_t ni;
                if (awq_tok_encode(t, "the cat <s> caf\xc3\xa9 12345\xff", 21, 1, &ids, &ni, &err) == 0) {
                    char *back;
                    size_t bl;
                    if (awq_tok_decode(t, ids, ni, 0, &back, &bl, &err) == 0)
                        free(back);
                    free(ids);
                }
                awq_tok_free(t);
            } else {
                failed++;
                ck_assert_ptr_null(t);
                ck_assert(rc == AWQ_ERR_BAD_JSON || rc == AWQ_ERR_BAD_TOKENIZER || rc == AWQ_ERR_UNSUPPORTED);
                ck_assert(err.msg[0] != '\0');
            }
        }
        free(buf);
        free(orig);
    }
    fprintf(stderr, "corrupted tokenizer.json: %d loaded, %d refused\n", loaded, failed);
    ck_assert_int_gt(failed, 0);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_public_api)
{
    awq_context *ctx;
    ck_assert_int_eq(awq_context_create(NULL, &ctx), 0);
    awq_tokenizer *tok = (awq_tokenizer *)1;
    ck_assert_int_eq(awq_tokenizer_load(ctx, "/nonexistent", &tok), AWQ_ERR_NOT_FOUND);
    ck_assert_ptr_null(tok);
    ck_assert_ptr_nonnull(strstr(awq_context_last_error(ctx), "/nonexistent"));
    ck_assert_int_eq(awq_tokenizer_load(NULL, "x", &tok), AWQ_ERR_INVALID_ARGUMENT);
    char *p = src_path("tests/data/tokenizer-tiny-sp/tokenizer.json");   /* a file path works too */
    ck_assert_int_eq(awq_tokenizer_load(ctx, p, &tok), 0);
    free(p);
    ck_assert_int_eq(awq_tokenizer_vocab_size(tok), 271);
    ck_assert_int_eq(awq_tokenizer_bos(tok), 1);
    ck_assert_int_eq(awq_tokenizer_eos(tok), -1);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(awq_tokenize(tok, "the cat", 7, 1, &ids, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[2], 270);
    char *text;
    size_t len;
    ck_assert_int_eq(awq_detokenize(tok, ids, n, 1, &text, &len), 0);
    ck_assert_str_eq(text, "the cat");
    ck_assert_uint_eq(len, 7);
    awq_free(text);
    awq_free(ids);
    ck_assert_int_eq(awq_tokenize(tok, "", 0, 0, &ids, &n), 0);       /* empty: a freeable array */
    ck_assert_ptr_nonnull(ids);
    ck_assert_uint_eq(n, 0);
    awq_free(ids);
    int32_t bad = 9999;
    ck_assert_int_eq(awq_detokenize(tok, &bad, 1, 0, &text, &len), AWQ_ERR_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(awq_tokenizer_last_error(tok), "9999"));
    ck_assert_int_eq(awq_tokenize(tok, NULL, 3, 0, &ids, &n), AWQ_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(awq_tokenize(NULL, "x", 1, 0, &ids, &n), AWQ_ERR_INVALID_ARGUMENT);
    awq_tokenizer_destroy(tok);
    awq_tokenizer_destroy(NULL);
    awq_free(NULL);
    awq_context_destroy(ctx);
}
END_TEST

static Suite *tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiny_bytelevel_llama3);
    tcase_add_test(tc, test_tiny_gpt2);
    tcase_add_test(tc, test_tiny_sp);
    tcase_add_test(tc, test_sp_unk_and_options);
    tcase_add_test(tc, test_tokenizer_config);
    tcase_add_test(tc, test_metaspace);
    tcase_add_test(tc, test_split_behaviors);
    tcase_add_test(tc, test_regex_spaces);
    tcase_add_test(tc, test_nfc_vectors);
    tcase_add_test(tc, test_public_api);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_set_timeout(tc, 600);   /* valgrind runs */
    tcase_add_test(tc, test_stories_reference);
    tcase_add_test(tc, test_stories_dir_vs_file);
    tcase_add_test(tc, test_stories_eval_roundtrip);
    tcase_add_loop_test(tc, test_generated_vectors, 0, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad input");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_random_bytes);
    tcase_add_test(tc, test_corrupted_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tokenizer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
