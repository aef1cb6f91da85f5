/* Recording and submission. Ops record into the open "frame" of a small ring: a primary command
 * buffer, its fence and a descriptor pool, all reused (reset, never reallocated) once the fence
 * says the GPU is done with them. Frames are submitted in batches (policy below) or when the host
 * needs a result; ops therefore enqueue and return.
 *
 * Recorded once, replayed: a dispatch (pipeline, descriptor set, push constants, group counts) is
 * recorded into a secondary command buffer the first time its key occurs (the pipeline, each bound
 * buffer's id, offset and range, the push constants and the grid); the frame then only executes it
 * (vkCmdExecuteCommands). A decode step that repeats the same ops on the same buffers thus records
 * nothing but barriers and executes. A key enters the cache on its second occurrence (dispatches
 * that never recur are recorded straight into the frame). The cache holds VK_REC_SLOTS recordings,
 * evicts by a clock sweep (recently replayed ones get a second chance; pending ones are skipped),
 * and drops the recordings of a buffer when it is freed. When no slot is free (all pending), a dispatch is recorded straight into the frame with a
 * descriptor set from the frame's pool, as every dispatch is with AWQ_VK_REUSE=0.
 *
 * Ordering: ops form one in-order stream. Every op starts with a global memory barrier, which
 * covers everything recorded before it in this and earlier frames. Each frame has a serial number;
 * buffers remember the serial of the last frame that used them, so freeing a buffer or writing it
 * from the host waits only for the work that touches it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vk_internal.h"

/* Submission policy: a frame is submitted once it holds FLUSH_DISPATCHES dispatches or binds
 * FLUSH_BYTES of tensors (the memory traffic of some 50 microseconds on a fast GPU; each submission
 * costs the GPU a few microseconds of drain), or early, when the GPU has gone idle and the frame
 * holds at least IDLE_BYTES, so the GPU never waits long for work. Submitting costs the host time (tens of microseconds on some drivers), so by
 * default (idle mode 2) an idle GPU gets the frame only once the frame has been open longer than a
 * submission takes: when ops are shorter than a submission, each submission carries several. */
#define FLUSH_DISPATCHES 128
#define FLUSH_BYTES ((uint64_t)128 << 20)
#define IDLE_BYTES ((uint64_t)1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* AWQ_VK_SUBMIT="fd=128,fb=134217728,ib=1048576,idle=2,spin=2000" (tuning runs). An unknown key
 * or an out-of-range value is an error naming the entry, never silently ignored. */
static int submit_policy(struct vk_dev *d)
{
    d->flush_dispatches = FLUSH_DISPATCHES;
    d->flush_bytes = FLUSH_BYTES;
    d->idle_bytes = IDLE_BYTES;
    d->idle_mode = 2;
    d->spin_s = d->ph->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? 0 : 2e-3;
    const char *v = getenv("AWQ_VK_SUBMIT");
    while (v && *v) {
        const char *end = strchr(v, ',');
        size_t len = end ? (size_t)(end - v) : strlen(v);
        const char *eq = memchr(v, '=', len);
        int done = 0;
        if (eq) {
            char *stop;
            unsigned long long x = strtoull(eq + 1, &stop, 10);
            size_t klen = (size_t)(eq - v);
            done = stop == v + len;
            if (!done)
                ;
            else if (klen == 2 && !strncmp(v, "fd", 2) && x > 0 && x < (1u << 30))
                d->flush_dispatches = (uint32_t)x;
            else if (klen == 2 && !strncmp(v, "fb", 2) && x > 0)
                d->flush_bytes = x;
            else if (klen == 2 && !strncmp(v, "ib", 2))
                d->idle_bytes = x;
            else if (klen == 4 && !strncmp(v, "idle", 4) && x <= 2)
                d->idle_mode = (int)x;
            else if (klen == 4 && !strncmp(v, "spin", 4) && x <= 1000000)
                d->spin_s = 1e-6 * (double)x;
            else
                done = 0;
        }
        if (!done)
            return awq_err_set(d->err, AWQ_ERR_INVALID_ARGUMENT, "AWQ_VK_SUBMIT: '%.*s' is not one of fd=N (1..2^30), "
                               "fb=N, ib=N, idle=0|1|2, spin=MICROSECONDS (<= 1000000)", (int)len, v);
        v = end ? end + 1 : NULL;
    }
    const char *r = getenv("AWQ_VK_REUSE");
    d->reuse = !(r && !strcmp(r, "0"));
    return 0;
}

