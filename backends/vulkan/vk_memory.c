/* Device memory: buffers, the staging path for uploads and downloads, copies and fills, and the
 * windows through which ops bind tensors.
 *
 * Discrete GPUs get device-local buffers; data moves through a host-visible staging buffer with
 * copy commands recorded into the op stream (so a write lands in order with the ops around it).
 * On UMA and CPU devices (integrated GPUs, lavapipe) device-local memory is host-visible: buffers
 * stay mapped, and the host copies directly after waiting for the work that uses the buffer.
 *
 * One binding can see at most maxStorageBufferRange bytes (128 MiB on lavapipe), so ops bind
 * windows: the range an op chunk touches, its start aligned down to minStorageBufferOffsetAlignment,
 * and the remainder passed to the shader as an element offset. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define DEFAULT_STAGING (64u << 20)

static int env_has(const char *name, const char *word)
{
    const char *v = getenv(name);
    size_t n = strlen(word);
    while (v && *v) {
        const char *end = strchr(v, ',');
        size_t len = end ? (size_t)(end - v) : strlen(v);
        if (len == n && strncmp(v, word, n) == 0)
            return 1;
        v = end ? end + 1 : NULL;
    }
    return 0;
}

/* A memory type allowed by `bits` with all `need` flags, preferring one with `want` too. */
static int find_type(const struct vk_dev *d, uint32_t bits, VkMemoryPropertyFlags need,
                     VkMemoryPropertyFlags want)
{
    const VkPhysicalDeviceMemoryProperties *m = &d->ph->mem;
    int fallback = -1;
    for (uint32_t i = 0; i < m->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = m->memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & need) != need)
            continue;
        if ((f & want) == want)
            return (int)i;
        if (fallback < 0)
            fallback = (int)i;
    }
    return fallback;
}

int awq_vk_memory_init(struct vk_dev *d)
{
    const VkPhysicalDeviceMemoryProperties *m = &d->ph->mem;
    VkMemoryPropertyFlags uma = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int shared_mem = d->ph->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ||
                     d->ph->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
    d->uma = 0;
    if (shared_mem && !env_has("AWQ_VK_DISABLE", "uma"))
        for (uint32_t i = 0; i < m->memoryTypeCount; i++)
            if ((m->memoryTypes[i].propertyFlags & uma) == uma)
                d->uma = 1;
    d->max_alloc = d->ph->max_alloc;
    /* Discrete GPUs copy faster through their SMs than through the copy engine vkCmdCopyBuffer
     * may use (NVIDIA: about a third of the bandwidth). */
    const char *cm = getenv("AWQ_VK_COPY");
    if (cm && !strcmp(cm, "shader"))
        d->copy_shader = 1;
    else if (cm && !strcmp(cm, "transfer"))
        d->copy_shader = 0;
    else
        d->copy_shader = d->ph->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    VK_TRY(awq_vk_buf_create(d, 256, 0, &d->dummy));
    if (d->dummy->map) {
        memset(d->dummy->map, 0, 256);
    } else {
        VkCommandBuffer cmd;
        VK_TRY(awq_vk_cmd(d, &cmd));
        d->fn.vkCmdFillBuffer(cmd, d->dummy->buf, 0, VK_WHOLE_SIZE, 0);
        awq_vk_touch(d, d->dummy);
        VK_TRY(awq_vk_flush(d));
    }
    return 0;
}

void awq_vk_memory_fini(struct vk_dev *d)
{
    awq_vk_buf_destroy_now(d, d->dummy);
    awq_vk_buf_destroy_now(d, d->staging);
    awq_vk_buf_destroy_now(d, d->scratch);
    d->dummy = d->staging = d->scratch = NULL;
}

