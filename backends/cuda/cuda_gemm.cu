/* The unquantized gemm on cuBLAS, and the conversion / bias kernels it shares with gemm_w4.
 *
 * Y[M,N] = X[M,K] · W[N,K]ᵀ with every matrix row-major. cuBLAS is column-major, so it computes
 * the column-major Yᵀ [N x M] (ldc = row stride of Y) = op(A) · op(B) with A = W seen
 * column-major as [K x N] (lda = K) transposed, and B = X seen as [K x M] (ldb = K). */
#include "config.h"

#include "cuda_internal.h"

#define EW_THREADS 256

/* ---- kernels ---------------------------------------------------------------------------------- */

template <typename T>
__global__ void to_f16_kernel(const T *__restrict__ src, const float *__restrict__ col_scale,
                              __half *__restrict__ dst, size_t n, size_t cols)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = cu_load_f(src, i);
        if (col_scale)
            v *= col_scale[i % cols];
        dst[i] = __float2half_rn(v);
    }
}

/* y[m*ldy + n] += bias[n] for an [M, N] block of a matrix of row stride ldy. */
template <typename T>
__global__ void add_bias_kernel(T *__restrict__ y, const float *__restrict__ bias, size_t M, size_t N, size_t ldy)
{
    size_t total = M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t m = i / N, n = i % N, o = m * ldy + n;
        cu_store_f(y, o, cu_load_f(y, o) + bias[n]);
    }
}

/* y[m*ldy + n] = f[m*N + n] + bias[n] (bias optional), rounded once to T. */
template <typename T>
__global__ void f32_to_y_kernel(const float *__restrict__ f, const float *__restrict__ bias,
                                T *__restrict__ y, size_t M, size_t N, size_t ldy)
{
    size_t total = M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t m = i / N, n = i % N;
        cu_store_f(y, m * ldy + n, f[i] + (bias ? bias[n] : 0.0f));
    }
}

/* Grid for a grid-stride loop over n elements: enough blocks to fill the device, no more. */
static unsigned ew_grid(const struct cu_dev *d, size_t n)
{
    unsigned b = cu_blocks(n, EW_THREADS), cap = (unsigned)d->sms * 16u;
    return b < cap ? (b ? b : 1) : cap;
}

/* ---- helpers shared with gemm_w4 ------------------------------------------------------------- */

int cu_to_f16(struct cu_dev *d, const char *op, awq_dtype src_type, const void *src,
              const float *col_scale, __half *dst, size_t rows, size_t cols)
{
    size_t n = rows * cols;
    if (n == 0)
        return 0;
    if (src_type == AWQ_DTYPE_F16 && !col_scale) {
        CU_TRY(d, op, cudaMemcpyAsync(dst, src, n * sizeof(__half), cudaMemcpyDeviceToDevice, d->stream));
        return 0;
    }
    if (src_type == AWQ_DTYPE_F16)
        to_f16_kernel<__half><<<ew_grid(d, n), EW_THREADS, 0, d->stream>>>((const __half *)src, col_scale, dst, n, cols);
    else
        to_f16_kernel<float><<<ew_grid(d, n), EW_THREADS, 0, d->stream>>>((const float *)src, col_scale, dst, n, cols);
    CU_LAUNCHED(d, op, "to_f16_kernel");
    return 0;
}

static int add_bias(struct cu_dev *d, const char *op, awq_dtype y_type, void *y, const float *bias,
                    size_t M, size_t N, size_t ldy)
{
    size_t n = M * N;
    if (!bias || n == 0)
        return 0;
    if (y_type == AWQ_DTYPE_F16)
        add_bias_kernel<__half><<<ew_grid(d, n), EW_THREADS, 0, d->stream>>>((__half *)y, bias, M, N, ldy);
    else
        add_bias_kernel<float><<<ew_grid(d, n), EW_THREADS, 0, d->stream>>>((float *)y, bias, M, N, ldy);
    CU_LAUNCHED(d, op, "add_bias_kernel");
    return 0;
}

static int f32_to_y(struct cu_dev *d, const char *op, const float *f, const float *bias, awq_dtype y_type,
                    void *y, size_t M, size_t N, size_t ldy)
{
    size_t n = M * N;
    if (y_type == AWQ_DTYPE_F16)
        f32_to_y_kernel<__half><<<ew_grid(d, n), EW_THREADS, 0, d->stream>>>(f, bias, (__half *)y, M, N, ldy);
    else
        f32_to_y_kernel<float><<<ew_grid(d, n), EW_THREADS, 0, d->stream>>>(f, bias, (float *)y, M, N, ldy);
    CU_LAUNCHED(d, op, "f32_to_y_kernel");
    return 0;
}

