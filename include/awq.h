/*
 * libawq — 4-bit AWQ quantization and inference of Llama-family models on CPUs and GPUs.
 *
 * This is the only public header. Every function returns an awq status (0 = success, negative =
 * error) unless it says otherwise; awq_strerror() names a code, and each handle keeps the detailed
 * message of its last failure (file, tensor, offset...) for awq_*_last_error(). The library never
 * prints and never exits: logging, progress and cancellation go through the callbacks given to
 * awq_context_create(). Handles are independent; one handle must not be used by two threads at once.
 * destroy(NULL) is always a no-op.
 */
#ifndef AWQ_H
#define AWQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(AWQ_BUILDING_LIBRARY)
#  define AWQ_API __declspec(dllexport)
#elif defined(__GNUC__) && defined(AWQ_BUILDING_LIBRARY)
#  define AWQ_API __attribute__((visibility("default")))
#else
#  define AWQ_API
#endif

/* ---- version ------------------------------------------------------------------------------ */
#define AWQ_VERSION_MAJOR 0
#define AWQ_VERSION_MINOR 1
#define AWQ_VERSION_PATCH 0
#define AWQ_VERSION_STRING "0.1.0"
#define AWQ_VERSION_NUMBER (AWQ_VERSION_MAJOR * 10000 + AWQ_VERSION_MINOR * 100 + AWQ_VERSION_PATCH)

/** Version of the library actually loaded ("0.1.0"); compare with AWQ_VERSION_STRING. */
AWQ_API const char *awq_version(void);
/** AWQ_VERSION_NUMBER of the library actually loaded. */
AWQ_API int awq_version_number(void);
/** One line saying which backends were compiled in, e.g. "cpu cuda opencl vulkan". */
AWQ_API const char *awq_build_info(void);

/* ---- status codes --------------------------------------------------------------------------- */
typedef enum awq_status {
    AWQ_OK = 0,
    AWQ_ERR_INVALID_ARGUMENT = -1,  /* a NULL handle, a negative size, an unknown enum value */
    AWQ_ERR_OUT_OF_MEMORY = -2,     /* host allocation failed */
    AWQ_ERR_IO = -3,                /* open/read/write/rename failed (errno text in the message) */
    AWQ_ERR_NOT_FOUND = -4,         /* a file, tensor, shard or config field that must exist does not */
    AWQ_ERR_TRUNCATED = -5,         /* a file ends before its header says it should */
    AWQ_ERR_HEADER_TOO_LARGE = -6,  /* safetensors header length beyond the file or the 100 MB cap */
    AWQ_ERR_BAD_JSON = -7,          /* text that is not JSON, or JSON of the wrong shape */
    AWQ_ERR_BAD_OFFSETS = -8,       /* tensor data offsets reversed or past the end of the data */
    AWQ_ERR_OVERLAP = -9,           /* two tensors share bytes */
    AWQ_ERR_BAD_DTYPE = -10,        /* unknown dtype, or the wrong dtype for this use */
    AWQ_ERR_BAD_SHAPE = -11,        /* shape does not match the byte size or what the model needs */
    AWQ_ERR_UNSUPPORTED = -12,      /* a valid input this version does not handle (named in the message) */
    AWQ_ERR_NO_DEVICE = -13,        /* no backend/device matches the request */
    AWQ_ERR_BACKEND = -14,          /* the device runtime failed (its own message is in the detail) */
    AWQ_ERR_DEVICE_MEMORY = -15,    /* the device is out of memory */
    AWQ_ERR_OUT_OF_BOUNDS = -16,    /* a buffer range past the end of its buffer */
    AWQ_ERR_CANCELLED = -17,        /* the cancel callback asked to stop */
    AWQ_ERR_BAD_CONFIG = -18,       /* config.json missing a field, or contradicting itself */
    AWQ_ERR_BAD_TOKENIZER = -19,    /* tokenizer.json malformed or of an unsupported kind */
    AWQ_ERR_BAD_INPUT = -20,        /* user data (calibration text, prompt, ids) unusable */
    AWQ_ERR_DUPLICATE = -21,        /* a name given twice (tensor names in a header or a shard index) */
    AWQ_ERR_BAD_HEADER = -22        /* a structurally invalid file header (not JSON-level) */
} awq_status;

