/* The CUDA backend: discovery, one stream + cuBLAS handle per opened device, device memory,
 * scratch buffers, error reporting, and the ops table. Kernels live in the other cuda_*.cu files.
 *
 * The CUDA runtime is linked statically, so libawq loads on a machine without the NVIDIA driver;
 * there init() fails with the runtime's own message and the backend is skipped. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define CU_BLAS_WORKSPACE (32u << 20)   /* what cuBLAS recommends for Hopper */
#define CU_W4_CUBLAS_MIN_M 160          /* where dequantize + cuBLAS beats the fused kernel (H100) */

struct cu_devinfo {
    char name[128];
    uint64_t memory;
    int sms, cc;
};

struct cu_state {
    int count;
    int driver, runtime;      /* versions, 1000 * major + 10 * minor */
    struct cu_devinfo *devs;
};

/* ---- errors --------------------------------------------------------------------------------- */

static int status_of(cudaError_t e)
{
    switch (e) {
    case cudaErrorMemoryAllocation:
        return AWQ_ERR_DEVICE_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorStubLibrary:
        return AWQ_ERR_NO_DEVICE;
    default:
        return AWQ_ERR_BACKEND;
    }
}

/* Errors that leave the CUDA context unusable: they come from a kernel that ran earlier. */
static int sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
        return 1;
    default:
        return 0;
    }
}

int cu_fail(struct cu_dev *d, cudaError_t e, const char *op, const char *what)
{
    (void)cudaGetLastError();   /* a non-sticky error must not resurface in the next op */
    return awq_err_set(d->err, status_of(e), "cuda %s: %s failed: %s (%s)%s", op, what,
                       cudaGetErrorString(e), cudaGetErrorName(e),
                       sticky(e) ? "; a kernel queued earlier failed and this process's CUDA context is "
                                   "unusable (AWQ_CUDA_SYNC=1 names the kernel)" : "");
}

int cu_blas_fail(struct cu_dev *d, cublasStatus_t s, const char *op, const char *what)
{
    (void)cudaGetLastError();
    return awq_err_set(d->err, s == CUBLAS_STATUS_ALLOC_FAILED ? AWQ_ERR_DEVICE_MEMORY : AWQ_ERR_BACKEND,
                       "cuda %s: %s failed: %s (%s)", op, what, cublasGetStatusString(s),
                       cublasGetStatusName(s));
}

int cu_begin(struct cu_dev *d, const char *op)
{
    CU_TRY(d, op, cudaSetDevice(d->index));
    return 0;
}

int cu_scratch(struct cu_dev *d, enum cu_scratch_slot slot, size_t bytes, const char *op, void **out)
{
    struct cu_scratch *s = &d->scr[slot];
    *out = NULL;
    if (bytes == 0)
        bytes = 1;
    if (s->p && s->size >= bytes) {
        *out = s->p;
        return 0;
    }
    /* Grow with headroom so a slowly increasing size does not reallocate every call. */
    size_t want = bytes;
    if (bytes <= SIZE_MAX / 4)
        want = (bytes + bytes / 4 + (1u << 20) - 1) / (1u << 20) * (1u << 20);
    if (s->p) {
        /* queued kernels may still use the old block */
        CU_TRY(d, op, cudaStreamSynchronize(d->stream));
        cudaFree(s->p);
        s->p = NULL;
        s->size = 0;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, want);
    if (e == cudaErrorMemoryAllocation && want > bytes) {
        (void)cudaGetLastError();
        want = bytes;
        e = cudaMalloc(&p, want);
    }
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "cudaMalloc of %zu bytes of scratch", want);
        return cu_fail(d, e, op, what);
    }
    if (slot == CU_SCR_COUNTERS) {
        e = cudaMemsetAsync(p, 0, want, d->stream);
        if (e != cudaSuccess) {
            cudaFree(p);
            return cu_fail(d, e, op, "cudaMemsetAsync of the counters");
        }
    }
    s->p = p;
    s->size = want;
    *out = p;
    return 0;
}

