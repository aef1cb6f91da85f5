/* Text files as token streams: the perplexity protocol's "every non-empty line with BOS", and the
 * calibration protocol of DESIGN.md (documents, BOS, skip long ones, first n_samples, blocks). */
#ifndef AWQ_MODEL_CORPUS_H
#define AWQ_MODEL_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "awq.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

enum awq_doc_split { AWQ_SPLIT_AUTO = 0, AWQ_SPLIT_LINES, AWQ_SPLIT_PARAGRAPHS };

/* Tokenizes every non-empty line (without its line terminator) with BOS and concatenates. */
int awq_corpus_lines(const struct awq_tok *tok, const char *path, int32_t **ids, size_t *n,
                     struct awq_errbuf *err);

struct awq_calib_stats {
    size_t docs_seen, docs_used, docs_too_long, tokens_used;
};

/* Calibration blocks: documents (AUTO: paragraphs when the text has blank lines, else lines; each
 * stripped of surrounding whitespace, empty ones skipped) tokenized with BOS, longer than seqlen
 * skipped, the first n_samples concatenated and cut into blocks of seqlen (remainder dropped).
 * An ids file has one document per line of whitespace-separated token ids (AUTO: a file of only
 * digits and whitespace). Fewer tokens than one block is AWQ_ERR_BAD_INPUT. */
int awq_calib_blocks(const struct awq_tok *tok, const char *path, awq_calib_format fmt, int vocab,
                     int n_samples, int seqlen, int32_t **ids, int *n_blocks, struct awq_calib_stats *stats,
                     struct awq_errbuf *err);

#endif
