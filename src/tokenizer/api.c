/* Public tokenizer API (include/awq.h, "tokenizer"): a handle with its own last-error message
 * around the internal struct awq_tok. */
#include "config.h"

#include <stdlib.h>

#include "awq.h"
#include "core/context.h"
#include "tokenizer/tokenizer.h"

struct awq_tokenizer {
    struct awq_tok *tok;
    struct awq_errbuf err;
};

AWQ_API int awq_tokenizer_load(awq_context *ctx, const char *path, awq_tokenizer **out)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return AWQ_ERR_INVALID_ARGUMENT;
    if (!path || !out)
        return awq_err_set(&ctx->err, AWQ_ERR_INVALID_ARGUMENT, "awq_tokenizer_load: NULL path or out");
    awq_tokenizer *h = calloc(1, sizeof *h);
    if (!h)
        return awq_err_set(&ctx->err, AWQ_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    int rc = awq_tok_load(path, &h->tok, &ctx->err);
    if (rc) {
        free(h);
        return rc;
    }
    awq_log(ctx, AWQ_LOG_DEBUG, "tokenizer %s: %d ids, bos %d, eos %d", path, awq_tok_vocab_size(h->tok),
            awq_tok_bos(h->tok), awq_tok_eos(h->tok));
    *out = h;
    return AWQ_OK;
}

AWQ_API void awq_tokenizer_destroy(awq_tokenizer *tok)
{
    if (!tok)
        return;
    awq_tok_free(tok->tok);
    free(tok);
}

AWQ_API const char *awq_tokenizer_last_error(const awq_tokenizer *tok)
{
    return tok ? tok->err.msg : "no tokenizer";
}

AWQ_API int awq_tokenize(awq_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                         size_t *n_ids)
{
    if (!tok)
        return AWQ_ERR_INVALID_ARGUMENT;
    return awq_tok_encode(tok->tok, text, len, add_special, ids, n_ids, &tok->err);
}

AWQ_API int awq_detokenize(awq_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special,
                           char **text, size_t *len)
{
    if (!tok)
        return AWQ_ERR_INVALID_ARGUMENT;
    return awq_tok_decode(tok->tok, ids, n_ids, skip_special, text, len, &tok->err);
}

AWQ_API int awq_tokenizer_vocab_size(const awq_tokenizer *tok)
{
    return tok ? awq_tok_vocab_size(tok->tok) : AWQ_ERR_INVALID_ARGUMENT;
}

AWQ_API int awq_tokenizer_bos(const awq_tokenizer *tok)
{
    return tok ? awq_tok_bos(tok->tok) : -1;
}

AWQ_API int awq_tokenizer_eos(const awq_tokenizer *tok)
{
    return tok ? awq_tok_eos(tok->tok) : -1;
}

AWQ_API void awq_free(void *p)
{
    free(p);
}