int awq_vk_queue_init(struct vk_dev *d)
{
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = d->ph->queue_family,
    };
    VkResult r = d->fn.vkCreateCommandPool(d->dev, &pci, NULL, &d->cmd_pool);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkCreateCommandPool");
    VkCommandBuffer cmds[VK_FRAMES];
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = d->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = VK_FRAMES,
    };
    r = d->fn.vkAllocateCommandBuffers(d->dev, &ai, cmds);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkAllocateCommandBuffers");
    VkDescriptorPoolSize ps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_SETS_PER_FRAME * VK_MAX_BINDINGS };
    VkDescriptorPoolCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = VK_SETS_PER_FRAME,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    for (int i = 0; i < VK_FRAMES; i++) {
        struct vk_frame *f = &d->frames[i];
        f->cmd = cmds[i];
        r = d->fn.vkCreateFence(d->dev, &fci, NULL, &f->fence);
        if (r != VK_SUCCESS)
            return awq_vk_dev_fail(d, r, "vkCreateFence");
        r = d->fn.vkCreateDescriptorPool(d->dev, &dci, NULL, &f->pool);
        if (r != VK_SUCCESS)
            return awq_vk_dev_fail(d, r, "vkCreateDescriptorPool");
    }
    d->serial_next = 1;
    d->cur = -1;
    VK_TRY(submit_policy(d));

    /* the recorded-dispatch cache: its sets are freed one by one when slots are recycled */
    for (int i = 0; i < VK_REC_BUCKETS; i++)
        d->buckets[i] = -1;
    d->recs = calloc(VK_REC_SLOTS, sizeof *d->recs);
    if (!d->recs)
        return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    VkDescriptorPoolSize rps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_REC_SLOTS * VK_MAX_BINDINGS };
    VkDescriptorPoolCreateInfo rci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT,
        .maxSets = VK_REC_SLOTS,
        .poolSizeCount = 1,
        .pPoolSizes = &rps,
    };
    r = d->fn.vkCreateDescriptorPool(d->dev, &rci, NULL, &d->rec_pool);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkCreateDescriptorPool");
    return 0;
}

void awq_vk_queue_fini(struct vk_dev *d)
{
    for (int i = 0; i < VK_FRAMES; i++) {
        struct vk_frame *f = &d->frames[i];
        if (f->fence)
            d->fn.vkDestroyFence(d->dev, f->fence, NULL);
        if (f->pool)
            d->fn.vkDestroyDescriptorPool(d->dev, f->pool, NULL);
    }
    if (d->rec_pool)
        d->fn.vkDestroyDescriptorPool(d->dev, d->rec_pool, NULL);
    if (d->cmd_pool)   /* frees the primaries and the recorded secondaries */
        d->fn.vkDestroyCommandPool(d->dev, d->cmd_pool, NULL);
    memset(d->frames, 0, sizeof d->frames);
    d->cmd_pool = VK_NULL_HANDLE;
    d->rec_pool = VK_NULL_HANDLE;
    free(d->recs);
    d->recs = NULL;
    d->n_recs = 0;
}

/* Waits for a submitted frame. Polls the fence for up to d->spin_s (2 ms) before blocking in the
 * driver: a blocked thread can wake well after the fence signals (50 us for a round trip on
 * NVIDIA, at times far more), which leaves the GPU without work when the host waits for a ring
 * slot. Not on CPU devices, whose work needs the cores a poller would take. */
