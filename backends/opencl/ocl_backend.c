/* The OpenCL backend: discovery over every platform, device queues, buffers, errors.
 *
 * init() lists the devices of all platforms in one flat array (a machine may carry PoCL's CPU
 * device next to a GPU vendor's platform); preferred_device() is the first GPU, a CPU last.
 * open() creates a context and one in-order queue for the device and builds every fixed program
 * (through the binary cache, see ocl_program.c) plus, on NVIDIA, the tensor-core program, which
 * it checks against the fp32 kernels (ocl_gemm.c); no op ever compiles except attention, which
 * compiles once per head_dim on first use. Ops enqueue and return; buf_read blocks;
 * synchronize is clFinish. Kernel parameters come from a per-vendor table (ocl_params.c). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

/* ---- errors and logging ---------------------------------------------------------------------------- */

const char *ocl_err_name(cl_int e)
{
    switch (e) {
#define N(x) case x: return #x;
    N(CL_SUCCESS) N(CL_DEVICE_NOT_FOUND) N(CL_DEVICE_NOT_AVAILABLE) N(CL_COMPILER_NOT_AVAILABLE)
    N(CL_MEM_OBJECT_ALLOCATION_FAILURE) N(CL_OUT_OF_RESOURCES) N(CL_OUT_OF_HOST_MEMORY)
    N(CL_PROFILING_INFO_NOT_AVAILABLE) N(CL_MEM_COPY_OVERLAP) N(CL_IMAGE_FORMAT_MISMATCH)
    N(CL_IMAGE_FORMAT_NOT_SUPPORTED) N(CL_BUILD_PROGRAM_FAILURE) N(CL_MAP_FAILURE)
    N(CL_MISALIGNED_SUB_BUFFER_OFFSET) N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    N(CL_COMPILE_PROGRAM_FAILURE) N(CL_LINKER_NOT_AVAILABLE) N(CL_LINK_PROGRAM_FAILURE)
    N(CL_DEVICE_PARTITION_FAILED) N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) N(CL_INVALID_VALUE)
    N(CL_INVALID_DEVICE_TYPE) N(CL_INVALID_PLATFORM) N(CL_INVALID_DEVICE) N(CL_INVALID_CONTEXT)
    N(CL_INVALID_QUEUE_PROPERTIES) N(CL_INVALID_COMMAND_QUEUE) N(CL_INVALID_HOST_PTR)
    N(CL_INVALID_MEM_OBJECT) N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) N(CL_INVALID_IMAGE_SIZE)
    N(CL_INVALID_SAMPLER) N(CL_INVALID_BINARY) N(CL_INVALID_BUILD_OPTIONS) N(CL_INVALID_PROGRAM)
    N(CL_INVALID_PROGRAM_EXECUTABLE) N(CL_INVALID_KERNEL_NAME) N(CL_INVALID_KERNEL_DEFINITION)
    N(CL_INVALID_KERNEL) N(CL_INVALID_ARG_INDEX) N(CL_INVALID_ARG_VALUE) N(CL_INVALID_ARG_SIZE)
    N(CL_INVALID_KERNEL_ARGS) N(CL_INVALID_WORK_DIMENSION) N(CL_INVALID_WORK_GROUP_SIZE)
    N(CL_INVALID_WORK_ITEM_SIZE) N(CL_INVALID_GLOBAL_OFFSET) N(CL_INVALID_EVENT_WAIT_LIST)
    N(CL_INVALID_EVENT) N(CL_INVALID_OPERATION) N(CL_INVALID_GL_OBJECT) N(CL_INVALID_BUFFER_SIZE)
    N(CL_INVALID_MIP_LEVEL) N(CL_INVALID_GLOBAL_WORK_SIZE) N(CL_INVALID_PROPERTY)
    N(CL_INVALID_IMAGE_DESCRIPTOR) N(CL_INVALID_COMPILER_OPTIONS) N(CL_INVALID_LINKER_OPTIONS)
    N(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef N
    case CL_PLATFORM_NOT_FOUND_KHR:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    default:
        return "unknown OpenCL error";
    }
}

int ocl_fail(struct awq_errbuf *err, cl_int e, const char *what)
{
    int code = AWQ_ERR_BACKEND;
    if (e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES ||
        e == CL_INVALID_BUFFER_SIZE)
        code = AWQ_ERR_DEVICE_MEMORY;
    else if (e == CL_OUT_OF_HOST_MEMORY)
        code = AWQ_ERR_OUT_OF_MEMORY;
    return awq_err_set(err, code, "OpenCL: %s failed: %s (%d)", what, ocl_err_name(e), (int)e);
}