int cu_check_align(struct cu_dev *d, const char *op, const char *name, struct awq_tref r, size_t align)
{
    if (r.buf && ((uintptr_t)cu_ptr(r)) % align)
        return awq_err_set(d->err, AWQ_ERR_INVALID_ARGUMENT,
                           "cuda %s: tensor %s at byte offset %zu is not aligned to %zu bytes", op,
                           name, r.off, align);
    return 0;
}

/* ---- discovery ------------------------------------------------------------------------------ */

static int cu_init(void **state, struct awq_errbuf *err)
{
    *state = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return awq_err_set(err, status_of(e) == AWQ_ERR_BACKEND ? AWQ_ERR_BACKEND : AWQ_ERR_NO_DEVICE,
                           "CUDA unusable: cudaGetDeviceCount failed: %s (%s)%s", cudaGetErrorString(e),
                           cudaGetErrorName(e),
                           e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                               ? "; is an NVIDIA GPU with its driver present?" : "");
    }
    struct cu_state *s = (struct cu_state *)calloc(1, sizeof *s);
    if (!s)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    s->devs = (struct cu_devinfo *)calloc(n > 0 ? (size_t)n : 1, sizeof *s->devs);
    if (!s->devs) {
        free(s);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    cudaDriverGetVersion(&s->driver);
    cudaRuntimeGetVersion(&s->runtime);
    for (int i = 0; i < n; i++) {
        cudaDeviceProp p;
        e = cudaGetDeviceProperties(&p, i);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            free(s->devs);
            free(s);
            return awq_err_set(err, status_of(e), "CUDA: cudaGetDeviceProperties(%d) failed: %s (%s)",
                               i, cudaGetErrorString(e), cudaGetErrorName(e));
        }
        p.name[sizeof p.name - 1] = '\0';
        snprintf(s->devs[i].name, sizeof s->devs[i].name, "%.127s", p.name);
        s->devs[i].memory = (uint64_t)p.totalGlobalMem;
        s->devs[i].sms = p.multiProcessorCount;
        s->devs[i].cc = p.major * 10 + p.minor;
    }
    s->count = n;
    *state = s;
    return 0;
}

static void cu_fini(void *state)
{
    struct cu_state *s = (struct cu_state *)state;
    if (!s)
        return;
    free(s->devs);
    free(s);
}

static int cu_device_count(void *state)
{
    return ((struct cu_state *)state)->count;
}

static int cu_device_info(void *state, int index, struct awq_device_info *out)
{
    const struct cu_state *s = (const struct cu_state *)state;
    if (index < 0 || index >= s->count)
        return AWQ_ERR_NO_DEVICE;
    const struct cu_devinfo *di = &s->devs[index];
    snprintf(out->name, sizeof out->name, "%s", di->name);
    snprintf(out->vendor, sizeof out->vendor, "NVIDIA");
    snprintf(out->driver, sizeof out->driver, "CUDA driver %d.%d, runtime %d.%d, sm_%d",
             s->driver / 1000, s->driver % 1000 / 10, s->runtime / 1000, s->runtime % 1000 / 10, di->cc);
    out->type = AWQ_DEVICE_GPU;
    out->memory_bytes = di->memory;
    out->fp16 = di->cc >= 53;
    out->compute_units = di->sms;
    return 0;
}

/* The GPU with the most multiprocessors (the first of equals). */
static int cu_preferred_device(void *state)
{
    const struct cu_state *s = (const struct cu_state *)state;
    int best = 0;
    for (int i = 1; i < s->count; i++)
        if (s->devs[i].sms > s->devs[best].sms)
            best = i;
    return best;
}

/* ---- a device queue ------------------------------------------------------------------------- */

static void cu_close(void *dev);

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long x = strtol(v, &end, 10);
    return *end || x < 1 || x > 1000000000L ? def : (int)x;
}

/* The same, admitting 0 (a switch turned off). */
static int env_int0(const char *name, int def)
{
    const char *v = getenv(name);
    return v && !strcmp(v, "0") ? 0 : env_int(name, def);
}