/** Short, static description of a status code ("file truncated"); never NULL. */
AWQ_API const char *awq_strerror(int status);

/* ---- data types ---------------------------------------------------------------------------- */
typedef enum awq_dtype {
    AWQ_DTYPE_F32 = 0,
    AWQ_DTYPE_F16 = 1,
    AWQ_DTYPE_BF16 = 2,
    AWQ_DTYPE_I32 = 3,
    AWQ_DTYPE_I64 = 4,
    AWQ_DTYPE_U8 = 5,
    AWQ_DTYPE_I8 = 6,
    AWQ_DTYPE_I16 = 7,
    AWQ_DTYPE_F64 = 8,
    AWQ_DTYPE_BOOL = 9,
    AWQ_DTYPE_COUNT
} awq_dtype;

/** Bytes per element (0 for an unknown value). */
AWQ_API size_t awq_dtype_size(awq_dtype t);
/** Safetensors name of a dtype ("F32", "BF16"...), or NULL. */
AWQ_API const char *awq_dtype_name(awq_dtype t);

/* ---- callbacks and the context --------------------------------------------------------------- */
typedef enum awq_log_level { AWQ_LOG_ERROR = 0, AWQ_LOG_WARN = 1, AWQ_LOG_INFO = 2, AWQ_LOG_DEBUG = 3 } awq_log_level;

/** Receives one message (no trailing newline). */
typedef void (*awq_log_fn)(void *user, awq_log_level level, const char *message);
/** Long work reports `done` of `total` units of `stage` ("block 3/22: scale search"). */
typedef void (*awq_progress_fn)(void *user, const char *stage, double done, double total);
/** Polled between units of long work; return nonzero to stop it with AWQ_ERR_CANCELLED. */
typedef int (*awq_cancel_fn)(void *user);

typedef struct awq_context_options {
    size_t struct_size;          /* sizeof(awq_context_options), for forward compatibility */
    awq_log_fn log;              /* NULL: silent */
    awq_log_level log_level;     /* messages above this level are dropped */
    awq_progress_fn progress;    /* NULL: no progress reports */
    awq_cancel_fn cancel;        /* NULL: never cancelled */
    void *user;                  /* passed to every callback */
    int cpu_threads;             /* CPU backend worker threads; 0 = one per online core */
} awq_context_options;

/** Fills `opt` with defaults (silent, no callbacks, all cores). */
AWQ_API void awq_context_options_init(awq_context_options *opt);

typedef struct awq_context awq_context;

/** Creates a context; `opt` may be NULL for defaults. Backends are probed lazily. */
AWQ_API int awq_context_create(const awq_context_options *opt, awq_context **out);
AWQ_API void awq_context_destroy(awq_context *ctx);
/** Detail of the last failure of a call on this context (never NULL; "" when none). */
AWQ_API const char *awq_context_last_error(const awq_context *ctx);

/* ---- backends and devices ------------------------------------------------------------------ */
typedef enum awq_device_type { AWQ_DEVICE_CPU = 0, AWQ_DEVICE_GPU = 1, AWQ_DEVICE_OTHER = 2 } awq_device_type;

typedef struct awq_device_info {
    char backend[16];        /* "cpu", "cuda", "opencl", "vulkan" */
    int index;               /* index within its backend (what AWQ_DEVICE selects) */
    char name[128];
    char vendor[64];
    char driver[64];         /* driver / runtime version text, "" when unknown */
    awq_device_type type;
    uint64_t memory_bytes;   /* total device (or host) memory */
    int fp16;                /* fp16 arithmetic available in kernels */
    int compute_units;
} awq_device_info;

/** Number of backends compiled in. */
AWQ_API int awq_backend_count(awq_context *ctx);
/** Name of backend i ("cpu"...), or NULL when out of range. */
AWQ_API const char *awq_backend_name(awq_context *ctx, int i);
/**
 * Probes backend i and returns its number of devices (>= 0), or a negative status when the backend
 * is unusable on this machine; awq_context_last_error() then says why ("no OpenCL platform").
 */
