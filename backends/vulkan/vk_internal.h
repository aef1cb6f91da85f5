/* Shared by the Vulkan backend's files: loader entry points, the per-context state (instance and
 * physical devices), the per-device state (queue, frames, pipelines, buffers) and the helpers the
 * op files use to bind tensor windows and record dispatches.
 *
 * The loader (libvulkan.so.1) is opened at run time, so a machine without Vulkan still runs the
 * rest of libawq and sees a clear "Vulkan loader not found" from this backend's init().
 *
 * Environment knobs (read at init/open; all optional):
 *   AWQ_VK_VALIDATION=1      enable VK_LAYER_KHRONOS_validation when installed; its error messages
 *                            become errors of the next call on the device
 *   AWQ_VK_DISABLE=a,b       force fallbacks: "fast" (16-bit storage/fp16/subgroup SPIR-V variant),
 *                            "uma" (direct host mapping of device buffers), "coopmat" (tensor cores)
 *   AWQ_VK_MAX_RANGE=bytes   pretend maxStorageBufferRange is smaller (exercises chunked dispatch)
 *   AWQ_VK_STAGING=bytes     staging buffer size (default 64 MiB)
 *   AWQ_VK_REUSE=0           record every dispatch into the frame (no cache of recorded dispatches)
 *   AWQ_VK_COPY=shader|transfer  how buf_copy moves device data (default: a compute shader on
 *                            discrete GPUs, whose copy engines are slower than the SMs; vkCmdCopyBuffer
 *                            elsewhere)
 *   AWQ_VK_SUBMIT=k=v,...    submission policy (vk_queue.c): fd (dispatches per frame), fb (bytes per
 *                            frame), ib (bytes before an idle GPU gets the frame), idle (0: never
 *                            submit early, 1: whenever the GPU is idle, 2: when idle and the frame
 *                            has been open longer than a submission takes), spin (microseconds
 *                            to poll a fence before blocking)
 *   AWQ_VK_TUNE=k=v,...      override the vendor table (vk_pipeline.c) for tuning runs: wg, gemv_wg,
 *                            gemv_kt, gemv_threads, bm, bn, bk, tm, tn, attn_bq, attn_bkv, attn_dc,
 *                            attn_dv, attn_target_wgs, cm_bm, cm_bn, cm_wm, cm_wn, cm_sbn, cm_swn,
 *                            cm_min_m (powers of two)
 */
#ifndef AWQ_VK_INTERNAL_H
#define AWQ_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* ---- loader entry points ------------------------------------------------------------------- */

#define VK_INSTANCE_FUNCS(X)                                                                       \
    X(vkDestroyInstance)                                                                           \
    X(vkEnumeratePhysicalDevices)                                                                  \
    X(vkGetPhysicalDeviceProperties)                                                               \
    X(vkGetPhysicalDeviceProperties2)                                                              \
    X(vkGetPhysicalDeviceFeatures2)                                                                \
    X(vkGetPhysicalDeviceMemoryProperties)                                                         \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                    \
    X(vkEnumerateDeviceExtensionProperties)                                                        \
    X(vkCreateDevice)                                                                              \
    X(vkGetDeviceProcAddr)