void ocl_log(const struct ocl_dev *d, awq_log_level level, const char *fmt, ...)
{
    if (!d->log || level > d->log_level)
        return;
    char msg[1536];
    int n = snprintf(msg, sizeof msg, "opencl: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    d->log(d->log_user, level, msg);
}

/* ---- discovery ----------------------------------------------------------------------------------------- */

static void dev_str(cl_device_id id, cl_device_info what, char *out, size_t n)
{
    out[0] = '\0';
    size_t len = 0;
    if (clGetDeviceInfo(id, what, n, out, &len) != CL_SUCCESS || len > n)
        out[0] = '\0';
    out[n - 1] = '\0';
    /* trailing blanks are common in vendor strings */
    size_t l = strlen(out);
    while (l && (out[l - 1] == ' ' || out[l - 1] == '\n'))
        out[--l] = '\0';
}

static int dev_has_ext(cl_device_id id, const char *ext)
{
    size_t len = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &len) != CL_SUCCESS || !len)
        return 0;
    char *s = malloc(len + 1);
    if (!s)
        return 0;
    int found = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, len, s, NULL) == CL_SUCCESS) {
        s[len] = '\0';
        size_t el = strlen(ext);
        for (const char *p = s; (p = strstr(p, ext)); p += el)
            if ((p == s || p[-1] == ' ') && (p[el] == ' ' || p[el] == '\0')) {
                found = 1;
                break;
            }
    }
    free(s);
    return found;
}

static void describe(cl_platform_id plat, cl_device_id id, struct ocl_devdesc *d)
{
    memset(d, 0, sizeof *d);
    d->platform = plat;
    d->id = id;
    dev_str(id, CL_DEVICE_NAME, d->name, sizeof d->name);
    dev_str(id, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    dev_str(id, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    size_t len;
    if (clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof d->platform_name, d->platform_name, &len))
        d->platform_name[0] = '\0';
    if (clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof d->platform_version,
                          d->platform_version, &len))
        d->platform_version[0] = '\0';
    d->platform_name[sizeof d->platform_name - 1] = '\0';
    d->platform_version[sizeof d->platform_version - 1] = '\0';
    clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof d->type, &d->type, NULL);
    clGetDeviceInfo(id, CL_DEVICE_VENDOR_ID, sizeof d->vendor_id, &d->vendor_id, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units, &d->compute_units, NULL);
    clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof d->mem, &d->mem, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc, NULL);
    clGetDeviceInfo(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof d->local_mem, &d->local_mem, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg, NULL);
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(id, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    d->cr_divide = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
    d->fp16 = dev_has_ext(id, "cl_khr_fp16");
    d->fp64 = dev_has_ext(id, "cl_khr_fp64");
}

static int ocl_init(void **state, struct awq_errbuf *err)
{
    *state = NULL;
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    if (e == CL_PLATFORM_NOT_FOUND_KHR || (e == CL_SUCCESS && np == 0))
        return awq_err_set(err, AWQ_ERR_NO_DEVICE, "no OpenCL platform found");
    if (e != CL_SUCCESS)
        return ocl_fail(err, e, "clGetPlatformIDs");
    cl_platform_id *plats = calloc(np, sizeof *plats);
    struct ocl_state *s = calloc(1, sizeof *s);
    if (!plats || !s) {
        free(plats);
        free(s);
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    e = clGetPlatformIDs(np, plats, NULL);
    if (e != CL_SUCCESS) {
        free(plats);
        free(s);
        return ocl_fail(err, e, "clGetPlatformIDs");
    }
    int st = 0;
    for (cl_uint p = 0; p < np && st == 0; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;    /* a platform without usable devices does not hide the others */
        cl_device_id *ids = calloc(nd, sizeof *ids);
        struct ocl_devdesc *grown = realloc(s->dev, ((size_t)s->n + nd) * sizeof *grown);
        if (!ids || !grown) {
            free(ids);
            if (grown)
                s->dev = grown;
            st = awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        s->dev = grown;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL) == CL_SUCCESS)
            for (cl_uint i = 0; i < nd; i++)
                describe(plats[p], ids[i], &s->dev[s->n++]);
        free(ids);
    }
    if (st == 0 && s->n == 0)
        st = awq_err_set(err, AWQ_ERR_NO_DEVICE, "%u OpenCL platform%s found, but no device",
                         (unsigned)np, np == 1 ? "" : "s");
    free(plats);
    if (st < 0) {
        free(s->dev);
        free(s);
        return st;
    }
    *state = s;
    return 0;
}