AWQ_API int awq_backend_device_count(awq_context *ctx, int i);
/** Describes device `index` of backend i. */
AWQ_API int awq_backend_device_info(awq_context *ctx, int i, int index, awq_device_info *out);

typedef struct awq_device awq_device;

/**
 * Opens a device. `backend` NULL or "" picks the default: the environment's AWQ_BACKEND and
 * AWQ_DEVICE when set, else the best GPU found (CUDA, then Vulkan, then OpenCL), else the CPU.
 * `index` < 0 means "the backend's preferred device" (a GPU before a CPU implementation).
 * A backend named explicitly that cannot be used is an error, never a silent fallback.
 */
AWQ_API int awq_device_open(awq_context *ctx, const char *backend, int index, awq_device **out);
AWQ_API void awq_device_close(awq_device *dev);
AWQ_API int awq_device_get_info(const awq_device *dev, awq_device_info *out);
AWQ_API const char *awq_device_last_error(const awq_device *dev);
/** Waits until all work queued on the device has finished. */
AWQ_API int awq_device_synchronize(awq_device *dev);

/* ---- device memory --------------------------------------------------------------------------- */
typedef struct awq_buffer awq_buffer;

AWQ_API int awq_buffer_create(awq_device *dev, size_t bytes, awq_buffer **out);
AWQ_API void awq_buffer_destroy(awq_buffer *buf);
AWQ_API size_t awq_buffer_size(const awq_buffer *buf);
/** Copies host memory into the buffer at `offset` (returns once `src` may be reused). */
AWQ_API int awq_buffer_write(awq_buffer *buf, size_t offset, const void *src, size_t bytes);
/** Copies buffer contents to host memory (waits for queued work that writes the buffer). */
AWQ_API int awq_buffer_read(awq_buffer *buf, size_t offset, void *dst, size_t bytes);

/* ---- 4-bit weights and the quantized matrix product --------------------------------------- */
typedef struct awq_qweight awq_qweight;

/**
 * Uploads one 4-bit linear layer in the AutoAWQ "GEMM" layout: K input and N output channels,
 * groups of `group_size` consecutive input channels. qweight int32 [K, N/8], qzeros int32
 * [K/group_size, N/8], scales fp16 bits [K/group_size, N]; packing order {0,2,4,6,1,3,5,7}.
 * The backend may repack into its own layout; the host arrays may be freed on return.
 */
AWQ_API int awq_qweight_create(awq_device *dev, int K, int N, int group_size, const int32_t *qweight,
                               const int32_t *qzeros, const uint16_t *scales, awq_qweight **out);
AWQ_API void awq_qweight_destroy(awq_qweight *w);

typedef struct awq_gemm_w4_params {
    int M;                       /* rows of X and Y (1 = decode) */
    awq_dtype x_type;            /* AWQ_DTYPE_F32 or AWQ_DTYPE_F16 */
    awq_buffer *x;               /* X [M, K], row-major */
    size_t x_offset;             /* bytes */
    awq_dtype y_type;            /* AWQ_DTYPE_F32 or AWQ_DTYPE_F16 */
    awq_buffer *y;               /* Y [M, N], row-major */
    size_t y_offset;
    awq_buffer *bias;            /* optional fp32 [N] */
    size_t bias_offset;
    awq_buffer *act_scale;       /* optional fp32 [K]: X[:, k] is multiplied by act_scale[k] first */
    size_t act_scale_offset;
} awq_gemm_w4_params;

/** Y = (X ⊙ act_scale) · dequant(W) + bias. Queued; read Y back to wait. */
AWQ_API int awq_gemm_w4(awq_device *dev, const awq_qweight *w, const awq_gemm_w4_params *p);

/* ---- tokenizer (src/tokenizer) -------------------------------------------------------------- */
/*
 * Hugging Face tokenizer.json BPE tokenizers (SentencePiece-style with byte fallback, and byte-level
 * GPT-2 style), giving the ids of the `tokenizers` library. Results are allocated by the library and
 * released with awq_free(), so they cross a DLL boundary safely. Text is bytes: any input encodes
 * (bytes that are not UTF-8 become byte tokens), and decoding returns exact bytes — a lone token can
 * end inside a UTF-8 character. For streaming output, decode the whole sequence and print what was
 * added: a token's text may depend on its neighbours (the leading space of the first word).
 */