#define VK_DEVICE_FUNCS(X)                                                                         \
    X(vkDestroyDevice)                                                                             \
    X(vkGetDeviceQueue)                                                                            \
    X(vkCreateBuffer)                                                                              \
    X(vkDestroyBuffer)                                                                             \
    X(vkGetBufferMemoryRequirements)                                                               \
    X(vkAllocateMemory)                                                                            \
    X(vkFreeMemory)                                                                                \
    X(vkBindBufferMemory)                                                                          \
    X(vkMapMemory)                                                                                 \
    X(vkUnmapMemory)                                                                               \
    X(vkCreateCommandPool)                                                                         \
    X(vkDestroyCommandPool)                                                                        \
    X(vkAllocateCommandBuffers)                                                                    \
    X(vkBeginCommandBuffer)                                                                        \
    X(vkEndCommandBuffer)                                                                          \
    X(vkResetCommandBuffer)                                                                        \
    X(vkCreateFence)                                                                               \
    X(vkDestroyFence)                                                                              \
    X(vkResetFences)                                                                               \
    X(vkWaitForFences)                                                                             \
    X(vkGetFenceStatus)                                                                            \
    X(vkQueueSubmit)                                                                               \
    X(vkDeviceWaitIdle)                                                                            \
    X(vkCreateDescriptorSetLayout)                                                                 \
    X(vkDestroyDescriptorSetLayout)                                                                \
    X(vkCreatePipelineLayout)                                                                      \
    X(vkDestroyPipelineLayout)                                                                     \
    X(vkCreateDescriptorPool)                                                                      \
    X(vkDestroyDescriptorPool)                                                                     \
    X(vkResetDescriptorPool)                                                                       \
    X(vkAllocateDescriptorSets)                                                                    \
    X(vkUpdateDescriptorSets)                                                                      \
    X(vkCreateShaderModule)                                                                        \
    X(vkDestroyShaderModule)                                                                       \
    X(vkCreateComputePipelines)                                                                    \
    X(vkDestroyPipeline)                                                                           \
    X(vkCreatePipelineCache)                                                                       \
    X(vkDestroyPipelineCache)                                                                      \
    X(vkGetPipelineCacheData)                                                                      \
    X(vkCmdBindPipeline)                                                                           \
    X(vkCmdBindDescriptorSets)                                                                     \
    X(vkCmdPushConstants)                                                                          \
    X(vkCmdDispatch)                                                                               \
    X(vkCmdPipelineBarrier)                                                                        \
    X(vkCmdCopyBuffer)                                                                             \
    X(vkCmdFillBuffer)                                                                             \
    X(vkFreeDescriptorSets)                                                                        \
    X(vkCmdExecuteCommands)

#define VK_DECLARE_PFN(name) PFN_##name name;
struct vk_ifn {
    VK_INSTANCE_FUNCS(VK_DECLARE_PFN)
    PFN_vkCreateDebugUtilsMessengerEXT vkCreateDebugUtilsMessengerEXT;    /* validation only */
    PFN_vkDestroyDebugUtilsMessengerEXT vkDestroyDebugUtilsMessengerEXT;
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV vkGetPhysicalDeviceCooperativeMatrixPropertiesNV;
};
struct vk_dfn {
    VK_DEVICE_FUNCS(VK_DECLARE_PFN)
};
#undef VK_DECLARE_PFN

/* ---- per-context state --------------------------------------------------------------------- */

#define VK_MAX_PHYS 16

/* What a physical device offers that the backend cares about. */
struct vk_phys {
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t api;                  /* min(device, instance) API version */
    uint32_t queue_family;         /* a family with compute (and transfer, implied) */
    int storage16, float16;        /* storageBuffer16BitAccess, shaderFloat16 */
    int subgroup_ok;               /* basic + arithmetic subgroup ops in compute shaders */
    uint32_t subgroup_size, subgroup_max;
    int coopmat_nv;                /* VK_NV_cooperative_matrix with fp16 x fp16 -> fp32 16x16x16 */
    VkDeviceSize max_alloc;        /* maxMemoryAllocationSize */
    int rank;                      /* preference: lower is better (discrete GPU first) */
    struct awq_device_info info;
};

/* Validation-layer messages land here (the messenger callback has no other place to put them);
 * each device reports the ones it has not seen yet as an error of its next call. */
struct vk_msgsink {
    unsigned long count;
    char last[1024];
};

struct vk_state {
    void *lib;                     /* dlopen handle of the loader */
    PFN_vkGetInstanceProcAddr gipa;
    VkInstance inst;
    struct vk_ifn fn;
    VkDebugUtilsMessengerEXT messenger;
    struct vk_msgsink sink;
    int validation;
    uint32_t inst_api;
    int n;
    struct vk_phys phys[VK_MAX_PHYS];
};

/* ---- per-device state ---------------------------------------------------------------------- */

/* A device buffer. `map` is set when the memory is host-visible and mapped for direct access
 * (UMA devices, staging). `last_use` is the serial of the last frame that referenced it. */
