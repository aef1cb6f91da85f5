/* Whole-file reading with a size cap, and paths. */
#ifndef AWQ_UTIL_FILE_H
#define AWQ_UTIL_FILE_H

#include <stddef.h>

#include "util/error.h"

/* Reads `path` into a malloc'd NUL-terminated buffer; files above max_bytes are refused
 * (AWQ_ERR_BAD_INPUT). A missing file is AWQ_ERR_NOT_FOUND, other failures AWQ_ERR_IO. */
int awq_read_file(const char *path, size_t max_bytes, char **out, size_t *len, struct awq_errbuf *err);
/* dir + "/" + name into out (truncation is an error: AWQ_ERR_INVALID_ARGUMENT). */
int awq_path_join(char *out, size_t n, const char *dir, const char *name, struct awq_errbuf *err);

#endif