static int cu_open(void *state, int index, const awq_context_options *opt, struct awq_errbuf *err,
                   void **out)
{
    const struct cu_state *s = (const struct cu_state *)state;
    (void)opt;
    *out = NULL;
    if (index < 0 || index >= s->count)
        return awq_err_set(err, AWQ_ERR_NO_DEVICE, "CUDA device %d does not exist (%d found)", index,
                           s->count);
    struct cu_dev *d = (struct cu_dev *)calloc(1, sizeof *d);
    if (!d)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    d->index = index;
    d->err = err;
    d->sms = s->devs[index].sms > 0 ? s->devs[index].sms : 1;
    d->cc = s->devs[index].cc;
    /* Tuning knob for the benchmark: rows of X from which gemm_w4 dequantizes to fp16 and calls
     * cuBLAS instead of the fused kernel. */
    d->w4_cublas_min_m = env_int("AWQ_CUDA_W4_CUBLAS_MIN_M", CU_W4_CUBLAS_MIN_M);
    /* ... and the depth of the fused gemm_w4's copy ring (4, 6 or 8; unset: chosen by M) */
    d->w4_depth = env_int("AWQ_CUDA_W4_DEPTH", 0);
    /* ... whether the fused kernel is launched as a programmatic dependent (sm_90+; 0: off) ...
     * and the column chunks of the dequantize + cuBLAS path, in MiB of fp16 weights (unset: as
     * many columns as W4_DEQUANT_SCRATCH holds; the tests use small chunks) */
    d->w4_pdl = env_int0("AWQ_CUDA_W4_PDL", 1) && d->cc >= 90;
    d->w4_chunk_mb = env_int("AWQ_CUDA_W4_CHUNK_MB", 0);
    /* ... and, for M > 8, whether the CTA stages X in shared memory (1) or each warp loads its own */
    d->w4_xsmem = env_int0("AWQ_CUDA_W4_XSMEM", 0);
    /* Debugging aid: wait after every kernel so an asynchronous fault names its kernel. */
    d->sync_debug = env_int("AWQ_CUDA_SYNC", 0) > 0;

    int st = cu_begin(d, "open");
    if (st == 0) {
        cudaError_t e = cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking);
        if (e != cudaSuccess) {
            d->stream = NULL;
            st = cu_fail(d, e, "open", "cudaStreamCreateWithFlags");
        }
    }
    if (st == 0) {
        cublasStatus_t bs = cublasCreate(&d->blas);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            d->blas = NULL;
            st = cu_blas_fail(d, bs, "open", "cublasCreate");
        }
    }
    if (st == 0) {
        cudaError_t e = cudaMalloc(&d->blas_ws, CU_BLAS_WORKSPACE);
        if (e != cudaSuccess) {
            d->blas_ws = NULL;
            st = cu_fail(d, e, "open", "cudaMalloc of the cuBLAS workspace");
        }
    }
    if (st == 0) {
        cublasStatus_t bs = cublasSetStream(d->blas, d->stream);
        if (bs == CUBLAS_STATUS_SUCCESS)
            bs = cublasSetWorkspace(d->blas, d->blas_ws, CU_BLAS_WORKSPACE);
        if (bs != CUBLAS_STATUS_SUCCESS)
            st = cu_blas_fail(d, bs, "open", "binding cuBLAS to the stream and its workspace");
    }
    if (st < 0) {
        cu_close(d);
        return st;
    }
    *out = d;
    return 0;
}

static void cu_close(void *dev)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    if (!d)
        return;
    /* Best effort: a device in an error state still releases what it can. */
    if (cudaSetDevice(d->index) == cudaSuccess) {
        if (d->stream)
            cudaStreamSynchronize(d->stream);
        for (int i = 0; i < CU_SCR_COUNT; i++)
            if (d->scr[i].p)
                cudaFree(d->scr[i].p);
        if (d->blas)
            cublasDestroy(d->blas);
        if (d->blas_ws)
            cudaFree(d->blas_ws);
        if (d->stream)
            cudaStreamDestroy(d->stream);
    }
    (void)cudaGetLastError();
    free(d);
}

static int cu_synchronize(void *dev)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    CU_STATUS_TRY(cu_begin(d, "synchronize"));
    CU_TRY(d, "synchronize", cudaStreamSynchronize(d->stream));
    return 0;
}

/* ---- memory --------------------------------------------------------------------------------- */

