/* Patterns of Split / Replace components: literal strings, or regexes run by PCRE2. tokenizers
 * runs its regexes with Oniguruma (Ruby syntax, Unicode classes); PCRE2 with UTF + UCP gives the
 * same classes (\p{L}, \p{N}, \s...) and MULTILINE gives Ruby's ^ and $. MATCH_INVALID_UTF lets
 * us run them on any bytes: an invalid sequence simply never matches, so it ends up between
 * matches and is carried through as its own piece. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "tokenizer/internal.h"

/* Oniguruma's Unicode \s is U+0009..U+000D, U+0085 and the Zs, Zl, Zp categories; PCRE2's adds
 * U+180E (through \h). The set written out, inside and outside brackets: */
#define ONIG_SPACE "\\t-\\r\\x{85}\\p{Zs}\\x{2028}\\x{2029}"

/* Copies the regex with \s (anywhere) and \S (outside brackets) spelled out as Oniguruma means
 * them. Escapes, \Q...\E and bracket expressions are followed just enough to tell where we are. */
static int onig_spaces(const char *src, size_t len, struct tok_buf *out)
{
    int in_class = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '\\' && i + 1 < len) {
            char e = src[++i];
            int rc;
            if (e == 's')
                rc = tok_buf_put(out, in_class ? ONIG_SPACE : "[" ONIG_SPACE "]",
                                 in_class ? sizeof ONIG_SPACE - 1 : sizeof ONIG_SPACE + 1);
            else if (e == 'S' && !in_class)
                rc = tok_buf_put(out, "[^" ONIG_SPACE "]", sizeof ONIG_SPACE + 2);
            else if (e == 'Q') {
                /* literal up to \E, copied as it is */
                size_t j = i + 1;
                while (j + 1 < len && !(src[j] == '\\' && src[j + 1] == 'E'))
                    j++;
                j = j + 1 < len ? j + 2 : len;
                rc = tok_buf_put(out, src + i - 1, j - (i - 1));
                i = j - 1;
            } else {
                char two[2] = { c, e };
                rc = tok_buf_put(out, two, 2);
            }
            if (rc)
                return rc;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            if (tok_buf_put(out, "[", 1))
                return AWQ_ERR_OUT_OF_MEMORY;
            /* a ']' right after '[' or '[^' is a literal */
            if (i + 1 < len && src[i + 1] == '^' && tok_buf_put(out, src + ++i, 1))
                return AWQ_ERR_OUT_OF_MEMORY;
            if (i + 1 < len && src[i + 1] == ']' && tok_buf_put(out, src + ++i, 1))
                return AWQ_ERR_OUT_OF_MEMORY;
            continue;
        }
        if (in_class && c == '[' && i + 1 < len && src[i + 1] == ':') {
            /* [:alpha:] inside brackets */
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < len; j++)
                if (src[j] == ':' && src[j + 1] == ']') {
                    end = src + j + 2;
                    break;
                }
            if (end) {
                if (tok_buf_put(out, src + i, (size_t)(end - (src + i))))
                    return AWQ_ERR_OUT_OF_MEMORY;
                i = (size_t)(end - src) - 1;
                continue;
            }
        }
        if (in_class && c == ']')
            in_class = 0;
        if (tok_buf_put(out, &c, 1))
            return AWQ_ERR_OUT_OF_MEMORY;
    }
    return 0;
}

int tok_regex_compile(const char *src, size_t len, const char *where, pcre2_code **out,
                      struct awq_errbuf *err)
{
    int ec;
    PCRE2_SIZE eo;
    struct tok_buf rw = { 0 };
    if (onig_spaces(src, len, &rw))
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(rw.p ? rw.p : ""), rw.len,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_MULTILINE,
                                   &ec, &eo, NULL);
    tok_buf_free(&rw);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return awq_err_set(err, AWQ_ERR_UNSUPPORTED, "tokenizer.json: %s: regex not supported at "
                           "offset %zu: %s", where, (size_t)eo, (const char *)msg);
    }
    /* JIT is an optimization only; the interpreter gives the same matches */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return 0;
}

int tok_pattern_next(const struct tok_pattern *p, pcre2_match_data *md, const char *s, size_t len,
                     size_t from, size_t *ms, size_t *me)
{
    if (!p->is_regex) {
        if (p->lit_len == 0 || from >= len || len - from < p->lit_len)
            return 0;
        /* plain search (memmem is not portable); literals are short */
        const char first = p->lit[0];
        for (size_t i = from; i + p->lit_len <= len; i++) {
            const char *hit = memchr(s + i, first, len - p->lit_len + 1 - i);
            if (!hit)
                return 0;
            i = (size_t)(hit - s);
            if (!memcmp(hit, p->lit, p->lit_len)) {
                *ms = i;
                *me = i + p->lit_len;
                return 1;
            }
        }
        return 0;
    }
    size_t pos = from;
    while (pos <= len) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)s, len, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)   /* the interpreter keeps its frames on the heap */
            rc = pcre2_match(p->re, (PCRE2_SPTR)s, len, pos, PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc < 0)
            return rc;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            return 1;
        }
        if (ov[0] >= len)
            return 0;
        pos = ov[0] + tok_utf8_step(s + ov[0], len - ov[0]);
    }
    return 0;
}

void tok_pattern_free(struct tok_pattern *p)
{
    free(p->lit);
    if (p->re)
        pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}
