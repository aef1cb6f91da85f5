/* awq tokenize: text -> ids (or ids -> text with --decode) with a model's tokenizer. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "awq.h"
#include "cli/cli_util.h"
#include "cli/commands.h"

#define CMD "tokenize"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: awq tokenize MODEL_DIR [TEXT | -f FILE] [--no-special]\n"
            "       awq tokenize MODEL_DIR --decode [ID... | -f FILE] [--no-special]\n"
            "\n"
            "Encodes TEXT (or the bytes of FILE, '-' for standard input) with the model's\n"
            "tokenizer.json and prints the token ids on one line, separated by spaces.\n"
            "MODEL_DIR may also be a tokenizer.json file.\n"
            "\n"
            "  -f, --file FILE   read the text (or, with --decode, the ids) from FILE\n"
            "  -d, --decode      turn ids (arguments, or FILE: separated by spaces, commas,\n"
            "                    newlines) back into text, written exactly as decoded (a\n"
            "                    newline is added only when the output is a terminal)\n"
            "      --no-special  encoding: do not add BOS/EOS; decoding: drop special tokens\n"
            "  -h, --help        this help\n"
            "\n"
            "Exit status: 0 success, 1 failure (unreadable tokenizer or input, bad ids), 2 bad usage.\n");
}

/* Reads a whole file ('-' = stdin); NULL with a message on failure. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        cli_error(CMD, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *p = cap > ((size_t)-1) / 4 ? NULL : realloc(buf, cap * 2 + 1);
        if (!p) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = p;
        cap *= 2;
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || bad) {
        cli_error(CMD, buf ? "read error on %s" : "out of memory reading %s", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Parses ids separated by spaces, commas or brackets; returns the count or -1 (message printed). */
static long parse_ids(const char *s, int32_t **out)
{
    size_t cap = 64, n = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) {
        cli_error(CMD, "out of memory");
        return -1;
    }
    while (*s) {
        if (strchr(" \t\r\n,[]", *s)) {
            s++;
            continue;
        }
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < 0 || x > INT32_MAX || (*end && !strchr(" \t\r\n,[]", *end))) {
            cli_error(CMD, "'%.*s' is not a token id", (int)strcspn(s, " \t\r\n,[]"), s);
            free(v);
            return -1;
        }
        if (n == cap) {
            int32_t *p = realloc(v, cap * 2 * sizeof *v);
            if (!p) {
                free(v);
                cli_error(CMD, "out of memory");
                return -1;
            }
            v = p;
            cap *= 2;
        }
        v[n++] = (int32_t)x;
        s = end;
    }
    *out = v;
    return (long)n;
}

int awq_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *file = NULL;
    int decode = 0, special = 1;
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    if (!pos) {
        cli_error(CMD, "out of memory");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            free(pos);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (i + 1 >= argc || file) {
                cli_error(CMD, file ? "-f given twice" : "%s needs a file name", a);
                free(pos);
                return 2;
            }
            file = argv[++i];
        } else if (!strcmp(a, "-d") || !strcmp(a, "--decode")) {
            decode = 1;
        } else if (!strcmp(a, "--no-special")) {
            special = 0;
        } else if (!strcmp(a, "--")) {
            while (++i < argc)
                pos[npos++] = argv[i];
        } else if (a[0] == '-' && a[1] && !(decode && a[1] >= '0' && a[1] <= '9')) {
            cli_error(CMD, "unknown option '%s' (see awq tokenize --help)", a);
            free(pos);
            return 2;
        } else {
            pos[npos++] = a;
        }
    }
    if (npos < 1) {
        cli_error(CMD, "missing MODEL_DIR (see awq tokenize --help)");
        free(pos);
        return 2;
    }
    model = pos[0];
    if (!decode && ((file && npos > 1) || (!file && npos != 2))) {
        cli_error(CMD, file ? "give TEXT or -f FILE, not both"
                            : npos < 2 ? "missing TEXT or -f FILE" : "too many arguments (quote the text)");
        free(pos);
        return 2;
    }
    if (decode && ((file && npos > 1) || (!file && npos < 2))) {
        cli_error(CMD, file ? "give ids or -f FILE, not both" : "missing ids or -f FILE");
        free(pos);
        return 2;
    }

    /* the input, before loading the (possibly large) tokenizer */
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    long n_ids = 0;
    int status = 1;
    if (decode) {
        if (file) {
            char *s = read_all(file, &len);
            if (!s) {
                free(pos);
                return 1;
            }
            n_ids = parse_ids(s, &ids);
            free(s);
            if (n_ids < 0) {
                free(pos);
                return 1;
            }
        } else {
            size_t total = 1;
            for (int i = 1; i < npos; i++)
                total += strlen(pos[i]) + 1;
            char *s = malloc(total);
            if (!s) {
                cli_error(CMD, "out of memory");
                free(pos);
                return 1;
            }
            s[0] = '\0';
            for (int i = 1; i < npos; i++) {
                strcat(s, pos[i]);
                strcat(s, " ");
            }
            n_ids = parse_ids(s, &ids);
            free(s);
            if (n_ids < 0) {
                free(pos);
                return 2;
            }
        }
    } else if (file) {
        if (!(text = read_all(file, &len))) {
            free(pos);
            return 1;
        }
    } else {
        len = strlen(pos[1]);
    }

    awq_context *ctx = NULL;
    awq_tokenizer *tok = NULL;
    if (awq_context_create(NULL, &ctx) < 0) {
        cli_error(CMD, "cannot create a context");
        goto out;
    }
    int rc = awq_tokenizer_load(ctx, model, &tok);
    if (rc < 0) {
        cli_error(CMD, "%s (%s)", awq_context_last_error(ctx), awq_strerror(rc));
        goto out;
    }
    if (decode) {
        char *out;
        size_t out_len;
        rc = awq_detokenize(tok, ids, (size_t)n_ids, !special, &out, &out_len);
        if (rc < 0) {
            cli_error(CMD, "%s", awq_tokenizer_last_error(tok));
            goto out;
        }
        fwrite(out, 1, out_len, stdout);
        if (isatty(fileno(stdout)))
            fputc('\n', stdout);
        awq_free(out);
    } else {
        int32_t *res;
        size_t n;
        rc = awq_tokenize(tok, text ? text : pos[1], len, special, &res, &n);
        if (rc < 0) {
            cli_error(CMD, "%s", awq_tokenizer_last_error(tok));
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            printf(i ? " %d" : "%d", res[i]);
        putchar('\n');
        awq_free(res);
    }
    if (fflush(stdout) || ferror(stdout)) {
        cli_error(CMD, "write error on standard output");
        goto out;
    }
    status = 0;
out:
    awq_tokenizer_destroy(tok);
    awq_context_destroy(ctx);
    free(text);
    free(ids);
    free(pos);
    return status;
}
