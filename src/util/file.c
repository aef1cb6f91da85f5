#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "util/file.h"

int awq_read_file(const char *path, size_t max_bytes, char **out, size_t *len, struct awq_errbuf *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return awq_err_set(err, errno == ENOENT ? AWQ_ERR_NOT_FOUND : AWQ_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int st = 0;
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) {
                st = awq_err_set(err, AWQ_ERR_BAD_INPUT, "%s: larger than the %zu-byte limit", path, max_bytes);
                break;
            }
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                st = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                st = awq_err_set(err, AWQ_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st == 0 && n > max_bytes)
        st = awq_err_set(err, AWQ_ERR_BAD_INPUT, "%s: larger than the %zu-byte limit", path, max_bytes);
    if (st < 0) {
        free(buf);
        return st;
    }
    if (!buf && !(buf = malloc(1)))
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int awq_path_join(char *out, size_t n, const char *dir, const char *name, struct awq_errbuf *err)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n)
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "path too long: %s/%s", dir, name);
    return 0;
}