struct vk_buf {
    uint64_t id;                   /* unique per device and lifetime (handles get reused) */
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;
    size_t size;                   /* bytes requested */
    size_t alloc;                  /* bytes of the VkBuffer (size rounded up) */
    uint64_t last_use;
};

/* A repacked 4-bit weight: one buffer holding the regions below (offsets 256-byte aligned).
 *   q: [N/8][K] words, word (j, k) holds columns 8j..8j+7 of input channel k, nibble c = column 8j+c
 *   s: [N/8][K/G][8] fp16 scales
 *   z: [N/8][K/G] words, nibble c = zero point of column 8j+c */
struct vk_w4 {
    struct vk_buf *buf;
    int K, N, G;
    size_t q_off, s_off, z_off;
};

/* Workgroup and tile sizes for one vendor (specialization constants). */
struct vk_tune {
    uint32_t vendor;               /* PCI vendor id; 0 = default */
    const char *name;
    uint32_t wg;                   /* 1-D kernels: elementwise, row reductions */
    uint32_t gemv_wg, gemv_kt;     /* GEMV: workgroup, threads per column block */
    uint32_t bm, bn, bk, tm, tn;   /* tiled GEMM: block, k step, per-thread register tile */
    uint32_t attn_bq, attn_bkv, attn_dc, attn_dv;  /* attention tiles */
    uint32_t attn_target_wgs;      /* split keys when fewer workgroups than this would run */
    uint32_t gemv_threads;         /* GEMV: grow teams until about this many threads run */
    /* tensor-core GEMM (gemm_cm.glsl): large-M block (rows, columns, subgroups along M and N),
     * small-M block (16..64 rows; columns, subgroups along N), smallest M it runs (the GEMV
     * runs M below min(cm_min_m, 9)) */
    uint32_t cm_bm, cm_bn, cm_wm, cm_wn, cm_sbn, cm_swn, cm_min_m;
};

enum vk_shader {
    VKS_GEMV_W4, VKS_GEMM_W4, VKS_GEMV_F, VKS_GEMM_F, VKS_ACT_STATS, VKS_RMSNORM, VKS_ROPE,
    VKS_ATTENTION, VKS_ATTN_COMBINE, VKS_ELTWISE, VKS_EMBED, VKS_CROSS_ENTROPY, VKS_PSEUDO_QUANT,
    VKS_CLIP_SEARCH, VKS_SQ_ERR, VKS_GEMM_W4_CM, VKS_GEMM_F_CM, VKS_COPY,
    VKS_COUNT
};

/* The embedded SPIR-V (vk_spirv.c): variant 0 = base (Vulkan 1.1 core only), 1 = fast
 * (16-bit storage, fp16 arithmetic, subgroup arithmetic). NULL code = variant not built. */
struct vk_spirv {
    const char *name;
    const uint32_t *code[2];
    size_t size[2];
    int bindings;                  /* storage buffers the shader declares (0..n-1) */
    uint32_t writes;               /* bit i: binding i is declared writable */
};
extern const struct vk_spirv awq_vk_spirv[VKS_COUNT];

#define VK_MAX_SPEC 16
#define VK_MAX_BINDINGS 8
#define VK_PUSH_BYTES 128
#define VK_FRAMES 8
#define VK_SETS_PER_FRAME 256

struct vk_pipe {
    int shader;
    uint32_t spec[VK_MAX_SPEC];
    VkPipeline pipe;
};

/* A byte range of a buffer written since the last barrier (hazard tracking within a frame). */
struct vk_span {
    VkBuffer buf;
    size_t lo, hi;
};
#define VK_MAX_SPANS 32

/* A dispatch recorded once into a secondary command buffer (pipeline, persistent descriptor set,
 * push constants, group counts) and replayed with vkCmdExecuteCommands while its key recurs.
 * Buffers are keyed by id, so a freed-and-reallocated handle never matches an old recording. */
