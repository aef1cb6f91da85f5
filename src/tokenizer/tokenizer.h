/* Hugging Face tokenizer.json BPE tokenizers (SentencePiece-style with byte fallback, and
 * byte-level GPT-2 style), producing the same ids as the `tokenizers` library. Internal API; the
 * public wrappers are in include/awq.h ("tokenizer"). */
#ifndef AWQ_TOKENIZER_H
#define AWQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct awq_tok;

/* Loads <dir>/tokenizer.json and, when present, <dir>/tokenizer_config.json (add_bos_token,
 * add_eos_token, bos/eos token names, extra special tokens, and for tokenizer_class
 * LlamaTokenizer(Fast) the pipeline transformers 5 rebuilds from legacy / add_prefix_space): a
 * directory gives the ids of transformers' AutoTokenizer. `path` may also name a tokenizer.json
 * file, read alone: the ids of the tokenizers library's Tokenizer.from_file.
 * Errors: AWQ_ERR_NOT_FOUND, AWQ_ERR_BAD_JSON, AWQ_ERR_BAD_TOKENIZER (unknown model type, missing
 * or inconsistent vocab/merges), AWQ_ERR_UNSUPPORTED (a normalizer/pre-tokenizer not handled). */
int awq_tok_load(const char *path, struct awq_tok **out, struct awq_errbuf *err);
void awq_tok_free(struct awq_tok *t);

/* Encodes `len` bytes of text (any bytes, not necessarily valid UTF-8). add_special: add BOS/EOS
 * as the tokenizer's post-processor / tokenizer_config say (like tokenizers' add_special_tokens).
 * *ids is malloc'd (caller frees), *n its length. */
int awq_tok_encode(const struct awq_tok *t, const char *text, size_t len, int add_special,
                   int32_t **ids, size_t *n, struct awq_errbuf *err);
/* Decodes ids to text (malloc'd, NUL-terminated, *len without the NUL). skip_special drops
 * special tokens such as <s>. Ids out of range → AWQ_ERR_BAD_INPUT. */
int awq_tok_decode(const struct awq_tok *t, const int32_t *ids, size_t n, int skip_special,
                   char **text, size_t *len, struct awq_errbuf *err);

int awq_tok_vocab_size(const struct awq_tok *t);
int awq_tok_bos(const struct awq_tok *t);   /* -1 when none */
int awq_tok_eos(const struct awq_tok *t);   /* -1 when none */

#endif
