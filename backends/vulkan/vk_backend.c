/* The Vulkan compute backend: loader, instance and device discovery, device open/close, and the
 * ops table. The ops themselves live in vk_gemm.c, vk_nn.c and vk_quant.c. */
#include "config.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vk_internal.h"

/* ---- instance ---------------------------------------------------------------------------------- */

static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Is `word` an item of the comma-separated list in environment variable `name`? */
static int env_list_has(const char *name, const char *word)
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

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                               VkDebugUtilsMessageTypeFlagsEXT types,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data,
                                               void *user)
{
    struct vk_msgsink *s = user;
    /* errors only: warnings include best-practice advice that is no failure */
    if (!(severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT))
        return VK_FALSE;
    s->count++;
    snprintf(s->last, sizeof s->last, "%s", data && data->pMessage ? data->pMessage : "(no text)");
    return VK_FALSE;
}

static int has_layer(PFN_vkEnumerateInstanceLayerProperties enum_layers, const char *name)
{
    uint32_t n = 0;
    if (!enum_layers || enum_layers(&n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkLayerProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && enum_layers(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            found |= strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static int has_inst_ext(PFN_vkEnumerateInstanceExtensionProperties enum_ext, const char *layer,
                        const char *name)
{
    uint32_t n = 0;
    if (!enum_ext || enum_ext(layer, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && enum_ext(layer, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

static int has_dev_ext(const struct vk_state *st, VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (st->fn.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && st->fn.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x10DE: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x1010: return "Imagination";
    case 0x106B: return "Apple";
    case 0x10005: return "Mesa";
    default: return NULL;
    }
}

/* Fills everything the backend needs to know about one physical device; 0 if usable. */
static int describe(struct vk_state *st, VkPhysicalDevice pd, int index, struct vk_phys *ph)
{
    memset(ph, 0, sizeof *ph);
    ph->pd = pd;
    st->fn.vkGetPhysicalDeviceProperties(pd, &ph->props);
    st->fn.vkGetPhysicalDeviceMemoryProperties(pd, &ph->mem);
    ph->api = ph->props.apiVersion < st->inst_api ? ph->props.apiVersion : st->inst_api;
    if (ph->api < VK_API_VERSION_1_1)
        return -1;

    uint32_t nq = 0;
    st->fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof *qf);
    if (!qf)
        return -1;
    st->fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    int fam = -1;
    /* A compute family without graphics (an async compute queue) first: it does not compete with
     * the desktop; else any family with compute. */
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) &&
            qf[i].queueCount > 0)
            fam = (int)i;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && qf[i].queueCount > 0)
            fam = (int)i;
    free(qf);
    if (fam < 0)
        return -1;
    ph->queue_family = (uint32_t)fam;

    /* features */
    int have_cm = ph->api >= VK_API_VERSION_1_2 && st->fn.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV &&
                  has_dev_ext(st, pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV };
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                             .pNext = have_cm ? &cmf : NULL };
    VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES };
    VkPhysicalDevice16BitStorageFeatures s16 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2 };
    if (ph->api >= VK_API_VERSION_1_2) {
        f2.pNext = &f11;
        f11.pNext = &f12;
    } else {
        f2.pNext = &s16;
    }
    st->fn.vkGetPhysicalDeviceFeatures2(pd, &f2);
    if (ph->api >= VK_API_VERSION_1_2) {
        ph->storage16 = f11.storageBuffer16BitAccess;
        ph->float16 = f12.shaderFloat16;
        ph->coopmat_nv = have_cm && cmf.cooperativeMatrix && f12.vulkanMemoryModel;
    } else {
        ph->storage16 = s16.storageBuffer16BitAccess;
    }

    /* properties */
    VkPhysicalDeviceSubgroupSizeControlProperties ssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES };
    VkPhysicalDeviceDriverProperties drv = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
    VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
    VkPhysicalDeviceShaderSMBuiltinsPropertiesNV sm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV };
    VkPhysicalDeviceShaderCorePropertiesAMD amd = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_PROPERTIES_AMD };
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg };
    sg.pNext = &m3;
    void **tail = &m3.pNext;
    if (ph->api >= VK_API_VERSION_1_2) {
        *tail = &drv;
        tail = &drv.pNext;
    }
    if (ph->api >= VK_API_VERSION_1_3) {
        *tail = &ssc;
        tail = &ssc.pNext;
    }
    int have_sm = has_dev_ext(st, pd, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME);
    int have_amd = has_dev_ext(st, pd, VK_AMD_SHADER_CORE_PROPERTIES_EXTENSION_NAME);
    if (have_sm) {
        *tail = &sm;
        tail = &sm.pNext;
    }
    if (have_amd) {
        *tail = &amd;
        tail = &amd.pNext;
    }
    st->fn.vkGetPhysicalDeviceProperties2(pd, &p2);
    if (ph->coopmat_nv) {
        /* the tensor-core kernels use 16x16x16 fp16 x fp16 -> fp32 fragments in subgroups of 32 */
        int shape = 0;
        uint32_t n = 0;
        if (st->fn.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, NULL) == VK_SUCCESS && n) {
            VkCooperativeMatrixPropertiesNV *cp = calloc(n, sizeof *cp);
            for (uint32_t i = 0; cp && i < n; i++)
                cp[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
            if (cp && st->fn.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, cp) == VK_SUCCESS)
                for (uint32_t i = 0; i < n; i++)
                    shape |= cp[i].MSize == 16 && cp[i].NSize == 16 && cp[i].KSize == 16 &&
                             cp[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                             cp[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                             cp[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                             cp[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV && cp[i].scope == VK_SCOPE_SUBGROUP_NV;
            free(cp);
        }
        ph->coopmat_nv = shape && sg.subgroupSize == 32;
    }
    VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    ph->subgroup_ok = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                      (sg.supportedOperations & need) == need && sg.subgroupSize >= 4;
    ph->subgroup_size = sg.subgroupSize;
    ph->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : ((VkDeviceSize)1 << 30);
    ph->subgroup_max = ssc.maxSubgroupSize > sg.subgroupSize ? ssc.maxSubgroupSize : sg.subgroupSize;

    /* what the core shows */
    struct awq_device_info *in = &ph->info;
    snprintf(in->backend, sizeof in->backend, "vulkan");
    in->index = index;
    snprintf(in->name, sizeof in->name, "%s", ph->props.deviceName);
    const char *vn = vendor_name(ph->props.vendorID);
    if (vn)
        snprintf(in->vendor, sizeof in->vendor, "%s", vn);
    else
        snprintf(in->vendor, sizeof in->vendor, "0x%04x", ph->props.vendorID);
    uint32_t dv = ph->props.driverVersion;
    if (ph->api >= VK_API_VERSION_1_2 && drv.driverName[0])
        snprintf(in->driver, sizeof in->driver, "%.24s %.38s", drv.driverName, drv.driverInfo);
    else if (ph->props.vendorID == 0x10DE)
        snprintf(in->driver, sizeof in->driver, "%u.%u.%u", dv >> 22, (dv >> 14) & 0xFF, (dv >> 6) & 0xFF);
    else
        snprintf(in->driver, sizeof in->driver, "%u.%u.%u", VK_API_VERSION_MAJOR(dv),
                 VK_API_VERSION_MINOR(dv), VK_API_VERSION_PATCH(dv));
    switch (ph->props.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: in->type = AWQ_DEVICE_GPU; ph->rank = 0; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: in->type = AWQ_DEVICE_GPU; ph->rank = 1; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: in->type = AWQ_DEVICE_GPU; ph->rank = 2; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: in->type = AWQ_DEVICE_CPU; ph->rank = 4; break;
    default: in->type = AWQ_DEVICE_OTHER; ph->rank = 3; break;
    }
    uint64_t best = 0;
    for (uint32_t i = 0; i < ph->mem.memoryHeapCount; i++)
        if ((ph->mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            ph->mem.memoryHeaps[i].size > best)
            best = ph->mem.memoryHeaps[i].size;
    in->memory_bytes = best;
    in->fp16 = ph->float16 && ph->storage16;
    if (have_sm)
        in->compute_units = (int)sm.shaderSMCount;
    else if (have_amd)
        in->compute_units = (int)(amd.shaderEngineCount * amd.shaderArraysPerEngineCount *
                                  amd.computeUnitsPerShaderArray);
    else if (ph->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        in->compute_units = n > 0 ? (int)n : 1;
    }
    return 0;
}

static void vk_fini(void *state);
static void vk_close(void *dev);

static int vk_init(void **state, struct awq_errbuf *err)
{
    *state = NULL;
    struct vk_state *st = calloc(1, sizeof *st);
    if (!st)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    st->lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!st->lib)
        st->lib = dlopen("libvulkan.so", RTLD_NOW | RTLD_LOCAL);
    if (!st->lib) {
        const char *why = dlerror();
        free(st);
        return awq_err_set(err, AWQ_ERR_NO_DEVICE,
                           "Vulkan loader libvulkan.so.1 not found (%s); install the Vulkan loader "
                           "and a driver (Debian: libvulkan1 mesa-vulkan-drivers)", why ? why : "");
    }
    int st_code = 0;
    st->gipa = (PFN_vkGetInstanceProcAddr)dlsym(st->lib, "vkGetInstanceProcAddr");
    if (!st->gipa) {
        st_code = awq_err_set(err, AWQ_ERR_NO_DEVICE, "Vulkan loader lacks vkGetInstanceProcAddr");
        goto fail;
    }
    PFN_vkEnumerateInstanceVersion eiv =
        (PFN_vkEnumerateInstanceVersion)st->gipa(NULL, "vkEnumerateInstanceVersion");
    PFN_vkCreateInstance create =
        (PFN_vkCreateInstance)st->gipa(NULL, "vkCreateInstance");
    PFN_vkEnumerateInstanceLayerProperties enum_layers =
        (PFN_vkEnumerateInstanceLayerProperties)st->gipa(NULL, "vkEnumerateInstanceLayerProperties");
    PFN_vkEnumerateInstanceExtensionProperties enum_ext =
        (PFN_vkEnumerateInstanceExtensionProperties)st->gipa(NULL, "vkEnumerateInstanceExtensionProperties");
    uint32_t ver = VK_API_VERSION_1_0;
    if (eiv)
        eiv(&ver);
    if (!create || ver < VK_API_VERSION_1_1) {
        st_code = awq_err_set(err, AWQ_ERR_NO_DEVICE, "Vulkan loader %u.%u is too old (1.1 needed)",
                              VK_API_VERSION_MAJOR(ver), VK_API_VERSION_MINOR(ver));
        goto fail;
    }
    st->inst_api = ver >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : ver;

    const char *exts[4];
    uint32_t n_ext = 0;
    const char *layers[1];
    uint32_t n_layers = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_inst_ext(enum_ext, NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    if (env_flag("AWQ_VK_VALIDATION") && has_layer(enum_layers, "VK_LAYER_KHRONOS_validation")) {
        layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
        if (has_inst_ext(enum_ext, NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
            has_inst_ext(enum_ext, "VK_LAYER_KHRONOS_validation", VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            exts[n_ext++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
            st->validation = 1;
        }
    }
    VkDebugUtilsMessengerCreateInfoEXT mci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
        .pUserData = &st->sink,
    };
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "libawq",
        .applicationVersion = VK_MAKE_API_VERSION(0, AWQ_VERSION_MAJOR, AWQ_VERSION_MINOR, AWQ_VERSION_PATCH),
        .pEngineName = "libawq",
        .engineVersion = VK_MAKE_API_VERSION(0, AWQ_VERSION_MAJOR, AWQ_VERSION_MINOR, AWQ_VERSION_PATCH),
        .apiVersion = st->inst_api,
    };
    VkInstanceCreateInfo ici = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = st->validation ? &mci : NULL,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = n_layers,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = create(&ici, NULL, &st->inst);
    if (r != VK_SUCCESS) {
        st->inst = VK_NULL_HANDLE;
        if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
            st_code = awq_err_set(err, AWQ_ERR_NO_DEVICE, "no Vulkan driver (ICD) found "
                                  "(vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER)");
        else
            st_code = awq_vk_fail(err, r, "vkCreateInstance");
        goto fail;
    }
#define LOAD_I(name)                                                            \
    st->fn.name = (PFN_##name)st->gipa(st->inst, #name);                       \
    if (!st->fn.name) {                                                         \
        st_code = awq_err_set(err, AWQ_ERR_BACKEND, "Vulkan loader lacks " #name); \
        goto fail;                                                              \
    }
    VK_INSTANCE_FUNCS(LOAD_I)
#undef LOAD_I
    st->fn.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
        st->gipa(st->inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    if (st->validation) {
        st->fn.vkCreateDebugUtilsMessengerEXT =
            (PFN_vkCreateDebugUtilsMessengerEXT)st->gipa(st->inst, "vkCreateDebugUtilsMessengerEXT");
        st->fn.vkDestroyDebugUtilsMessengerEXT =
            (PFN_vkDestroyDebugUtilsMessengerEXT)st->gipa(st->inst, "vkDestroyDebugUtilsMessengerEXT");
        if (st->fn.vkCreateDebugUtilsMessengerEXT)
            st->fn.vkCreateDebugUtilsMessengerEXT(st->inst, &mci, NULL, &st->messenger);
    }

    uint32_t n_pd = 0;
    r = st->fn.vkEnumeratePhysicalDevices(st->inst, &n_pd, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        st_code = awq_err_set(err, AWQ_ERR_NO_DEVICE, "no Vulkan device: vkEnumeratePhysicalDevices "
                              "failed (%s, %d)", awq_vk_result_name(r), (int)r);
        goto fail;
    }
    if (n_pd == 0) {
        st_code = awq_err_set(err, AWQ_ERR_NO_DEVICE, "no Vulkan device: the loader found no driver "
                              "(ICD) that reports a physical device");
        goto fail;
    }
    VkPhysicalDevice pds[VK_MAX_PHYS];
    if (n_pd > VK_MAX_PHYS)
        n_pd = VK_MAX_PHYS;
    r = st->fn.vkEnumeratePhysicalDevices(st->inst, &n_pd, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        st_code = awq_vk_fail(err, r, "vkEnumeratePhysicalDevices");
        goto fail;
    }
    for (uint32_t i = 0; i < n_pd; i++)
        if (describe(st, pds[i], st->n, &st->phys[st->n]) == 0)
            st->n++;
    if (st->n == 0) {
        st_code = awq_err_set(err, AWQ_ERR_NO_DEVICE, "%u Vulkan device%s found, none with Vulkan 1.1 "
                              "and a compute queue", n_pd, n_pd == 1 ? "" : "s");
        goto fail;
    }
    *state = st;
    return 0;
fail:
    vk_fini(st);
    return st_code;
}

static void vk_fini(void *state)
{
    struct vk_state *st = state;
    if (!st)
        return;
    if (st->messenger && st->fn.vkDestroyDebugUtilsMessengerEXT)
        st->fn.vkDestroyDebugUtilsMessengerEXT(st->inst, st->messenger, NULL);
    if (st->inst && st->fn.vkDestroyInstance)
        st->fn.vkDestroyInstance(st->inst, NULL);
    if (st->lib)
        dlclose(st->lib);
    free(st);
}

static int vk_device_count(void *state)
{
    return ((struct vk_state *)state)->n;
}

static int vk_device_info(void *state, int index, struct awq_device_info *out)
{
    struct vk_state *st = state;
    if (index < 0 || index >= st->n)
        return AWQ_ERR_NO_DEVICE;
    *out = st->phys[index].info;
    return 0;
}

static int vk_preferred_device(void *state)
{
    struct vk_state *st = state;
    int best = 0;
    for (int i = 1; i < st->n; i++) {
        const struct vk_phys *a = &st->phys[i], *b = &st->phys[best];
        if (a->rank < b->rank || (a->rank == b->rank && a->info.memory_bytes > b->info.memory_bytes))
            best = i;
    }
    return best;
}

/* ---- device ------------------------------------------------------------------------------------ */

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    return *end || x == 0 ? dflt : (size_t)x;
}

static uint32_t pow2_floor(uint32_t v)
{
    uint32_t p = 1;
    while (p * 2 <= v)
        p *= 2;
    return p;
}

/* AWQ_VK_TUNE="bm=64,bn=64,tm=4,..." overrides entries of the vendor table (for tuning runs);
 * sizes are then clamped to the device limits. An unknown key or a value that is not a power of
 * two up to 2^20 is an error naming the entry, never silently ignored. */
static int tune_override(struct vk_tune *t, const char *spec, struct awq_errbuf *err)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        { "wg", offsetof(struct vk_tune, wg) },
        { "gemv_wg", offsetof(struct vk_tune, gemv_wg) },
        { "gemv_kt", offsetof(struct vk_tune, gemv_kt) },
        { "bm", offsetof(struct vk_tune, bm) },
        { "bn", offsetof(struct vk_tune, bn) },
        { "bk", offsetof(struct vk_tune, bk) },
        { "tm", offsetof(struct vk_tune, tm) },
        { "tn", offsetof(struct vk_tune, tn) },
        { "attn_bq", offsetof(struct vk_tune, attn_bq) },
        { "attn_bkv", offsetof(struct vk_tune, attn_bkv) },
        { "attn_dc", offsetof(struct vk_tune, attn_dc) },
        { "attn_dv", offsetof(struct vk_tune, attn_dv) },
        { "attn_target_wgs", offsetof(struct vk_tune, attn_target_wgs) },
        { "gemv_threads", offsetof(struct vk_tune, gemv_threads) },
        { "cm_bm", offsetof(struct vk_tune, cm_bm) },
        { "cm_bn", offsetof(struct vk_tune, cm_bn) },
        { "cm_wm", offsetof(struct vk_tune, cm_wm) },
        { "cm_wn", offsetof(struct vk_tune, cm_wn) },
        { "cm_sbn", offsetof(struct vk_tune, cm_sbn) },
        { "cm_swn", offsetof(struct vk_tune, cm_swn) },
        { "cm_min_m", offsetof(struct vk_tune, cm_min_m) },
    };
    while (spec && *spec) {
        const char *end = strchr(spec, ',');
        size_t len = end ? (size_t)(end - spec) : strlen(spec);
        const char *eq = memchr(spec, '=', len);
        int done = 0;
        if (eq) {
            char *stop;
            unsigned long v = strtoul(eq + 1, &stop, 10);
            int pow2 = v && !(v & (v - 1));
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (strlen(keys[i].key) == (size_t)(eq - spec) && !strncmp(spec, keys[i].key, (size_t)(eq - spec)) &&
                    stop == spec + len && pow2 && v <= (1u << 20)) {
                    *(uint32_t *)((char *)t + keys[i].off) = (uint32_t)v;
                    done = 1;
                }
        }
        if (!done)
            return awq_err_set(err, AWQ_ERR_INVALID_ARGUMENT, "AWQ_VK_TUNE: '%.*s' is not KEY=VALUE with a "
                               "known key and a power of two up to 1048576", (int)len, spec);
        spec = end ? end + 1 : NULL;
    }
    return 0;
}

/* Limits, memory types, tile sizes. */
static int choose(struct vk_dev *d)
{
    const struct vk_phys *ph = d->ph;
    const VkPhysicalDeviceLimits *lim = &ph->props.limits;
    size_t range = lim->maxStorageBufferRange;
    if (range > ((size_t)1 << 31))
        range = (size_t)1 << 31;   /* keep byte offsets inside shaders within 32-bit arithmetic */
    d->align = lim->minStorageBufferOffsetAlignment < 4 ? 4 : lim->minStorageBufferOffsetAlignment;
    size_t want = env_size("AWQ_VK_MAX_RANGE", range);
    if (want < range)
        range = want < 4096 ? 4096 : want;
    d->max_range = range & ~(size_t)3;
    for (int i = 0; i < 3; i++)
        d->max_groups[i] = lim->maxComputeWorkGroupCount[i];
    d->shared_max = lim->maxComputeSharedMemorySize;

    /* Mesa's llvmpipe (lavapipe) ends every shader invocation after 65535 loop iterations in
     * total (LP_MAX_TGSI_LOOP_ITERATIONS); ops keep long loops below this budget there. */
    d->loop_cap = ph->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? 40000 : 0;
    d->fast = ph->api >= VK_API_VERSION_1_2 && ph->storage16 && ph->float16 && ph->subgroup_ok &&
              !env_list_has("AWQ_VK_DISABLE", "fast");
    d->subgroup = d->fast ? ph->subgroup_max : 1;
    d->coopmat = d->fast && ph->coopmat_nv && !env_list_has("AWQ_VK_DISABLE", "coopmat");

    d->tune = *awq_vk_tune_for(ph->props.vendorID);
    if (tune_override(&d->tune, getenv("AWQ_VK_TUNE"), d->err) < 0)
        return d->err->code;
    /* shapes the shaders rely on: register tiles in vec4s, a k step that divides every group size */
    struct vk_tune *t = &d->tune;
    t->tm = t->tm < 4 ? 4 : t->tm;
    t->tn = t->tn < 4 ? 4 : t->tn;
    t->bm = t->bm < t->tm ? t->tm : t->bm;
    t->bn = t->bn < t->tn ? t->tn : t->bn;
    t->bn = t->bn < 8 ? 8 : t->bn;
    t->bk = t->bk < 4 ? 4 : (t->bk > 32 ? 32 : t->bk);
    t->wg = t->wg < 64 ? 64 : t->wg;
    t->attn_bq = t->attn_bq > 64 ? 64 : t->attn_bq;
    uint32_t inv = lim->maxComputeWorkGroupInvocations;
    uint32_t lim_wg = inv < lim->maxComputeWorkGroupSize[0] ? inv : lim->maxComputeWorkGroupSize[0];
    lim_wg = pow2_floor(lim_wg);
    d->max_wg = lim_wg;
    if (t->wg > lim_wg)
        t->wg = lim_wg;
    if (t->gemv_wg > lim_wg)
        t->gemv_wg = lim_wg;
    /* A GEMV team spans whole subgroups in the fast variant (its reduction starts with subgroupAdd). */
    if (t->gemv_kt < d->subgroup)
        t->gemv_kt = d->subgroup;
    if (t->gemv_wg < t->gemv_kt)
        t->gemv_wg = t->gemv_kt;
    /* GEMM: threads and shared memory (two padded fp32 tiles) within the device limits */
    while ((t->bm / t->tm) * (t->bn / t->tn) > lim_wg ||
           (size_t)t->bk * 16 * (t->bm / 4 + t->bn / 4 + 2) > d->shared_max) {
        if (t->bm >= t->bn && t->bm > t->tm)
            t->bm /= 2;
        else if (t->bn > t->tn && t->bn > 8)
            t->bn /= 2;
        else
            break;
    }
    /* attention tiles must fit shared memory */
    for (;;) {
        size_t bytes = 4 * ((size_t)t->attn_bq * (t->attn_dc + 1) + (size_t)t->attn_bkv * (t->attn_dc + 1) +
                            (size_t)t->attn_bkv * t->attn_dv + (size_t)t->attn_bq * (t->attn_bkv + 1) +
                            3 * (size_t)t->attn_bq);
        if (bytes + 512 <= d->shared_max || t->attn_dv <= 16)
            break;
        if (t->attn_dv > 64)
            t->attn_dv /= 2;
        else if (t->attn_bkv > 16)
            t->attn_bkv /= 2;
        else if (t->attn_dc > 16)
            t->attn_dc /= 2;
        else
            t->attn_dv /= 2;
    }
    return 0;
}

static int vk_open(void *state, int index, const awq_context_options *opt, struct awq_errbuf *err,
                   void **out)
{
    struct vk_state *st = state;
    *out = NULL;
    if (index < 0 || index >= st->n)
        return awq_err_set(err, AWQ_ERR_NO_DEVICE, "no Vulkan device %d", index);
    struct vk_dev *d = calloc(1, sizeof *d);
    if (!d)
        return awq_err_set(err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
    d->st = st;
    d->ph = &st->phys[index];
    d->err = err;
    d->cur = -1;
    d->msgs_seen = st->sink.count;
    int bad = choose(d);
    if (bad < 0) {
        free(d);
        return bad;
    }

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = d->ph->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .pNext = &f12 };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2 };
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV };
    const char *exts[1];
    uint32_t n_ext = 0;
    if (d->fast) {
        f11.storageBuffer16BitAccess = VK_TRUE;
        f12.shaderFloat16 = VK_TRUE;
        f2.pNext = &f11;
    }
    if (d->coopmat) {
        f12.vulkanMemoryModel = VK_TRUE;
        f12.pNext = &cmf;
        cmf.cooperativeMatrix = VK_TRUE;
        exts[n_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    }
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = st->fn.vkCreateDevice(d->ph->pd, &dci, NULL, &d->dev);
    if (r != VK_SUCCESS) {
        free(d);
        return awq_vk_fail(err, r, "vkCreateDevice");
    }
    int code = 0;
#define LOAD_D(name)                                                                 \
    d->fn.name = (PFN_##name)st->fn.vkGetDeviceProcAddr(d->dev, #name);             \
    if (!d->fn.name) {                                                               \
        code = awq_err_set(err, AWQ_ERR_BACKEND, "Vulkan driver lacks " #name);      \
        goto fail;                                                                   \
    }
    VK_DEVICE_FUNCS(LOAD_D)
#undef LOAD_D
    d->fn.vkGetDeviceQueue(d->dev, d->ph->queue_family, 0, &d->queue);

    if ((code = awq_vk_pipelines_init(d)) < 0 || (code = awq_vk_queue_init(d)) < 0 ||
        (code = awq_vk_memory_init(d)) < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    vk_close(d);
    return code;
}

static void vk_close(void *dev)
{
    struct vk_dev *d = dev;
    if (!d)
        return;
    if (d->dev) {
        if (!d->lost)
            awq_vk_finish(d);
        d->fn.vkDeviceWaitIdle(d->dev);
        awq_vk_collect(d);
        awq_vk_memory_fini(d);
        awq_vk_pipelines_fini(d);
        awq_vk_queue_fini(d);
        awq_vk_collect(d);
        d->fn.vkDestroyDevice(d->dev, NULL);
    }
    free(d->garbage);
    free(d);
}

static int vk_synchronize(void *dev)
{
    struct vk_dev *d = dev;
    VK_TRY(awq_vk_finish(d));
    return awq_vk_check_messages(d);
}

const struct awq_backend_ops awq_backend_vulkan = {
    .name = "vulkan",
    .init = vk_init,
    .fini = vk_fini,
    .device_count = vk_device_count,
    .device_info = vk_device_info,
    .preferred_device = vk_preferred_device,
    .open = vk_open,
    .close = vk_close,
    .synchronize = vk_synchronize,
    .buf_alloc = awq_vk_buf_alloc,
    .buf_free = awq_vk_buf_free,
    .buf_write = awq_vk_buf_write,
    .buf_read = awq_vk_buf_read,
    .buf_copy = awq_vk_buf_copy,
    .buf_zero = awq_vk_buf_zero,
    .w4_create = awq_vk_w4_create,
    .w4_free = awq_vk_w4_free,
    .gemm_w4 = awq_vk_gemm_w4,
    .gemm = awq_vk_gemm,
    .act_stats = awq_vk_act_stats,
    .rmsnorm = awq_vk_rmsnorm,
    .rope = awq_vk_rope,
    .attention = awq_vk_attention,
    .silu_mul = awq_vk_silu_mul,
    .add = awq_vk_add,
    .embed = awq_vk_embed,
    .pseudo_quant = awq_vk_pseudo_quant,
    .clip_search = awq_vk_clip_search,
    .sq_err = awq_vk_sq_err,
    .scale_cols = awq_vk_scale_cols,
    .cross_entropy = awq_vk_cross_entropy,
};