int awq_vk_buf_create(struct vk_dev *d, size_t bytes, int host, struct vk_buf **out)
{
    *out = NULL;
    size_t alloc = (bytes + 255) & ~(size_t)255;
    if (alloc < bytes || alloc > d->max_alloc)
        return awq_err_set(d->err, AWQ_ERR_DEVICE_MEMORY,
                           "Vulkan: a %zu-byte buffer exceeds the device's largest allocation "
                           "(maxMemoryAllocationSize %zu)", bytes, d->max_alloc);
    struct vk_buf *b = calloc(1, sizeof *b);
    if (!b)
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    b->id = ++d->buf_ids;
    b->size = bytes;
    b->alloc = alloc;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = alloc,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = d->fn.vkCreateBuffer(d->dev, &bci, NULL, &b->buf);
    if (r != VK_SUCCESS) {
        free(b);
        return awq_vk_dev_fail(d, r, "vkCreateBuffer");
    }
    VkMemoryRequirements req;
    d->fn.vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type = -1;
    if (host)
        type = find_type(d, req.memoryTypeBits, hv, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    else if (d->uma)
        type = find_type(d, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                         VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    else {
        /* plain video memory first: a host-visible device-local type (the PCIe BAR) may come first
         * in the list and be slower for the GPU */
        const VkPhysicalDeviceMemoryProperties *m = &d->ph->mem;
        for (uint32_t i = 0; i < m->memoryTypeCount && type < 0; i++)
            if ((req.memoryTypeBits & (1u << i)) &&
                (m->memoryTypes[i].propertyFlags & (VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) ==
                    VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)
                type = (int)i;
        if (type < 0)
            type = find_type(d, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        if (type < 0)
            type = find_type(d, req.memoryTypeBits, 0, 0);
    }
    if (type < 0) {
        d->fn.vkDestroyBuffer(d->dev, b->buf, NULL);
        free(b);
        return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan: no suitable memory type for a %s buffer",
                           host ? "staging" : "device");
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    r = d->fn.vkAllocateMemory(d->dev, &mai, NULL, &b->mem);
    if (r == VK_SUCCESS)
        r = d->fn.vkBindBufferMemory(d->dev, b->buf, b->mem, 0);
    if (r == VK_SUCCESS && (d->ph->mem.memoryTypes[type].propertyFlags & hv) == hv && (host || d->uma))
        r = d->fn.vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
    if (r != VK_SUCCESS) {
        if (b->mem)
            d->fn.vkFreeMemory(d->dev, b->mem, NULL);
        d->fn.vkDestroyBuffer(d->dev, b->buf, NULL);
        free(b);
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
            return awq_err_set(d->err, AWQ_ERR_DEVICE_MEMORY,
                               "Vulkan: cannot allocate %zu bytes of %s memory (%s)", bytes,
                               host ? "staging" : "device", awq_vk_result_name(r));
        return awq_vk_dev_fail(d, r, "vkAllocateMemory");
    }
    *out = b;
    return 0;
}

void awq_vk_buf_destroy_now(struct vk_dev *d, struct vk_buf *b)
{
    if (!b)
        return;
    awq_vk_rec_forget(d, b->id);
    if (b->map)
        d->fn.vkUnmapMemory(d->dev, b->mem);
    d->fn.vkDestroyBuffer(d->dev, b->buf, NULL);
    d->fn.vkFreeMemory(d->dev, b->mem, NULL);
    free(b);
}

void awq_vk_buf_release(struct vk_dev *d, struct vk_buf *b)
{
    if (!b)
        return;
    if (b->last_use <= d->serial_done || d->lost) {
        awq_vk_buf_destroy_now(d, b);
        return;
    }
    if (d->n_garbage == d->cap_garbage) {
        int cap = d->cap_garbage ? 2 * d->cap_garbage : 16;
        struct vk_garbage *g = realloc(d->garbage, (size_t)cap * sizeof *g);
        if (!g) {
            /* cannot defer: wait for the work that uses it, then free */
            awq_vk_wait_serial(d, b->last_use);
            awq_vk_buf_destroy_now(d, b);
            return;
        }
        d->garbage = g;
        d->cap_garbage = cap;
    }
    awq_vk_rec_forget(d, b->id);
    if (b->map)
        d->fn.vkUnmapMemory(d->dev, b->mem);
    d->garbage[d->n_garbage++] = (struct vk_garbage){ b->last_use, b->buf, b->mem };
    free(b);
}

int awq_vk_scratch(struct vk_dev *d, size_t bytes, struct vk_buf **out)
{
    if (bytes < 256)
        bytes = 256;
    if (!d->scratch || d->scratch->alloc < bytes) {
        size_t want = d->scratch ? d->scratch->alloc + d->scratch->alloc / 2 : (size_t)1 << 20;
        if (want < bytes)
            want = bytes;
        if (want > d->max_alloc)
            want = bytes;
        awq_vk_buf_release(d, d->scratch);
        d->scratch = NULL;
        VK_TRY(awq_vk_buf_create(d, want, 0, &d->scratch));
    }
    *out = d->scratch;
    return 0;
}

size_t awq_vk_rows_fit(const struct vk_dev *d, size_t row_bytes)
{
    if (row_bytes == 0)
        return (size_t)-1;
    return (d->max_range - d->align - 4) / row_bytes;
}

int awq_vk_window(struct vk_dev *d, struct vk_buf *b, size_t lo, size_t hi, size_t elem,
                  struct vk_arg *out, uint32_t *eoff)
{
    size_t base = lo & ~(d->align - 1);
    size_t end = (hi + 3) & ~(size_t)3;
    if (end > b->alloc)
        end = b->alloc;
    if (end < base + 4)
        end = base + 4;
    if (end - base > d->max_range)
        return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan: internal error: a %zu-byte window "
                           "exceeds the %zu-byte storage-buffer range", end - base, d->max_range);
    if ((lo - base) % elem)
        return awq_err_set(d->err, AWQ_ERR_INVALID_ARGUMENT, "Vulkan: tensor offset %zu is not a "
                           "multiple of its %zu-byte elements", lo, elem);
    *out = (struct vk_arg){ b, base, end - base };
    *eoff = (uint32_t)((lo - base) / elem);
    return 0;
}

int awq_vk_window_opt(struct vk_dev *d, struct awq_tref r, size_t bytes, size_t elem,
                      struct vk_arg *out, uint32_t *eoff)
{
    if (!r.buf) {
        *out = (struct vk_arg){ d->dummy, 0, d->dummy->alloc };
        *eoff = 0;
        return 0;
    }
    return awq_vk_window(d, vk_tbuf(r), r.off, r.off + bytes, elem, out, eoff);
}

/* ---- host transfers -------------------------------------------------------------------------- */

static size_t staging_size(void)
{
    const char *v = getenv("AWQ_VK_STAGING");
    if (v && *v) {
        char *end;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*end && x >= 4096)
            return (size_t)x & ~(size_t)15;
    }
    return DEFAULT_STAGING;
}

/* `n` bytes of staging space (n <= staging size); waits for the GPU when the ring is full. */
static int staging_take(struct vk_dev *d, size_t n, size_t *off)
{
    if (!d->staging)
        VK_TRY(awq_vk_buf_create(d, staging_size(), 1, &d->staging));
    if (d->staging_head + n > d->staging->alloc) {
        VK_TRY(awq_vk_finish(d));
        d->staging_head = 0;
    }
    *off = d->staging_head;
    d->staging_head = (d->staging_head + n + 15) & ~(size_t)15;
    return 0;
}

int awq_vk_write(struct vk_dev *d, struct vk_buf *b, size_t off, const void *src, size_t n)
{
    if (b->map) {
        VK_TRY(awq_vk_wait_serial(d, b->last_use));
        memcpy((char *)b->map + off, src, n);
        return awq_vk_check_messages(d);
    }
    if (!d->staging)
        VK_TRY(awq_vk_buf_create(d, staging_size(), 1, &d->staging));
    const char *s = src;
    while (n) {
        size_t piece = vk_min(n, d->staging->alloc), so;
        VK_TRY(staging_take(d, piece, &so));
        memcpy((char *)d->staging->map + so, s, piece);
        VK_TRY(awq_vk_op_begin(d));
        VkCommandBuffer cmd;
        VK_TRY(awq_vk_cmd(d, &cmd));
        VkBufferCopy c = { so, off, piece };
        d->fn.vkCmdCopyBuffer(cmd, d->staging->buf, b->buf, 1, &c);
        awq_vk_touch(d, b);
        awq_vk_touch(d, d->staging);
        awq_vk_work(d, piece);
        VK_TRY(awq_vk_op_end(d));
        s += piece;
        off += piece;
        n -= piece;
    }
    return 0;
}

int awq_vk_read(struct vk_dev *d, struct vk_buf *b, size_t off, void *dst, size_t n)
{
    if (b->map) {
        VK_TRY(awq_vk_wait_serial(d, b->last_use));
        memcpy(dst, (const char *)b->map + off, n);
        return awq_vk_check_messages(d);
    }
    if (!d->staging)
        VK_TRY(awq_vk_buf_create(d, staging_size(), 1, &d->staging));
    char *t = dst;
    while (n) {
        size_t piece = vk_min(n, d->staging->alloc), so;
        VK_TRY(staging_take(d, piece, &so));
        VK_TRY(awq_vk_op_begin(d));
        VkCommandBuffer cmd;
        VK_TRY(awq_vk_cmd(d, &cmd));
        VkBufferCopy c = { off, so, piece };
        d->fn.vkCmdCopyBuffer(cmd, b->buf, d->staging->buf, 1, &c);
        awq_vk_touch(d, b);
        awq_vk_touch(d, d->staging);
        VK_TRY(awq_vk_finish(d));
        memcpy(t, (const char *)d->staging->map + so, piece);
        d->staging_head = 0;   /* everything has completed */
        t += piece;
        off += piece;
        n -= piece;
    }
    return awq_vk_check_messages(d);
}

/* ---- ops table entries --------------------------------------------------------------------------- */

int awq_vk_buf_alloc(void *dev, size_t bytes, void **buf)
{
    struct vk_buf *b;
    VK_TRY(awq_vk_buf_create(dev, bytes, 0, &b));
    *buf = b;
    return 0;
}

void awq_vk_buf_free(void *dev, void *buf)
{
    awq_vk_buf_release(dev, buf);
}

int awq_vk_buf_write(void *dev, void *buf, size_t off, const void *src, size_t n)
{
    struct vk_dev *d = dev;
    if (d->lost)
        return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan device was lost earlier (VK_ERROR_DEVICE_LOST)");
    return awq_vk_write(d, buf, off, src, n);
}

int awq_vk_buf_read(void *dev, void *buf, size_t off, void *dst, size_t n)
{
    struct vk_dev *d = dev;
    if (d->lost)
        return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan device was lost earlier (VK_ERROR_DEVICE_LOST)");
    return awq_vk_read(d, buf, off, dst, n);
}

static int copy_transfer(struct vk_dev *d, struct vk_buf *s, size_t so, struct vk_buf *t, size_t to, size_t n)
{
    if (!n)
        return 0;
    VkCommandBuffer cmd;
    VK_TRY(awq_vk_cmd(d, &cmd));
    VkBufferCopy c = { so, to, n };
    d->fn.vkCmdCopyBuffer(cmd, s->buf, t->buf, 1, &c);
    return 0;
}

struct copy_push {
    uint32_t n, s_off, d_off;
};

/* Records a copy of n bytes between non-overlapping ranges: through the copy shader in 16-byte
 * units when enabled and both ends share their alignment mod 16 (the unaligned head and the tail
 * by vkCmdCopyBuffer), else by vkCmdCopyBuffer alone. The pieces touch disjoint bytes, so they
 * need no barrier between them. */
static int record_copy(struct vk_dev *d, struct vk_buf *s, size_t so, struct vk_buf *t, size_t to, size_t n)
{
    if (!d->copy_shader || n < 4096 || so % 16 != to % 16)
        return copy_transfer(d, s, so, t, to, n);
    size_t head = (16 - to % 16) % 16;
    VK_TRY(copy_transfer(d, s, so, t, to, head));
    so += head;
    to += head;
    n -= head;
    size_t chunk_max = (d->max_range - d->align) & ~(size_t)15;
    uint32_t wg = d->tune.wg;
    while (n >= 16) {
        size_t c = vk_min(n & ~(size_t)15, chunk_max);
        struct vk_arg a[2];
        struct copy_push pc;
        VK_TRY(awq_vk_window(d, s, so, so + c, 16, &a[0], &pc.s_off));
        VK_TRY(awq_vk_window(d, t, to, to + c, 16, &a[1], &pc.d_off));
        pc.n = (uint32_t)(c / 16);
        size_t groups = vk_min(vk_div_up(pc.n, wg), vk_min(d->max_groups[0], 65535));
        VK_TRY(awq_vk_dispatch(d, VKS_COPY, &wg, 1, a, 2, &pc, sizeof pc, (uint32_t)groups, 1, 1));
        so += c;
        to += c;
        n -= c;
    }
    return copy_transfer(d, s, so, t, to, n);
}

int awq_vk_buf_copy(void *dev, void *src, size_t src_off, void *dst, size_t dst_off, size_t n)
{
    struct vk_dev *d = dev;
    struct vk_buf *s = src, *t = dst;
    VK_TRY(awq_vk_op_begin(d));
    if (s == t && src_off < dst_off + n && dst_off < src_off + n) {
        /* overlapping ranges of one buffer: vkCmdCopyBuffer forbids it (and a shader would race);
         * go through scratch */
        struct vk_buf *tmp;
        VK_TRY(awq_vk_scratch(d, n, &tmp));
        VK_TRY(record_copy(d, s, src_off, tmp, 0, n));
        awq_vk_touch(d, tmp);
        VK_TRY(awq_vk_barrier(d));
        VK_TRY(record_copy(d, tmp, 0, t, dst_off, n));
        awq_vk_touch(d, tmp);
    } else {
        VK_TRY(record_copy(d, s, src_off, t, dst_off, n));
    }
    awq_vk_work(d, 2 * n);
    awq_vk_touch(d, s);
    awq_vk_touch(d, t);
    return awq_vk_op_end(d);
}

int awq_vk_buf_zero(void *dev, void *buf, size_t off, size_t n)
{
    struct vk_dev *d = dev;
    struct vk_buf *b = buf;
    VK_TRY(awq_vk_op_begin(d));
    VkCommandBuffer cmd;
    VK_TRY(awq_vk_cmd(d, &cmd));
    size_t end = off + n, a0 = (off + 3) & ~(size_t)3, a1 = end & ~(size_t)3;
    if (a1 > a0) {
        d->fn.vkCmdFillBuffer(cmd, b->buf, a0, a1 - a0, 0);
    } else {
        a0 = a1 = end;   /* fewer than 4 aligned bytes: the head copy covers it all */
    }
    /* unaligned head and tail bytes: copied from the zero-filled dummy buffer */
    if (a0 > off) {
        VkBufferCopy c = { 0, off, vk_min(a0, end) - off };
        d->fn.vkCmdCopyBuffer(cmd, d->dummy->buf, b->buf, 1, &c);
    }
    if (end > a1 && a1 >= a0 && a1 > off) {
        VkBufferCopy c = { 0, a1, end - a1 };
        d->fn.vkCmdCopyBuffer(cmd, d->dummy->buf, b->buf, 1, &c);
    }
    awq_vk_touch(d, b);
    awq_vk_touch(d, d->dummy);
    awq_vk_work(d, n);
    return awq_vk_op_end(d);
}