static int frame_wait(struct vk_dev *d, struct vk_frame *f)
{
    if (!f->submitted)
        return 0;
    VkResult r = d->fn.vkGetFenceStatus(d->dev, f->fence);
    if (r == VK_NOT_READY && d->spin_s > 0) {
        double t0 = now_s();
        do
            r = d->fn.vkGetFenceStatus(d->dev, f->fence);
        while (r == VK_NOT_READY && now_s() - t0 < d->spin_s);
    }
    if (r == VK_NOT_READY)
        r = d->fn.vkWaitForFences(d->dev, 1, &f->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkWaitForFences");
    f->submitted = 0;
    if (f->serial > d->serial_done)
        d->serial_done = f->serial;
    return 0;
}

static void record_barrier(struct vk_dev *d, struct vk_frame *f)
{
    f->n_written = 0;
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    d->fn.vkCmdPipelineBarrier(f->cmd,
                               VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                                   VK_PIPELINE_STAGE_HOST_BIT,
                               VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                               0, 1, &mb, 0, NULL, 0, NULL);
}

/* Opens a frame if none is open. A new frame starts with a barrier, so work split across frames
 * stays ordered. */
static int frame_begin(struct vk_dev *d)
{
    if (d->cur >= 0)
        return 0;
    struct vk_frame *f = &d->frames[d->next];
    VK_TRY(frame_wait(d, f));
    awq_vk_collect(d);
    VkResult r = d->fn.vkResetFences(d->dev, 1, &f->fence);
    if (r == VK_SUCCESS)
        r = d->fn.vkResetDescriptorPool(d->dev, f->pool, 0);
    if (r == VK_SUCCESS)
        r = d->fn.vkResetCommandBuffer(f->cmd, 0);
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    if (r == VK_SUCCESS)
        r = d->fn.vkBeginCommandBuffer(f->cmd, &bi);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "starting a command buffer");
    f->serial = d->serial_next++;
    f->sets = 0;
    f->dispatches = 0;
    f->work = 0;
    f->bound = VK_NULL_HANDLE;
    d->frame_t0 = now_s();
    d->cur = d->next;
    d->next = (d->next + 1) % VK_FRAMES;
    record_barrier(d, f);
    return 0;
}

int awq_vk_flush(struct vk_dev *d)
{
    if (d->cur < 0)
        return 0;
    struct vk_frame *f = &d->frames[d->cur];
    d->cur = -1;
    /* make device writes visible to the host once the fence signals */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_HOST_WRITE_BIT,
    };
    d->fn.vkCmdPipelineBarrier(f->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                               VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = d->fn.vkEndCommandBuffer(f->cmd);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkEndCommandBuffer");
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &f->cmd,
    };
    double t0 = now_s();
    r = d->fn.vkQueueSubmit(d->queue, 1, &si, f->fence);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkQueueSubmit");
    double dt = now_s() - t0;
    d->submit_cost = d->stats.submits ? d->submit_cost + (dt - d->submit_cost) / 8 : dt;
    d->stats.submits++;
    f->submitted = 1;
    return 0;
}

int awq_vk_wait_serial(struct vk_dev *d, uint64_t serial)
{
    if (serial == 0 || serial <= d->serial_done)
        return 0;
    if (d->cur >= 0 && d->frames[d->cur].serial <= serial)
        VK_TRY(awq_vk_flush(d));
    /* in serial order: the queue completes frames in the order they were submitted */
    for (;;) {
        struct vk_frame *oldest = NULL;
        for (int i = 0; i < VK_FRAMES; i++) {
            struct vk_frame *f = &d->frames[i];
            if (f->submitted && f->serial <= serial && (!oldest || f->serial < oldest->serial))
                oldest = f;
        }
        if (!oldest)
            break;
        VK_TRY(frame_wait(d, oldest));
    }
    if (serial > d->serial_done)
        d->serial_done = serial;
    awq_vk_collect(d);
    return 0;
}