struct vk_rec_key {
    VkPipeline pipe;
    uint32_t n_args, push_size;
    uint32_t groups[3];
    uint32_t pad;
    uint64_t id[VK_MAX_BINDINGS];
    uint64_t off[VK_MAX_BINDINGS], range[VK_MAX_BINDINGS];
    uint32_t push[VK_PUSH_BYTES / 4];
};
struct vk_rec {
    struct vk_rec_key key;
    uint32_t hash;
    int next;                      /* hash chain; -1 ends it */
    int live;                      /* in the table (key valid) */
    VkCommandBuffer cmd;           /* secondary; VK_NULL_HANDLE until first used */
    VkDescriptorSet set;
    uint32_t set_n;                /* bindings of set's layout */
    uint64_t serial;               /* last frame that executes it */
    int ref;                       /* replayed since the clock hand last passed */
};
#define VK_REC_SLOTS 512
#define VK_REC_BUCKETS 1024
#define VK_REC_SEEN 4096

/* Counters for tests and tuning (never printed by the library). */
struct vk_stats {
    uint64_t records;              /* dispatches recorded into a cached secondary */
    uint64_t replays;              /* dispatches that reused a cached secondary */
    uint64_t direct;               /* dispatches recorded straight into the frame */
    uint64_t evictions;            /* cached recordings dropped (LRU or a freed buffer) */
    uint64_t submits;
};

struct vk_frame {
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool pool;
    uint64_t serial;
    uint32_t sets;                 /* descriptor sets allocated from pool */
    uint32_t dispatches;
    uint64_t work;                 /* bytes of tensors bound so far (a proxy for GPU time) */
    int submitted;                 /* fence pending */
    VkPipeline bound;              /* last pipeline bound while recording */
    struct vk_span written[VK_MAX_SPANS];
    int n_written;                 /* -1: too many to track (the next dispatch gets a barrier) */
};

/* A buffer freed while the GPU may still use it: released once `serial` completes. */
struct vk_garbage {
    uint64_t serial;
    VkBuffer buf;
    VkDeviceMemory mem;
};

struct vk_dev {
    struct vk_state *st;
    const struct vk_phys *ph;
    struct awq_errbuf *err;
    VkDevice dev;
    struct vk_dfn fn;
    VkQueue queue;
    int lost;                      /* VK_ERROR_DEVICE_LOST seen: every later call fails */
    unsigned long msgs_seen;

    /* limits and choices */
    size_t max_range;              /* usable bytes of one storage-buffer binding */
    size_t align;                  /* minStorageBufferOffsetAlignment (power of two) */
    uint32_t max_groups[3];
    uint32_t shared_max;
    int fast, uma, coopmat;
    int copy_shader;               /* buf_copy through the copy shader (else vkCmdCopyBuffer) */
    uint32_t loop_cap;             /* total loop iterations one invocation may run (0: no limit) */
    uint32_t max_wg;               /* largest 1-D workgroup (power of two) */
    uint32_t subgroup;             /* subgroup size the fast variants assume as team granule */
    uint32_t mem_type_dev, mem_type_host;
    size_t max_alloc;
    struct vk_tune tune;

    /* pipelines */
    VkPipelineCache pcache;
    char cache_path[1024];
    int cache_dirty;
    VkDescriptorSetLayout dsl[VK_MAX_BINDINGS + 1];
    VkPipelineLayout layout[VK_MAX_BINDINGS + 1];
    VkShaderModule module[VKS_COUNT];
    struct vk_pipe *pipes;
    int n_pipes, cap_pipes;

    /* submission */
    VkCommandPool cmd_pool;
    struct vk_frame frames[VK_FRAMES];
    int cur;                       /* frame being recorded, -1 when none */
    int next;                      /* ring position of the next frame */
    uint64_t serial_next, serial_done;
    uint32_t flush_dispatches;     /* submission policy (see vk_queue.c) */
    uint64_t flush_bytes, idle_bytes;
    int idle_mode;
    double spin_s;                 /* seconds to poll a fence before blocking */
    double frame_t0;               /* host time (s) the open frame began */
    double submit_cost;            /* running estimate of one vkQueueSubmit on the host (s) */

