/* Recording and submission. Ops record into the open "frame" of a small ring: a command buffer,
 * its fence and a descriptor pool, all reused (reset, never reallocated) once the fence says the
 * GPU is done with them. A frame is submitted when the GPU is idle (so work starts at once), when
 * it holds enough dispatches, or when the host needs a result; ops therefore enqueue and return.
 *
 * Ordering: ops form one in-order stream. Every op starts with a global memory barrier, which
 * covers everything recorded before it in this and earlier frames. Each frame has a serial number;
 * buffers remember the serial of the last frame that used them, so freeing a buffer or writing it
 * from the host waits only for the work that touches it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

/* Submission policy: a frame is submitted once it holds FLUSH_DISPATCHES dispatches or binds
 * FLUSH_BYTES of tensors (roughly the memory traffic of a few microseconds of GPU time), or when
 * the GPU has gone idle and the frame holds at least IDLE_BYTES: few submissions per token in
 * decode, while the GPU never waits long for work. */
#define FLUSH_DISPATCHES 64
#define FLUSH_BYTES ((uint64_t)64 << 20)
#define IDLE_BYTES ((uint64_t)1 << 20)

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
    if (d->cmd_pool)
        d->fn.vkDestroyCommandPool(d->dev, d->cmd_pool, NULL);
    memset(d->frames, 0, sizeof d->frames);
    d->cmd_pool = VK_NULL_HANDLE;
}

static int frame_wait(struct vk_dev *d, struct vk_frame *f)
{
    if (!f->submitted)
        return 0;
    VkResult r = d->fn.vkWaitForFences(d->dev, 1, &f->fence, VK_TRUE, UINT64_MAX);
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
    r = d->fn.vkQueueSubmit(d->queue, 1, &si, f->fence);
    if (r != VK_SUCCESS)
        return awq_vk_dev_fail(d, r, "vkQueueSubmit");
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
    if (f->dispatches >= FLUSH_DISPATCHES || f->work >= FLUSH_BYTES || (f->work >= IDLE_BYTES && gpu_idle(d)))
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
        args[i].b->last_use = f->serial;
        f->work += args[i].range;
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
    f->dispatches++;
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