static void ocl_fini(void *state)
{
    struct ocl_state *s = state;
    if (!s)
        return;
    free(s->dev);
    free(s);
}

static int ocl_device_count(void *state)
{
    return ((const struct ocl_state *)state)->n;
}

static int ocl_device_info(void *state, int index, struct awq_device_info *out)
{
    const struct ocl_state *s = state;
    if (index < 0 || index >= s->n)
        return AWQ_ERR_NO_DEVICE;
    const struct ocl_devdesc *d = &s->dev[index];
    snprintf(out->name, sizeof out->name, "%s", d->name);
    snprintf(out->vendor, sizeof out->vendor, "%s", d->vendor);
    snprintf(out->driver, sizeof out->driver, "%s", d->driver);
    out->type = (d->type & CL_DEVICE_TYPE_GPU) ? AWQ_DEVICE_GPU
              : (d->type & CL_DEVICE_TYPE_CPU) ? AWQ_DEVICE_CPU : AWQ_DEVICE_OTHER;
    out->memory_bytes = d->mem;
    out->fp16 = d->fp16;
    out->compute_units = (int)d->compute_units;
    return 0;
}

static int ocl_preferred_device(void *state)
{
    const struct ocl_state *s = state;
    for (int i = 0; i < s->n; i++)          /* a GPU */
        if (s->dev[i].type & CL_DEVICE_TYPE_GPU)
            return i;
    for (int i = 0; i < s->n; i++)          /* an accelerator before a CPU implementation */
        if (!(s->dev[i].type & CL_DEVICE_TYPE_CPU))
            return i;
    return 0;
}

/* ---- device queues ------------------------------------------------------------------------------------- */

static void ocl_close(void *dev)
{
    struct ocl_dev *d = dev;
    if (!d)
        return;
    if (d->q)
        clFinish(d->q);
    ocl_programs_release(d);
    if (d->dummy)
        clReleaseMemObject(d->dummy);
    if (d->sq_part)
        clReleaseMemObject(d->sq_part);
    if (d->att_part)
        clReleaseMemObject(d->att_part);
    if (d->q)
        clReleaseCommandQueue(d->q);
    if (d->ctx)
        clReleaseContext(d->ctx);
    free(d);
}

/* Options common to every program: the kernel parameters as -D values, correctly rounded fp32
 * division where offered (quantization rounds v / scale exactly as the CPU does), and
 * $AWQ_OPENCL_OPTIONS for experiments (e.g. NVIDIA's -cl-nv-maxrregcount=128). */
static void build_options(struct ocl_dev *d)
{
    const struct ocl_params *p = &d->p;
    const char *extra = getenv("AWQ_OPENCL_OPTIONS");
    snprintf(d->options, sizeof d->options,
             "-cl-std=CL1.2%s -DPN=%d -DKS=%d -DUNR=%d -DXS=%d -DBM=%d -DBN=%d -DTM=%d -DTN=%d "
             "-DGV_TS=%d -DGV_NR=%d -DRED_WG=%d -DST_C=%d -DST_S=%d -DCS_N=%d -DCS_T=%d -DMKS=%d%s%s",
             d->desc.cr_divide ? " -cl-fp32-correctly-rounded-divide-sqrt" : "", p->pack_n,
             p->gemv_ks, p->gemv_unroll, p->gemv_xs, p->bm, p->bn, p->tm, p->tn, p->gv_ts, p->gv_nr,
             p->red_wg, p->st_c, p->st_s, p->cs_n, p->cs_t, p->mma_ks, extra && *extra ? " " : "",
             extra && *extra ? extra : "");
}