    /* recorded dispatches, replayed while their key recurs */
    int reuse;
    struct vk_rec *recs;           /* VK_REC_SLOTS */
    int n_recs;                    /* slots handed out so far */
    int buckets[VK_REC_BUCKETS];
    int rec_hand;                  /* clock hand of the eviction sweep */
    uint32_t rec_seen[VK_REC_SEEN]; /* hashes of keys seen once (admission on the second) */
    VkDescriptorPool rec_pool;
    uint64_t buf_ids;
    struct vk_stats stats;

    /* memory helpers */
    struct vk_buf *staging;        /* host-visible, for the non-UMA path */
    size_t staging_head;
    struct vk_buf *dummy;          /* bound for absent optional tensors; also zeros for buf_zero */
    struct vk_buf *scratch;        /* partial results of multi-pass ops */
    struct vk_garbage *garbage;
    int n_garbage, cap_garbage;
};

/* A binding: a window [off, off + range) of a buffer. */
struct vk_arg {
    struct vk_buf *b;
    size_t off, range;
};

/* ---- vk_error.c -------------------------------------------------------------------------------- */
const char *awq_vk_result_name(VkResult r);
/* Turns a failed VkResult into a libawq error on `err` ("vkQueueSubmit: VK_ERROR_DEVICE_LOST"). */
int awq_vk_fail(struct awq_errbuf *err, VkResult r, const char *what);
/* The same for a device: marks it lost on VK_ERROR_DEVICE_LOST. */
int awq_vk_dev_fail(struct vk_dev *d, VkResult r, const char *what);
/* Reports new validation messages (if any) as an error; 0 when none. */
int awq_vk_check_messages(struct vk_dev *d);

/* ---- vk_pipeline.c ------------------------------------------------------------------------------ */
const struct vk_tune *awq_vk_tune_for(uint32_t vendor);
int awq_vk_pipelines_init(struct vk_dev *d);
void awq_vk_pipelines_fini(struct vk_dev *d);
/* The pipeline of a shader with these specialization constants (created once, then reused). */
int awq_vk_pipeline(struct vk_dev *d, int shader, const uint32_t *spec, int n_spec, VkPipeline *out);

/* ---- vk_queue.c ---------------------------------------------------------------------------------- */
int awq_vk_queue_init(struct vk_dev *d);
void awq_vk_queue_fini(struct vk_dev *d);
/* Starts an op: fails on a lost device or pending validation errors, opens a frame and records a
 * barrier after everything recorded before. */
int awq_vk_op_begin(struct vk_dev *d);
/* Ends an op: submits the frame once it holds enough work. */
int awq_vk_op_end(struct vk_dev *d);
/* Records a global memory barrier (compute/transfer writes before compute/transfer access). */
int awq_vk_barrier(struct vk_dev *d);
/* Binds `args` and records one dispatch of `shader` with push constants. */
int awq_vk_dispatch(struct vk_dev *d, int shader, const uint32_t *spec, int n_spec,
                    const struct vk_arg *args, int n_args, const void *push, size_t push_size,
                    uint32_t gx, uint32_t gy, uint32_t gz);
/* The command buffer of the open frame (opening one when needed). */
int awq_vk_cmd(struct vk_dev *d, VkCommandBuffer *cmd);
void awq_vk_touch(struct vk_dev *d, struct vk_buf *b);
/* Counts bytes moved by a transfer command towards the frame's submission threshold. */
void awq_vk_work(struct vk_dev *d, size_t bytes);
/* Submits the open frame, if any. */
int awq_vk_flush(struct vk_dev *d);
/* Waits until the frame with `serial` has completed (submitting it first if still open). */
int awq_vk_wait_serial(struct vk_dev *d, uint64_t serial);
/* Submits and waits for everything. */
int awq_vk_finish(struct vk_dev *d);
/* Releases garbage whose frames have completed. */
void awq_vk_collect(struct vk_dev *d);
/* Drops the recorded dispatches that bind buffer `id` (it is being freed). */
void awq_vk_rec_forget(struct vk_dev *d, uint64_t id);

