/* VkResult names and their translation into libawq errors. */
#include "config.h"

#include <string.h>

#include "vk_internal.h"

const char *awq_vk_result_name(VkResult r)
{
    switch (r) {
#define N(x) \
    case x:  \
        return #x;
        N(VK_SUCCESS)
        N(VK_NOT_READY)
        N(VK_TIMEOUT)
        N(VK_EVENT_SET)
        N(VK_EVENT_RESET)
        N(VK_INCOMPLETE)
        N(VK_ERROR_OUT_OF_HOST_MEMORY)
        N(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        N(VK_ERROR_INITIALIZATION_FAILED)
        N(VK_ERROR_DEVICE_LOST)
        N(VK_ERROR_MEMORY_MAP_FAILED)
        N(VK_ERROR_LAYER_NOT_PRESENT)
        N(VK_ERROR_EXTENSION_NOT_PRESENT)
        N(VK_ERROR_FEATURE_NOT_PRESENT)
        N(VK_ERROR_INCOMPATIBLE_DRIVER)
        N(VK_ERROR_TOO_MANY_OBJECTS)
        N(VK_ERROR_FORMAT_NOT_SUPPORTED)
        N(VK_ERROR_FRAGMENTED_POOL)
        N(VK_ERROR_UNKNOWN)
        N(VK_ERROR_OUT_OF_POOL_MEMORY)
        N(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        N(VK_ERROR_FRAGMENTATION)
        N(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        N(VK_PIPELINE_COMPILE_REQUIRED)
        N(VK_ERROR_VALIDATION_FAILED_EXT)
        N(VK_ERROR_INVALID_SHADER_NV)
#undef N
    default:
        return "VK_ERROR_(unknown)";
    }
}

int awq_vk_fail(struct awq_errbuf *err, VkResult r, const char *what)
{
    int code = AWQ_ERR_BACKEND;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        code = AWQ_ERR_DEVICE_MEMORY;
    else if (r == VK_ERROR_OUT_OF_HOST_MEMORY)
        code = AWQ_ERR_OUT_OF_MEMORY;
    return awq_err_set(err, code, "Vulkan: %s failed (%s, %d)", what, awq_vk_result_name(r), (int)r);
}

int awq_vk_dev_fail(struct vk_dev *d, VkResult r, const char *what)
{
    if (r == VK_ERROR_DEVICE_LOST)
        d->lost = 1;
    return awq_vk_fail(d->err, r, what);
}

int awq_vk_check_messages(struct vk_dev *d)
{
    const struct vk_msgsink *s = &d->st->sink;
    if (s->count == d->msgs_seen)
        return 0;
    unsigned long n = s->count - d->msgs_seen;
    d->msgs_seen = s->count;
    return awq_err_set(d->err, AWQ_ERR_BACKEND, "Vulkan validation: %lu message%s, last: %s", n,
                       n == 1 ? "" : "s", s->last);
}