int cu_gemm_f16(struct cu_dev *d, const char *op, int M, int N, int K, const __half *w16,
                const __half *x16, void *y, int ldy, awq_dtype y_type, const float *bias)
{
    const float alpha = 1.0f, beta = 0.0f;
    /* An fp16 Y with a bias is produced in fp32 first, so Y is rounded once (after the bias),
     * unless that scratch would be huge; then the bias is added to the rounded fp16 Y. */
    int via_f32 = y_type == AWQ_DTYPE_F16 && bias && (size_t)M * N <= ((size_t)64 << 20);
    void *c = y;
    int ldc = ldy;
    if (via_f32) {
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_F32, (size_t)M * N * sizeof(float), op, &c));
        ldc = N;
    }
    CU_BLAS_TRY(d, op, cublasGemmEx(d->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w16, CUDA_R_16F, K,
                                    x16, CUDA_R_16F, K, &beta, c,
                                    y_type == AWQ_DTYPE_F16 && !via_f32 ? CUDA_R_16F : CUDA_R_32F, ldc,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (via_f32)
        return f32_to_y(d, op, (const float *)c, bias, y_type, y, (size_t)M, (size_t)N, (size_t)ldy);
    return add_bias(d, op, y_type, y, bias, (size_t)M, (size_t)N, (size_t)ldy);
}

/* ---- gemm ------------------------------------------------------------------------------------- */

int cu_gemm(void *dev, const struct awq_gemm_args *a)
{
    struct cu_dev *d = (struct cu_dev *)dev;
    const char *op = "gemm";
    CU_STATUS_TRY(cu_begin(d, op));
    CU_STATUS_TRY(cu_check_align(d, op, "X", a->x, awq_dtype_size(a->x_type)));
    CU_STATUS_TRY(cu_check_align(d, op, "W", a->w, awq_dtype_size(a->w_type)));
    CU_STATUS_TRY(cu_check_align(d, op, "Y", a->y, awq_dtype_size(a->y_type)));
    CU_STATUS_TRY(cu_check_align(d, op, "bias", a->bias, sizeof(float)));
    const int M = a->M, N = a->N, K = a->K;
    const void *x = cu_ptr(a->x), *w = cu_ptr(a->w);
    void *y = cu_ptr(a->y);
    const float *bias = (const float *)cu_ptr(a->bias);

    if (a->x_type == AWQ_DTYPE_F32 && a->w_type == AWQ_DTYPE_F32) {
        /* fp32 operands: TF32 tensor cores, fp32 result (an fp16 Y goes through scratch) */
        const float alpha = 1.0f, beta = 0.0f;
        void *c = y;
        if (a->y_type == AWQ_DTYPE_F16)
            CU_STATUS_TRY(cu_scratch(d, CU_SCR_F32, (size_t)M * N * sizeof(float), op, &c));
        CU_BLAS_TRY(d, op, cublasGemmEx(d->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, CUDA_R_32F, K,
                                        x, CUDA_R_32F, K, &beta, c, CUDA_R_32F, N,
                                        CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
        if (a->y_type == AWQ_DTYPE_F16)
            return f32_to_y(d, op, (const float *)c, bias, a->y_type, y, (size_t)M, (size_t)N, (size_t)N);
        return add_bias(d, op, a->y_type, y, bias, (size_t)M, (size_t)N, (size_t)N);
    }

    /* At least one fp16 operand: the fp32 one (if any) is rounded to fp16, fp32 accumulation. */
    const __half *x16 = (const __half *)x, *w16 = (const __half *)w;
    if (a->x_type == AWQ_DTYPE_F32) {
        void *p;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_X16, (size_t)M * K * sizeof(__half), op, &p));
        CU_STATUS_TRY(cu_to_f16(d, op, AWQ_DTYPE_F32, x, NULL, (__half *)p, (size_t)M, (size_t)K));
        x16 = (const __half *)p;
    }
    if (a->w_type == AWQ_DTYPE_F32) {
        void *p;
        CU_STATUS_TRY(cu_scratch(d, CU_SCR_W16, (size_t)N * K * sizeof(__half), op, &p));
        CU_STATUS_TRY(cu_to_f16(d, op, AWQ_DTYPE_F32, w, NULL, (__half *)p, (size_t)N, (size_t)K));
        w16 = (const __half *)p;
    }
    return cu_gemm_f16(d, op, M, N, K, w16, x16, y, N, a->y_type, bias);
}