/* ---- vk_memory.c ---------------------------------------------------------------------------------- */
int awq_vk_memory_init(struct vk_dev *d);
void awq_vk_memory_fini(struct vk_dev *d);
int awq_vk_buf_create(struct vk_dev *d, size_t bytes, int host, struct vk_buf **out);
/* Frees now, or once the frames that use it have completed. */
void awq_vk_buf_release(struct vk_dev *d, struct vk_buf *b);
void awq_vk_buf_destroy_now(struct vk_dev *d, struct vk_buf *b);
/* The scratch buffer, grown to at least `bytes`. */
int awq_vk_scratch(struct vk_dev *d, size_t bytes, struct vk_buf **out);
/* A window covering bytes [lo, hi) of b (offset aligned down; `eoff` = elements of size `elem`
 * between the window start and lo). The range must fit d->max_range (callers plan for it). */
int awq_vk_window(struct vk_dev *d, struct vk_buf *b, size_t lo, size_t hi, size_t elem,
                  struct vk_arg *out, uint32_t *eoff);
/* Window of an optional tensor; the dummy buffer when absent. */
int awq_vk_window_opt(struct vk_dev *d, struct awq_tref r, size_t bytes, size_t elem,
                      struct vk_arg *out, uint32_t *eoff);
/* Largest number of rows of `row_bytes` whose window fits one binding (0 if not even one). */
size_t awq_vk_rows_fit(const struct vk_dev *d, size_t row_bytes);
int awq_vk_write(struct vk_dev *d, struct vk_buf *b, size_t off, const void *src, size_t n);
int awq_vk_read(struct vk_dev *d, struct vk_buf *b, size_t off, void *dst, size_t n);

int awq_vk_buf_alloc(void *dev, size_t bytes, void **buf);
void awq_vk_buf_free(void *dev, void *buf);
int awq_vk_buf_write(void *dev, void *buf, size_t off, const void *src, size_t n);
int awq_vk_buf_read(void *dev, void *buf, size_t off, void *dst, size_t n);
int awq_vk_buf_copy(void *dev, void *src, size_t src_off, void *dst, size_t dst_off, size_t n);
int awq_vk_buf_zero(void *dev, void *buf, size_t off, size_t n);

/* ---- vk_cache.c ---------------------------------------------------------------------------------- */
/* Loads the on-disk pipeline cache of this device (a missing or corrupt file gives an empty one). */
int awq_vk_cache_open(struct vk_dev *d);
/* Writes it back when pipelines were created (temp file + rename); failures are ignored. */
void awq_vk_cache_close(struct vk_dev *d);

/* ---- ops ---------------------------------------------------------------------------------------- */
int awq_vk_w4_create(void *dev, const struct awq_w4_host *src, void **w);
void awq_vk_w4_free(void *dev, void *w);
int awq_vk_gemm_w4(void *dev, const struct awq_gemm_w4_args *a);
int awq_vk_gemm(void *dev, const struct awq_gemm_args *a);
int awq_vk_act_stats(void *dev, const struct awq_act_stats_args *a);
int awq_vk_rmsnorm(void *dev, const struct awq_rmsnorm_args *a);
int awq_vk_rope(void *dev, const struct awq_rope_args *a);
int awq_vk_attention(void *dev, const struct awq_attention_args *a);
int awq_vk_silu_mul(void *dev, const struct awq_silu_mul_args *a);
int awq_vk_add(void *dev, const struct awq_add_args *a);
int awq_vk_embed(void *dev, const struct awq_embed_args *a);
int awq_vk_pseudo_quant(void *dev, const struct awq_pseudo_quant_args *a);
int awq_vk_clip_search(void *dev, const struct awq_clip_search_args *a);
int awq_vk_sq_err(void *dev, const struct awq_sq_err_args *a);
int awq_vk_scale_cols(void *dev, const struct awq_scale_cols_args *a);
int awq_vk_cross_entropy(void *dev, const struct awq_cross_entropy_args *a);

/* Buffer of a tensor reference. */
static inline struct vk_buf *vk_tbuf(struct awq_tref r)
{
    return r.buf ? (struct vk_buf *)r.buf->impl : NULL;
}

static inline size_t vk_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

static inline size_t vk_div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

#define VK_TRY(x)              \
    do {                       \
        int st_ = (x);         \
        if (st_ < 0)           \
            return st_;        \
    } while (0)

#endif /* AWQ_VK_INTERNAL_H */