int awq_vk_finish(struct vk_dev *d)
{
    if (d->lost)
        return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan device was lost (VK_ERROR_DEVICE_LOST)");
    VK_TRY(awq_vk_flush(d));
    return awq_vk_wait_serial(d, d->serial_next - 1);
}

void awq_vk_collect(struct vk_dev *d)
{
    int k = 0;
    for (int i = 0; i < d->n_garbage; i++) {
        struct vk_garbage *g = &d->garbage[i];
        if (g->serial <= d->serial_done || d->lost) {
            if (g->buf)
                d->fn.vkDestroyBuffer(d->dev, g->buf, NULL);
            if (g->mem)
                d->fn.vkFreeMemory(d->dev, g->mem, NULL);
        } else {
            d->garbage[k++] = *g;
        }
    }
    d->n_garbage = k;
}

int awq_vk_op_begin(struct vk_dev *d)
{
    if (d->lost)
        return awq_err_set(d->err, AWQ_ERR_BACKEND,
                           "Vulkan device was lost earlier (VK_ERROR_DEVICE_LOST); reopen it");
    VK_TRY(awq_vk_check_messages(d));
    int fresh = d->cur < 0;
    VK_TRY(frame_begin(d));
    if (!fresh)
        record_barrier(d, &d->frames[d->cur]);
    return 0;
}

/* Is the GPU idle, i.e. has the last submitted frame completed? */
static int gpu_idle(struct vk_dev *d)
{
    for (int i = 0; i < VK_FRAMES; i++) {
        struct vk_frame *f = &d->frames[i];
        if (f->submitted && d->fn.vkGetFenceStatus(d->dev, f->fence) != VK_SUCCESS)
            return 0;
    }
    return 1;
}

int awq_vk_op_end(struct vk_dev *d)
{
    if (d->cur < 0)
        return awq_vk_check_messages(d);
    struct vk_frame *f = &d->frames[d->cur];
    int now = f->dispatches >= d->flush_dispatches || f->work >= d->flush_bytes;
    if (!now && d->idle_mode && f->work >= d->idle_bytes &&
        (d->idle_mode == 1 || now_s() - d->frame_t0 >= d->submit_cost))
        now = gpu_idle(d);
    if (now)
        VK_TRY(awq_vk_flush(d));
    return awq_vk_check_messages(d);
}

int awq_vk_barrier(struct vk_dev *d)
{
    VK_TRY(frame_begin(d));
    record_barrier(d, &d->frames[d->cur]);
    return 0;
}

int awq_vk_cmd(struct vk_dev *d, VkCommandBuffer *cmd)
{
    VK_TRY(frame_begin(d));
    struct vk_frame *f = &d->frames[d->cur];
    f->dispatches++;
    *cmd = f->cmd;
    return 0;
}

void awq_vk_touch(struct vk_dev *d, struct vk_buf *b)
{
    if (b && d->cur >= 0)
        b->last_use = d->frames[d->cur].serial;
}

void awq_vk_work(struct vk_dev *d, size_t bytes)
{
    if (d->cur >= 0)
        d->frames[d->cur].work += bytes;
}

/* Updates the frames' fences without waiting (so recordings of completed frames can be reused). */
static void poll_done(struct vk_dev *d)
{
    for (int i = 0; i < VK_FRAMES; i++) {
        struct vk_frame *f = &d->frames[i];
        if (f->submitted && d->fn.vkGetFenceStatus(d->dev, f->fence) == VK_SUCCESS) {
            f->submitted = 0;
            if (f->serial > d->serial_done)
                d->serial_done = f->serial;
        }
    }
}

static uint32_t key_hash(const struct vk_rec_key *k)
{
    _Static_assert(sizeof *k % 8 == 0, "the key hashes as 64-bit words");
    uint64_t w[sizeof *k / 8], h = 1469598103934665603u;
    memcpy(w, k, sizeof w);
    for (size_t i = 0; i < sizeof w / 8; i++)
        h = (h ^ w[i]) * 1099511628211u;
    return (uint32_t)(h ^ (h >> 32));
}