static int ocl_open(void *state, int index, const awq_context_options *opt, struct awq_errbuf *err,
                    void **out)
{
    const struct ocl_state *s = state;
    *out = NULL;
    if (index < 0 || index >= s->n)
        return awq_err_set(err, AWQ_ERR_NO_DEVICE, "OpenCL has no device %d", index);
    struct ocl_dev *d = calloc(1, sizeof *d);
    if (!d)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    d->desc = s->dev[index];
    d->err = err;
    if (opt) {
        d->log = opt->log;
        d->log_level = opt->log_level;
        d->log_user = opt->user;
    }
    char why[256];
    if (ocl_params_choose(&d->desc, &d->p, why, sizeof why) < 0) {
        free(d);
        return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "%s", why);
    }
    build_options(d);
    ocl_cache_dir(d->cache_dir, sizeof d->cache_dir);
    d->acc_size = d->desc.fp64 ? sizeof(cl_double) : sizeof(cl_float);

    cl_int e;
    int st = 0;
    cl_context_properties props[] = { CL_CONTEXT_PLATFORM, (cl_context_properties)d->desc.platform, 0 };
    d->ctx = clCreateContext(props, 1, &d->desc.id, NULL, NULL, &e);
    if (!d->ctx) {
        st = ocl_fail(err, e, "clCreateContext");
        goto fail;
    }
    d->q = clCreateCommandQueue(d->ctx, d->desc.id, 0, &e);
    if (!d->q) {
        st = ocl_fail(err, e, "clCreateCommandQueue");
        goto fail;
    }
    d->dummy = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, 64, NULL, &e);
    if (!d->dummy) {
        st = ocl_fail(err, e, "clCreateBuffer");
        goto fail;
    }
    d->sq_part = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, OCL_SQ_PARTS * d->acc_size, NULL, &e);
    if (!d->sq_part) {
        st = ocl_fail(err, e, "clCreateBuffer");
        goto fail;
    }
    ocl_log(d, AWQ_LOG_DEBUG, "device '%s' (%s, driver %s): parameter row '%s', cache %s",
            d->desc.name, d->desc.platform_name, d->desc.driver, d->p.row,
            d->cache_dir[0] ? d->cache_dir : "disabled");
    st = ocl_programs_init(d);
    if (st == 0)
        st = ocl_mma_init(d);
    if (st < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    ocl_close(d);
    return st;
}

static int ocl_synchronize(void *dev)
{
    struct ocl_dev *d = dev;
    cl_int e = clFinish(d->q);
    return e == CL_SUCCESS ? 0 : ocl_fail(d->err, e, "clFinish");
}

/* ---- buffers ------------------------------------------------------------------------------------------ */

static int ocl_buf_alloc(void *dev, size_t bytes, void **buf)
{
    struct ocl_dev *d = dev;
    if (bytes > d->desc.max_alloc)
        return awq_err_set(d->err, AWQ_ERR_DEVICE_MEMORY,
                           "OpenCL device '%s' cannot allocate a buffer of %zu bytes: its maximum "
                           "allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE) is %llu bytes", d->desc.name,
                           bytes, (unsigned long long)d->desc.max_alloc);
    cl_int e;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (!m) {
        char what[96];
        snprintf(what, sizeof what, "clCreateBuffer of %zu bytes", bytes);
        return ocl_fail(d->err, e, what);
    }
    *buf = m;
    return 0;
}

static void ocl_buf_free(void *dev, void *buf)
{
    if (buf)
        clReleaseMemObject((cl_mem)buf);
}

static int ocl_buf_write(void *dev, void *buf, size_t off, const void *src, size_t n)
{
    struct ocl_dev *d = dev;
    cl_int e = clEnqueueWriteBuffer(d->q, (cl_mem)buf, CL_TRUE, off, n, src, 0, NULL, NULL);
    return e == CL_SUCCESS ? 0 : ocl_fail(d->err, e, "clEnqueueWriteBuffer");
}

static int ocl_buf_read(void *dev, void *buf, size_t off, void *dst, size_t n)
{
    struct ocl_dev *d = dev;
    cl_int e = clEnqueueReadBuffer(d->q, (cl_mem)buf, CL_TRUE, off, n, dst, 0, NULL, NULL);
    return e == CL_SUCCESS ? 0 : ocl_fail(d->err, e, "clEnqueueReadBuffer");
}