typedef struct awq_tokenizer awq_tokenizer;

/**
 * Loads `path`: a model directory (tokenizer.json, plus tokenizer_config.json when present), which
 * gives the ids of transformers' AutoTokenizer, or a tokenizer.json file read alone, which gives
 * those of the tokenizers library. (They differ only where transformers rebuilds a class itself:
 * Llama's SentencePiece tokenizers, for text starting with a space or following a special token.)
 * On failure *out is NULL and awq_context_last_error(ctx) says why (AWQ_ERR_NOT_FOUND,
 * AWQ_ERR_BAD_JSON, AWQ_ERR_BAD_TOKENIZER, AWQ_ERR_UNSUPPORTED, naming the field). The tokenizer
 * does not keep `ctx`.
 */
AWQ_API int awq_tokenizer_load(awq_context *ctx, const char *path, awq_tokenizer **out);
AWQ_API void awq_tokenizer_destroy(awq_tokenizer *tok);
/** Detail of the last failure of a call on this tokenizer (never NULL; "" when none). */
AWQ_API const char *awq_tokenizer_last_error(const awq_tokenizer *tok);

/**
 * Encodes `len` bytes of `text`. add_special: add BOS/EOS as the model's post-processor and
 * tokenizer_config.json say (the `add_special_tokens=True` of transformers). On success *ids is a
 * new array of *n_ids ids (never NULL, even when empty): release it with awq_free().
 */
AWQ_API int awq_tokenize(awq_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                         size_t *n_ids);
/**
 * Decodes ids to text: *text is a new NUL-terminated string of *len bytes (not counting the NUL),
 * released with awq_free(). skip_special drops special tokens (<s>, <|begin_of_text|>...).
 * An id outside the vocabulary is AWQ_ERR_BAD_INPUT.
 */
AWQ_API int awq_detokenize(awq_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special,
                           char **text, size_t *len);
/** Number of ids (model vocabulary and added tokens); embeddings may have more rows. */
AWQ_API int awq_tokenizer_vocab_size(const awq_tokenizer *tok);
/** Id of the BOS / EOS token, or -1 when the tokenizer has none. */
AWQ_API int awq_tokenizer_bos(const awq_tokenizer *tok);
AWQ_API int awq_tokenizer_eos(const awq_tokenizer *tok);
/** Frees memory returned by libawq (token arrays, text); NULL is a no-op. */
AWQ_API void awq_free(void *p);

/* ---- models, forward pass and perplexity (src/model) ------------------------------------------- */

typedef struct awq_model awq_model;

typedef struct awq_model_options {
    size_t struct_size;      /* sizeof(awq_model_options) */
    int dequantize;          /* run 4-bit layers as dequantized fp32 matrices (the reference path) */
    int f16_weights;         /* keep unquantized weights in fp16 on the device (half the memory) */
    int max_context;         /* KV cache length for generation; 0 = min(max_position_embeddings, 4096) */
} awq_model_options;

AWQ_API void awq_model_options_init(awq_model_options *opt);
/**
 * Loads a Hugging Face Llama-family model directory (unquantized fp32/fp16/bf16, or an AWQ GEMM
 * checkpoint from libawq or AutoAWQ) onto `dev`, with its tokenizer. On failure, the detail is in
 * awq_device_last_error(dev).
 */
AWQ_API int awq_model_load(awq_device *dev, const char *dir, const awq_model_options *opt, awq_model **out);
AWQ_API void awq_model_destroy(awq_model *m);
AWQ_API const char *awq_model_last_error(const awq_model *m);

typedef struct awq_perplexity {
    double ppl;              /* exp(mean negative log-likelihood) */
    double mean_nll;
    size_t n_tokens;         /* tokens in the text (BOS included) */
    size_t n_scored;         /* predictions scored */
    int n_windows;
} awq_perplexity;