static void rec_unlink(struct vk_dev *d, int idx)
{
    struct vk_rec *e = &d->recs[idx];
    int *p = &d->buckets[e->hash % VK_REC_BUCKETS];
    while (*p >= 0 && *p != idx)
        p = &d->recs[*p].next;
    if (*p == idx)
        *p = e->next;
    e->live = 0;
    e->next = -1;
}

void awq_vk_rec_forget(struct vk_dev *d, uint64_t id)
{
    for (int i = 0; i < d->n_recs; i++) {
        struct vk_rec *e = &d->recs[i];
        if (!e->live)
            continue;
        for (uint32_t k = 0; k < e->key.n_args; k++)
            if (e->key.id[k] == id) {
                rec_unlink(d, i);
                e->ref = 0;
                d->stats.evictions++;
                break;
            }
    }
}

/* A slot no pending frame executes: a fresh one, else by the clock (second-chance) sweep, which
 * passes over recently replayed recordings once. -1 when every slot is pending. */
static int rec_slot(struct vk_dev *d)
{
    if (d->n_recs < VK_REC_SLOTS)
        return d->n_recs++;
    for (int pass = 0; pass < 2; pass++) {
        for (int step = 0; step < 2 * VK_REC_SLOTS; step++) {
            int i = d->rec_hand;
            d->rec_hand = (d->rec_hand + 1) % VK_REC_SLOTS;
            struct vk_rec *e = &d->recs[i];
            if (e->serial > d->serial_done)
                continue;
            if (e->live && e->ref) {
                e->ref = 0;
                continue;
            }
            return i;
        }
        poll_done(d);
    }
    return -1;
}

/* Records the dispatch of `k` into slot `idx` (a secondary command buffer). */
static int rec_record(struct vk_dev *d, int idx, const struct vk_rec_key *k, VkPipeline pipe,
                      const struct vk_arg *args, const void *push)
{
    struct vk_rec *e = &d->recs[idx];
    if (e->live) {
        rec_unlink(d, idx);
        d->stats.evictions++;
    }
    VkResult r = VK_SUCCESS;
    if (!e->cmd) {
        VkCommandBufferAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
            .commandPool = d->cmd_pool,
            .level = VK_COMMAND_BUFFER_LEVEL_SECONDARY,
            .commandBufferCount = 1,
        };
        r = d->fn.vkAllocateCommandBuffers(d->dev, &ai, &e->cmd);
        if (r != VK_SUCCESS) {
            e->cmd = VK_NULL_HANDLE;
            return awq_vk_dev_fail(d, r, "vkAllocateCommandBuffers");
        }
    }
    if (e->set && e->set_n != k->n_args) {
        d->fn.vkFreeDescriptorSets(d->dev, d->rec_pool, 1, &e->set);
        e->set = VK_NULL_HANDLE;
    }
    if (!e->set) {
        VkDescriptorSetAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = d->rec_pool,
            .descriptorSetCount = 1,
            .pSetLayouts = &d->dsl[k->n_args],
        };
        r = d->fn.vkAllocateDescriptorSets(d->dev, &ai, &e->set);
        if (r != VK_SUCCESS) {
            e->set = VK_NULL_HANDLE;
            return awq_vk_dev_fail(d, r, "vkAllocateDescriptorSets");
        }
        e->set_n = k->n_args;
    }
    VkDescriptorBufferInfo bi[VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < k->n_args; i++) {
        bi[i] = (VkDescriptorBufferInfo){ args[i].b->buf, args[i].off, args[i].range };
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = e->set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    }
    d->fn.vkUpdateDescriptorSets(d->dev, k->n_args, w, 0, NULL);
    VkCommandBufferInheritanceInfo ii = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_INHERITANCE_INFO };
    VkCommandBufferBeginInfo cbi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        /* replayed several times per frame and by several pending frames */
        .flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT,
        .pInheritanceInfo = &ii,
    };
    r = d->fn.vkResetCommandBuffer(e->cmd, 0);
    if (r == VK_SUCCESS)
        r = d->fn.vkBeginCommandBuffer(e->cmd, &cbi);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "starting a secondary command buffer");
    VkPipelineLayout layout = d->layout[k->n_args];
    d->fn.vkCmdBindPipeline(e->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    d->fn.vkCmdBindDescriptorSets(e->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &e->set, 0, NULL);
    if (k->push_size)
        d->fn.vkCmdPushConstants(e->cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, k->push_size, push);
    d->fn.vkCmdDispatch(e->cmd, k->groups[0], k->groups[1], k->groups[2]);
    r = d->fn.vkEndCommandBuffer(e->cmd);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkEndCommandBuffer");
    e->key = *k;
    e->hash = key_hash(k);
    int *head = &d->buckets[e->hash % VK_REC_BUCKETS];
    e->next = *head;
    *head = idx;
    e->live = 1;
    d->stats.records++;
    return 0;
}