static int cu_buf_alloc(void *dev, size_t bytes, void **buf)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    *buf = NULL;
    CU_STATUS_TRY(cu_begin(d, "buffer alloc"));
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        char what[64];
        snprintf(what, sizeof what, "cudaMalloc of %zu bytes", bytes);
        return cu_fail(d, e, "buffer alloc", what);
    }
    *buf = p;
    return 0;
}

static void cu_buf_free(void *dev, void *buf)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    if (!buf || cudaSetDevice(d->index) != cudaSuccess) {
        (void)cudaGetLastError();
        return;
    }
    /* queued work may still read or write the block */
    cudaStreamSynchronize(d->stream);
    cudaFree(buf);
    (void)cudaGetLastError();
}

/* Stream-ordered behind queued ops; waits, so `src` may be reused on return even when it is
 * pinned memory (where an async copy would still be reading it). */
static int cu_buf_write(void *dev, void *buf, size_t off, const void *src, size_t n)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    CU_STATUS_TRY(cu_begin(d, "buffer write"));
    CU_TRY(d, "buffer write", cudaMemcpyAsync((char *)buf + off, src, n, cudaMemcpyHostToDevice, d->stream));
    CU_TRY(d, "buffer write", cudaStreamSynchronize(d->stream));
    return 0;
}

static int cu_buf_read(void *dev, void *buf, size_t off, void *dst, size_t n)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    CU_STATUS_TRY(cu_begin(d, "buffer read"));
    CU_TRY(d, "buffer read", cudaMemcpyAsync(dst, (const char *)buf + off, n, cudaMemcpyDeviceToHost, d->stream));
    CU_TRY(d, "buffer read", cudaStreamSynchronize(d->stream));
    return 0;
}

static int cu_buf_copy(void *dev, void *src, size_t src_off, void *dst, size_t dst_off, size_t n)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "buffer copy";
    CU_STATUS_TRY(cu_begin(d, op));
    const char *s = (const char *)src + src_off;
    char *t = (char *)dst + dst_off;
    if (s == t)
        return 0;
    if (s < t + n && t < s + n) {
        /* overlapping ranges (memmove semantics): bounce through scratch */
        void *tmp;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_COPY, n, op, &tmp));
        CU_TRY(d, op, cudaMemcpyAsync(tmp, s, n, cudaMemcpyDeviceToDevice, d->stream));
        CU_TRY(d, op, cudaMemcpyAsync(t, tmp, n, cudaMemcpyDeviceToDevice, d->stream));
        return 0;
    }
    CU_TRY(d, op, cudaMemcpyAsync(t, s, n, cudaMemcpyDeviceToDevice, d->stream));
    return 0;
}

static int cu_buf_zero(void *dev, void *buf, size_t off, size_t n)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    CU_STATUS_TRY(cu_begin(d, "buffer zero"));
    CU_TRY(d, "buffer zero", cudaMemsetAsync((char *)buf + off, 0, n, d->stream));
    return 0;
}

/* ---- the table ------------------------------------------------------------------------------- */

extern "C" const struct awq_backend_ops awq_backend_cuda = {
    .name = "cuda",
    .init = cu_init,
    .fini = cu_fini,
    .device_count = cu_device_count,
    .device_info = cu_device_info,
    .preferred_device = cu_preferred_device,
    .open = cu_open,
    .close = cu_close,
    .synchronize = cu_synchronize,
    .buf_alloc = cu_buf_alloc,
    .buf_free = cu_buf_free,
    .buf_write = cu_buf_write,
    .buf_read = cu_buf_read,
    .buf_copy = cu_buf_copy,
    .buf_zero = cu_buf_zero,
    .w4_create = cu_w4_create,
    .w4_free = cu_w4_free,
    .gemm_w4 = cu_gemm_w4,
    .gemm = cu_gemm,
    .act_stats = cu_act_stats,
    .rmsnorm = cu_rmsnorm,
    .rope = cu_rope,
    .attention = cu_attention,
    .silu_mul = cu_silu_mul,
    .add = cu_add,
    .embed = cu_embed,
    .pseudo_quant = cu_pseudo_quant,
    .clip_search = cu_clip_search,
    .sq_err = cu_sq_err,
    .scale_cols = cu_scale_cols,
    .cross_entropy = cu_cross_entropy,
};
