#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "model/corpus.h"
#include "util/file.h"

#define MAX_TEXT ((size_t)4 << 30)

/* A growable id array. */
struct ids {
    int32_t *v;
    size_t n, cap;
};

static int ids_push(struct ids *a, const int32_t *src, size_t n, struct awq_errbuf *err)
{
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->n + n)
            cap *= 2;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of memory for %zu tokens", a->n + n);
        a->v = v;
        a->cap = cap;
    }
    memcpy(a->v + a->n, src, n * sizeof *src);
    a->n += n;
    return 0;
}

int awq_corpus_lines(const struct awq_tok *tok, const char *path, int32_t **ids, size_t *n,
                     struct awq_errbuf *err)
{
    char *text;
    size_t len;
    int st = awq_read_file(path, MAX_TEXT, &text, &len, err);
    if (st < 0)
        return st;
    struct ids out = { 0 };
    for (size_t i = 0; i < len && st == 0;) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        size_t l = e > i && text[e - 1] == '\r' ? e - 1 - i : e - i;
        if (l > 0) {
            int32_t *t;
            size_t nt;
            st = awq_tok_encode(tok, text + i, l, 1, &t, &nt, err);
            if (st == 0) {
                st = ids_push(&out, t, nt, err);
                free(t);
            }
        }
        i = e + 1;
    }
    free(text);
    if (st < 0) {
        free(out.v);
        return st;
    }
    *ids = out.v;
    *n = out.n;
    return 0;
}

/* Next document [*b, *e) starting at *pos: one line, or lines up to a blank line. */
static int next_doc(const char *t, size_t len, size_t *pos, enum awq_doc_split mode, size_t *b, size_t *e)
{
    size_t i = *pos;
    while (i < len && (t[i] == '\n' || t[i] == '\r'))
        i++;
    if (i >= len)
        return 0;
    size_t j = i;
    for (;;) {
        while (j < len && t[j] != '\n')
            j++;
        if (mode == AWQ_SPLIT_LINES || j >= len)
            break;
        /* paragraph: stop when the next line is blank (only whitespace) */
        size_t k = j + 1;
        while (k < len && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r'))
            k++;
        if (k >= len || t[k] == '\n')
            break;
        j++;
    }
    *b = i;
    *e = j;
    *pos = j < len ? j + 1 : len;
    return 1;
}

static int has_blank_line(const char *t, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (t[i] == '\n') {
            size_t k = i + 1;
            while (k < len && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r'))
                k++;
            if (k < len && t[k] == '\n')
                return 1;
        }
    return 0;
}

static int all_ids(const char *t, size_t len)
{
    int digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (isdigit((unsigned char)t[i]))
            digits = 1;
        else if (!isspace((unsigned char)t[i]))
            return 0;
    }
    return digits;
}

/* Parses one line of whitespace-separated ids. */
static int parse_ids(const char *s, size_t len, int vocab, size_t line, const char *path, struct ids *doc,
                     struct awq_errbuf *err)
{
    doc->n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && isspace((unsigned char)s[i]))
            i++;
        if (i >= len)
            break;
        long v = 0;
        size_t j = i;
        while (j < len && isdigit((unsigned char)s[j]) && v <= (1L << 31))
            v = v * 10 + (s[j++] - '0');
        if (j == i || (j < len && !isspace((unsigned char)s[j])) || v >= vocab)
            return awq_err_set(err, AWQ_ERR_BAD_INPUT, "%s:%zu: '%.*s' is not a token id below the vocabulary "
                               "size %d", path, line, (int)(j - i + 1 < 32 ? j - i + 1 : 32), s + i, vocab);
        int32_t id = (int32_t)v;
        int st = ids_push(doc, &id, 1, err);
        if (st < 0)
            return st;
        i = j;
    }
    return 0;
}

int awq_calib_blocks(const struct awq_tok *tok, const char *path, awq_calib_format fmt, int vocab,
                     int n_samples, int seqlen, int32_t **ids, int *n_blocks, struct awq_calib_stats *stats,
                     struct awq_errbuf *err)
{
    memset(stats, 0, sizeof *stats);
    *ids = NULL;
    *n_blocks = 0;
    char *text;
    size_t len;
    int st = awq_read_file(path, MAX_TEXT, &text, &len, err);
    if (st < 0)
        return st;
    if (fmt == AWQ_CALIB_FORMAT_AUTO)
        fmt = all_ids(text, len) ? AWQ_CALIB_FORMAT_IDS : AWQ_CALIB_FORMAT_TEXT;
    if (fmt == AWQ_CALIB_FORMAT_TEXT && !tok) {
        free(text);
        return awq_err_set(err, AWQ_ERR_NOT_FOUND, "%s: text calibration data needs the model's tokenizer", path);
    }
    enum awq_doc_split mode = fmt == AWQ_CALIB_FORMAT_IDS || !has_blank_line(text, len) ? AWQ_SPLIT_LINES
                                                                                  : AWQ_SPLIT_PARAGRAPHS;
    struct ids all = { 0 }, doc = { 0 };
    size_t pos = 0, b, e, line = 0;
    while (st == 0 && (int)stats->docs_used < n_samples && next_doc(text, len, &pos, mode, &b, &e)) {
        line++;
        while (b < e && isspace((unsigned char)text[b]))
            b++;
        while (e > b && isspace((unsigned char)text[e - 1]))
            e--;
        if (e == b)
            continue;
        stats->docs_seen++;
        if (fmt == AWQ_CALIB_FORMAT_IDS) {
            st = parse_ids(text + b, e - b, vocab, line, path, &doc, err);
        } else {
            int32_t *t;
            size_t nt;
            st = awq_tok_encode(tok, text + b, e - b, 1, &t, &nt, err);
            if (st == 0) {
                doc.n = 0;
                st = ids_push(&doc, t, nt, err);
                free(t);
            }
        }
        if (st < 0)
            break;
        if (doc.n == 0)
            continue;
        if (doc.n > (size_t)seqlen) {
            stats->docs_too_long++;
            continue;
        }
        stats->docs_used++;
        st = ids_push(&all, doc.v, doc.n, err);
    }
    free(text);
    free(doc.v);
    if (st == 0 && all.n < (size_t)seqlen)
        st = awq_err_set(err, AWQ_ERR_BAD_INPUT, "%s: the calibration data gives %zu tokens from %zu documents "
                         "(%zu longer than %d skipped): fewer than one block of %d tokens", path, all.n,
                         stats->docs_used, stats->docs_too_long, seqlen, seqlen);
    if (st < 0) {
        free(all.v);
        return st;
    }
    *n_blocks = (int)(all.n / (size_t)seqlen);
    stats->tokens_used = (size_t)*n_blocks * (size_t)seqlen;
    *ids = all.v;
    return 0;
}