/* Executes the cached recording of this dispatch in frame f (recording it first when new).
 * Returns 1 when done, 0 when no slot is free (the caller records directly), < 0 on error. */
static int dispatch_cached(struct vk_dev *d, struct vk_frame *f, VkPipeline pipe, const struct vk_arg *args,
                           int n_args, const void *push, size_t push_size, uint32_t gx, uint32_t gy,
                           uint32_t gz)
{
    struct vk_rec_key k;
    memset(&k, 0, sizeof k);
    k.pipe = pipe;
    k.n_args = (uint32_t)n_args;
    k.push_size = (uint32_t)((push_size + 3) & ~(size_t)3);
    k.groups[0] = gx;
    k.groups[1] = gy;
    k.groups[2] = gz;
    for (int i = 0; i < n_args; i++) {
        k.id[i] = args[i].b->id;
        k.off[i] = args[i].off;
        k.range[i] = args[i].range;
    }
    memcpy(k.push, push, push_size);
    uint32_t h = key_hash(&k);
    int idx = d->buckets[h % VK_REC_BUCKETS];
    while (idx >= 0 && !(d->recs[idx].hash == h && memcmp(&d->recs[idx].key, &k, sizeof k) == 0))
        idx = d->recs[idx].next;
    if (idx >= 0) {
        d->stats.replays++;
    } else {
        /* Admission: a key is cached on its second occurrence, so dispatches that never recur
         * (chunk sweeps, one-off ops) cost no more than direct recording. */
        uint32_t *seen = &d->rec_seen[h % VK_REC_SEEN];
        if (*seen != h) {
            *seen = h;
            return 0;
        }
        idx = rec_slot(d);
        if (idx < 0)
            return 0;
        /* the pushed bytes past push_size: zero, as in the key */
        VK_TRY(rec_record(d, idx, &k, pipe, args, k.push));
    }
    struct vk_rec *e = &d->recs[idx];
    d->fn.vkCmdExecuteCommands(f->cmd, 1, &e->cmd);
    e->serial = f->serial;
    e->ref = 1;
    f->bound = VK_NULL_HANDLE;   /* state bound by a secondary does not carry over */
    return 1;
}