/**
 * Perplexity over a text file: each non-empty line is tokenized with BOS, all ids are concatenated
 * and cut into consecutive windows of `window` tokens (the remainder is dropped); each window is
 * scored independently on tokens 2..window.
 */
AWQ_API int awq_model_perplexity(awq_model *m, const char *text_path, int window, awq_perplexity *out);

/** Called with each generated piece of text; return nonzero to stop. */
typedef int (*awq_token_fn)(void *user, int token, const char *piece);

typedef struct awq_generate_options {
    size_t struct_size;      /* sizeof(awq_generate_options) */
    int max_new_tokens;      /* default 128 */
    float temperature;       /* 0 = greedy (default) */
    float top_p;             /* nucleus sampling mass, default 1 */
    uint64_t seed;
    int stop_at_eos;         /* default 1 */
    awq_token_fn on_token;   /* optional streaming callback */
    void *user;
} awq_generate_options;

AWQ_API void awq_generate_options_init(awq_generate_options *opt);
/** Generates from `prompt` (BOS added); *text (free with awq_free) holds prompt + continuation. */
AWQ_API int awq_model_generate(awq_model *m, const char *prompt, const awq_generate_options *opt, char **text);

/* ---- quantization pipeline (src/quant) --------------------------------------------------------- */

typedef enum awq_method {
    AWQ_METHOD_AWQ = 0,      /* activation-aware scale search + clip search (the default) */
    AWQ_METHOD_RTN = 1       /* plain round-to-nearest with the same grouping: the baseline */
} awq_method;

typedef enum awq_calib_format {
    AWQ_CALIB_FORMAT_AUTO = 0,   /* token ids if the file holds only digits and whitespace, else text */
    AWQ_CALIB_FORMAT_TEXT = 1,   /* documents separated by blank lines, or one per line */
    AWQ_CALIB_FORMAT_IDS = 2     /* one document per line of whitespace-separated token ids */
} awq_calib_format;

typedef struct awq_quantize_options {
    size_t struct_size;          /* sizeof(awq_quantize_options) */
    awq_method method;
    int group_size;              /* 32, 64 or 128 (default 128) */
    const char *calib_path;      /* calibration file (required for AWQ) */
    awq_calib_format calib_format;
    int n_samples;               /* documents used (default 128) */
    int seqlen;                  /* tokens per calibration block (default 512) */
    int n_grid;                  /* scale search grid points (default 20) */
    double alpha;                /* fixed ratio in [0, 1] instead of the search; < 0 = search (default) */
    int duo_scaling;             /* AutoAWQ's weight-aware scales (default 0) */
    int clip;                    /* clip search (default 1) */
    int clip_tokens;             /* calibration tokens sampled for the clip search (default 512) */
    uint64_t shard_bytes;        /* start a new safetensors shard above this size (default 5e9) */
    int keep_dtype;              /* store unquantized tensors in their source dtype instead of fp16 */
} awq_quantize_options;

AWQ_API void awq_quantize_options_init(awq_quantize_options *opt);

typedef struct awq_quantize_report awq_quantize_report;

/**
 * Quantizes the Hugging Face model in `model_dir` on `dev` and writes an AutoAWQ GEMM checkpoint to
 * `out_dir` (atomically: an interrupted or failed run leaves an existing `out_dir` untouched).
 * Progress, log and cancellation go through the context's callbacks. `report` (optional; destroy
 * with awq_quantize_report_destroy) describes what the search chose. Detail of a failure:
 * awq_device_last_error(dev).
 */
AWQ_API int awq_quantize(awq_device *dev, const char *model_dir, const char *out_dir,
                         const awq_quantize_options *opt, awq_quantize_report **report);
/** The report as JSON text (owned by the report). */
AWQ_API const char *awq_quantize_report_json(const awq_quantize_report *r);
AWQ_API void awq_quantize_report_destroy(awq_quantize_report *r);

/** Device memory held by buffers and weights of `dev`, now and at its peak, in bytes. */
AWQ_API int awq_device_memory(const awq_device *dev, uint64_t *in_use, uint64_t *peak);
AWQ_API void awq_device_reset_peak(awq_device *dev);

#ifdef __cplusplus
}
#endif
#endif /* AWQ_H */