static int ocl_buf_copy(void *dev, void *src, size_t src_off, void *dst, size_t dst_off, size_t n)
{
    struct ocl_dev *d = dev;
    cl_int e;
    if (src == dst && src_off < dst_off + n && dst_off < src_off + n) {
        if (src_off == dst_off)
            return 0;
        /* OpenCL refuses overlapping copies (CL_MEM_COPY_OVERLAP): go through a temporary. */
        cl_mem tmp = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, n, NULL, &e);
        if (!tmp)
            return ocl_fail(d->err, e, "clCreateBuffer (temporary for an overlapping copy)");
        e = clEnqueueCopyBuffer(d->q, (cl_mem)src, tmp, src_off, 0, n, 0, NULL, NULL);
        if (e == CL_SUCCESS)
            e = clEnqueueCopyBuffer(d->q, tmp, (cl_mem)dst, 0, dst_off, n, 0, NULL, NULL);
        clReleaseMemObject(tmp);     /* the runtime keeps it alive until the copies are done */
        return e == CL_SUCCESS ? 0 : ocl_fail(d->err, e, "clEnqueueCopyBuffer");
    }
    e = clEnqueueCopyBuffer(d->q, (cl_mem)src, (cl_mem)dst, src_off, dst_off, n, 0, NULL, NULL);
    return e == CL_SUCCESS ? 0 : ocl_fail(d->err, e, "clEnqueueCopyBuffer");
}

static int ocl_buf_zero(void *dev, void *buf, size_t off, size_t n)
{
    struct ocl_dev *d = dev;
    static const cl_uchar zeros[4] = { 0, 0, 0, 0 };
    /* the pattern size must divide offset and size; wider patterns fill faster */
    size_t ps = (off % 4 == 0 && n % 4 == 0) ? 4 : (off % 2 == 0 && n % 2 == 0) ? 2 : 1;
    cl_int e = clEnqueueFillBuffer(d->q, (cl_mem)buf, zeros, ps, off, n, 0, NULL, NULL);
    return e == CL_SUCCESS ? 0 : ocl_fail(d->err, e, "clEnqueueFillBuffer");
}

/* ---- launch helpers ----------------------------------------------------------------------------------- */

int ocl_launch(struct ocl_dev *d, cl_kernel k, const char *name, cl_uint dims, const size_t *gws,
               const size_t *lws, const struct ocl_arg *args, size_t n_args)
{
    for (size_t i = 0; i < n_args; i++) {
        cl_int e = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (e != CL_SUCCESS) {
            char what[128];
            snprintf(what, sizeof what, "clSetKernelArg(%s, %zu)", name, i);
            return ocl_fail(d->err, e, what);
        }
    }
    cl_int e = clEnqueueNDRangeKernel(d->q, k, dims, NULL, gws, lws, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "enqueueing kernel %s", name);
        return ocl_fail(d->err, e, what);
    }
    return 0;
}

int ocl_ref(struct ocl_dev *d, struct awq_tref r, size_t elem, const char *what, cl_mem *mem,
            cl_ulong *off)
{
    if (!r.buf) {
        *mem = d->dummy;
        *off = 0;
        return 0;
    }
    if (r.off % elem)
        return awq_err_set(d->err, AWQ_ERR_INVALID_ARGUMENT,
                           "OpenCL: tensor %s at byte offset %zu is not aligned to its %zu-byte "
                           "elements", what, r.off, elem);
    *mem = (cl_mem)r.buf->impl;
    *off = r.off / elem;
    return 0;
}

const struct awq_backend_ops awq_backend_opencl = {
    .name = "opencl",
    .init = ocl_init,
    .fini = ocl_fini,
    .device_count = ocl_device_count,
    .device_info = ocl_device_info,
    .preferred_device = ocl_preferred_device,
    .open = ocl_open,
    .close = ocl_close,
    .synchronize = ocl_synchronize,
    .buf_alloc = ocl_buf_alloc,
    .buf_free = ocl_buf_free,
    .buf_write = ocl_buf_write,
    .buf_read = ocl_buf_read,
    .buf_copy = ocl_buf_copy,
    .buf_zero = ocl_buf_zero,
    .w4_create = ocl_w4_create,
    .w4_free = ocl_w4_free,
    .gemm_w4 = ocl_gemm_w4,
    .gemm = ocl_gemm,
    .act_stats = ocl_act_stats,
    .rmsnorm = ocl_rmsnorm,
    .rope = ocl_rope,
    .attention = ocl_attention,
    .silu_mul = ocl_silu_mul,
    .add = ocl_add,
    .embed = ocl_embed,
    .pseudo_quant = ocl_pseudo_quant,
    .clip_search = ocl_clip_search,
    .sq_err = ocl_sq_err,
    .scale_cols = ocl_scale_cols,
    .cross_entropy = ocl_cross_entropy,
};
