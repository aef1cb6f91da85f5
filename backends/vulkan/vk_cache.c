/* The on-disk pipeline cache: $AWQ_CACHE_DIR, else $XDG_CACHE_HOME/libawq, else ~/.cache/libawq;
 * one file per device and driver (the name carries the pipeline-cache UUID). The file is checked
 * before Vulkan sees it (size, header, vendor, device, UUID): anything else is ignored and the
 * cache starts empty. It is written back at close through a temporary file and a rename, so a
 * crash or a concurrent process never leaves a half-written cache behind. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vk_internal.h"

#define CACHE_MAX_BYTES (256u << 20)

static int cache_dir(char *out, size_t n)
{
    const char *e = getenv("AWQ_CACHE_DIR");
    int k;
    if (e && *e)
        k = snprintf(out, n, "%s", e);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e)
        k = snprintf(out, n, "%s/libawq", e);
    else if ((e = getenv("HOME")) && *e)
        k = snprintf(out, n, "%s/.cache/libawq", e);
    else
        return -1;
    return k > 0 && (size_t)k < n ? 0 : -1;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Is `data` a cache this device wrote? (Vulkan checks too, but not every driver checks well.) */
static int header_ok(const struct vk_dev *d, const unsigned char *data, size_t n)
{
    if (n < 32)
        return 0;
    uint32_t len, ver, vendor, device;
    memcpy(&len, data, 4);
    memcpy(&ver, data + 4, 4);
    memcpy(&vendor, data + 8, 4);
    memcpy(&device, data + 12, 4);
    return len >= 32 && len <= n && ver == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           vendor == d->ph->props.vendorID && device == d->ph->props.deviceID &&
           memcmp(data + 16, d->ph->props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

static unsigned char *read_file(const char *path, size_t *n)
{
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    unsigned char *buf = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (unsigned long long)sb.st_size <= CACHE_MAX_BYTES) {
        size_t want = (size_t)sb.st_size, got = 0;
        buf = malloc(want);
        while (buf && got < want) {
            ssize_t k = read(fd, buf + got, want - got);
            if (k <= 0) {
                if (k < 0 && errno == EINTR)
                    continue;
                break;
            }
            got += (size_t)k;
        }
        if (buf && got == want) {
            *n = want;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    close(fd);
    return buf;
}

int awq_vk_cache_open(struct vk_dev *d)
{
    char dir[900];
    d->cache_path[0] = '\0';
    if (cache_dir(dir, sizeof dir) == 0) {
        char uuid[2 * VK_UUID_SIZE + 1];
        for (unsigned i = 0; i < VK_UUID_SIZE; i++)
            snprintf(uuid + 2 * i, 3, "%02x", d->ph->props.pipelineCacheUUID[i]);
        snprintf(d->cache_path, sizeof d->cache_path, "%s/vulkan-%04x-%04x-%s.bin", dir,
                 d->ph->props.vendorID, d->ph->props.deviceID, uuid);
    }
    size_t n = 0;
    unsigned char *data = d->cache_path[0] ? read_file(d->cache_path, &n) : NULL;
    if (data && !header_ok(d, data, n)) {
        free(data);
        data = NULL;
        n = 0;
    }
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = n,
        .pInitialData = data,
    };
    VkResult r = d->fn.vkCreatePipelineCache(d->dev, &ci, NULL, &d->pcache);
    if (r != VK_SUCCESS && data) {
        /* the driver refused the contents: start empty */
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = d->fn.vkCreatePipelineCache(d->dev, &ci, NULL, &d->pcache);
    }
    free(data);
    if (r != VK_SUCCESS) {
        d->pcache = VK_NULL_HANDLE;
        return awq_vk_dev_fail(d, r, "vkCreatePipelineCache");
    }
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

void awq_vk_cache_close(struct vk_dev *d)
{
    if (!d->pcache || !d->cache_dirty || !d->cache_path[0] || d->lost)
        return;
    size_t n = 0;
    if (d->fn.vkGetPipelineCacheData(d->dev, d->pcache, &n, NULL) != VK_SUCCESS || n == 0 ||
        n > CACHE_MAX_BYTES)
        return;
    unsigned char *data = malloc(n);
    if (!data)
        return;
    if (d->fn.vkGetPipelineCacheData(d->dev, d->pcache, &n, data) != VK_SUCCESS) {
        free(data);
        return;
    }
    char dir[1024], tmp[1100];
    snprintf(dir, sizeof dir, "%s", d->cache_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        make_dirs(dir);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", d->cache_path);
    int fd = mkstemp(tmp);
    if (fd >= 0) {
        int ok = write_all(fd, data, n) == 0;
        ok &= close(fd) == 0;
        if (!ok || rename(tmp, d->cache_path) != 0)
            unlink(tmp);
    }
    free(data);
    d->cache_dirty = 0;
}