int awq_vk_dispatch(struct vk_dev *d, int shader, const uint32_t *spec, int n_spec,
                    const struct vk_arg *args, int n_args, const void *push, size_t push_size,
                    uint32_t gx, uint32_t gy, uint32_t gz)
{
    if (n_args != awq_vk_spirv[shader].bindings || n_args > VK_MAX_BINDINGS || push_size > VK_PUSH_BYTES)
        return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan: shader %s bound with %d buffers",
                           awq_vk_spirv[shader].name, n_args);
    if (gx == 0 || gy == 0 || gz == 0)
        return 0;
    if (gx > d->max_groups[0] || gy > d->max_groups[1] || gz > d->max_groups[2])
        return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan: %s grid %ux%ux%u exceeds the device's "
                           "limits", awq_vk_spirv[shader].name, gx, gy, gz);
    VkPipeline pipe;
    VK_TRY(awq_vk_pipeline(d, shader, spec, n_spec, &pipe));
    VK_TRY(frame_begin(d));
    struct vk_frame *f = &d->frames[d->cur];
    /* Chunks of one op run without barriers between them unless their windows overlap bytes an
     * earlier dispatch may have written (windows start aligned down, so neighbours can share a
     * few bytes; column chunks of a product share rows of Y). */
    int hazard = f->n_written < 0;
    for (int i = 0; i < n_args && !hazard; i++)
        for (int k = 0; k < f->n_written && !hazard; k++)
            hazard = f->written[k].buf == args[i].b->buf && args[i].off < f->written[k].hi &&
                     f->written[k].lo < args[i].off + args[i].range;
    if (hazard)
        record_barrier(d, f);
    int done = 0;
    if (d->reuse)
        VK_TRY(done = dispatch_cached(d, f, pipe, args, n_args, push, push_size, gx, gy, gz));
    if (!done) {
        if (f->sets >= VK_SETS_PER_FRAME) {
            VK_TRY(awq_vk_flush(d));
            VK_TRY(frame_begin(d));
            f = &d->frames[d->cur];
        }
        VkDescriptorSetAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = f->pool,
            .descriptorSetCount = 1,
            .pSetLayouts = &d->dsl[n_args],
        };
        VkDescriptorSet set;
        VkResult r = d->fn.vkAllocateDescriptorSets(d->dev, &ai, &set);
        if (r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL) {
            VK_TRY(awq_vk_flush(d));
            VK_TRY(frame_begin(d));
            f = &d->frames[d->cur];
            ai.descriptorPool = f->pool;
            r = d->fn.vkAllocateDescriptorSets(d->dev, &ai, &set);
        }
        if (r != VK_SUCCESS)
            return awq_vk_dev_fail(d, r, "vkAllocateDescriptorSets");
        f->sets++;
        VkDescriptorBufferInfo bi[VK_MAX_BINDINGS];
        VkWriteDescriptorSet w[VK_MAX_BINDINGS];
        for (int i = 0; i < n_args; i++) {
            bi[i] = (VkDescriptorBufferInfo){ args[i].b->buf, args[i].off, args[i].range };
            w[i] = (VkWriteDescriptorSet){
                .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                .dstSet = set,
                .dstBinding = (uint32_t)i,
                .descriptorCount = 1,
                .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                .pBufferInfo = &bi[i],
            };
        }
        d->fn.vkUpdateDescriptorSets(d->dev, (uint32_t)n_args, w, 0, NULL);
        if (f->bound != pipe) {
            d->fn.vkCmdBindPipeline(f->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
            f->bound = pipe;
        }
        d->fn.vkCmdBindDescriptorSets(f->cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
                                      d->layout[n_args], 0, 1, &set, 0, NULL);
        if (push_size)
            d->fn.vkCmdPushConstants(f->cmd, d->layout[n_args], VK_SHADER_STAGE_COMPUTE_BIT, 0,
                                     (uint32_t)((push_size + 3) & ~(size_t)3), push);
        d->fn.vkCmdDispatch(f->cmd, gx, gy, gz);
        d->stats.direct++;
    }
    f->dispatches++;
    for (int i = 0; i < n_args; i++) {
        args[i].b->last_use = f->serial;
        f->work += args[i].range;
    }
    for (int i = 0; i < n_args; i++) {
        if (!(awq_vk_spirv[shader].writes & (1u << i)) || f->n_written < 0)
            continue;
        if (f->n_written == VK_MAX_SPANS)
            f->n_written = -1;
        else
            f->written[f->n_written++] = (struct vk_span){ args[i].b->buf, args[i].off,
                                                           args[i].off + args[i].range };
    }
    return 0;
}
