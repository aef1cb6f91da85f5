/* Shader modules, compute pipelines (created once per shader and specialization, then reused), the
 * per-vendor table of workgroup and tile sizes, and descriptor/pipeline layouts. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

/* Workgroup and tile sizes per vendor. GEMM: (bm/tm)*(bn/tn) threads, each computing a tm x tn
 * register tile; bk is the k step held in shared memory. GEMV: at least gemv_kt threads share
 * one 8-column block and split K among them, more while fewer than gemv_threads would run. Attention: bq queries x bkv keys per tile, dc = head-dim
 * chunk for scores, dv = head-dim slice of the output per workgroup. Tensor cores (NVIDIA's
 * cooperative matrices, the only ones the backend uses; see vk_internal.h): cm_* block shapes and
 * the smallest M they take over from the GEMV. NVIDIA's cm_* values are the H100's best of a sweep
 * (64 x 128 blocks of 4 subgroups: 152 TFLOP/s at M = 4096 against 113 for 128 x 128 of 8;
 * tensor cores from M = 2: 8192 x 28672 at M = 8 in 188 us against 672 us for the GEMV). Mesa
 * (lavapipe) and the default row use small tiles within the 32 KiB shared-memory limit. */
static const struct vk_tune tunes[] = {
    { 0x10DE, "NVIDIA", 256, 256, 32, 128, 128, 16, 8, 8, 16, 32, 64, 128, 528, 131072,
      64, 128, 1, 4, 128, 4, 2 },
    { 0x1002, "AMD", 256, 256, 64, 128, 128, 16, 8, 8, 16, 32, 64, 128, 384, 65536,
      128, 128, 2, 4, 128, 4, 16 },
    { 0x8086, "Intel", 128, 128, 32, 64, 64, 16, 4, 4, 16, 32, 64, 64, 128, 32768,
      128, 128, 2, 4, 128, 4, 16 },
    /* Mesa's lavapipe (CPU threads): kept equal to the default row, which CI's run times rest on */
    { 0x10005, "Mesa", 128, 128, 32, 64, 64, 16, 4, 4, 16, 32, 64, 128, 32, 512,
      128, 128, 2, 4, 128, 4, 16 },
    { 0, "default", 128, 128, 32, 64, 64, 16, 4, 4, 16, 32, 64, 128, 32, 512,
      128, 128, 2, 4, 128, 4, 16 },
};

const struct vk_tune *awq_vk_tune_for(uint32_t vendor)
{
    size_t n = sizeof tunes / sizeof tunes[0];
    for (size_t i = 0; i + 1 < n; i++)
        if (tunes[i].vendor == vendor)
            return &tunes[i];
    return &tunes[n - 1];
}

int awq_vk_pipelines_init(struct vk_dev *d)
{
    VkDescriptorSetLayoutBinding b[VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkPushConstantRange pcr = { VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES };
    for (uint32_t n = 1; n <= VK_MAX_BINDINGS; n++) {
        VkDescriptorSetLayoutCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
            .bindingCount = n,
            .pBindings = b,
        };
        VkResult r = d->fn.vkCreateDescriptorSetLayout(d->dev, &ci, NULL, &d->dsl[n]);
        if (r != VK_SUCCESS)
            return awq_vk_dev_fail(d, r, "vkCreateDescriptorSetLayout");
        VkPipelineLayoutCreateInfo pci = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
            .setLayoutCount = 1,
            .pSetLayouts = &d->dsl[n],
            .pushConstantRangeCount = 1,
            .pPushConstantRanges = &pcr,
        };
        r = d->fn.vkCreatePipelineLayout(d->dev, &pci, NULL, &d->layout[n]);
        if (r != VK_SUCCESS)
            return awq_vk_dev_fail(d, r, "vkCreatePipelineLayout");
    }
    return awq_vk_cache_open(d);
}

void awq_vk_pipelines_fini(struct vk_dev *d)
{
    awq_vk_cache_close(d);
    for (int i = 0; i < d->n_pipes; i++)
        d->fn.vkDestroyPipeline(d->dev, d->pipes[i].pipe, NULL);
    free(d->pipes);
    d->pipes = NULL;
    d->n_pipes = d->cap_pipes = 0;
    for (int i = 0; i < VKS_COUNT; i++)
        if (d->module[i])
            d->fn.vkDestroyShaderModule(d->dev, d->module[i], NULL);
    if (d->pcache)
        d->fn.vkDestroyPipelineCache(d->dev, d->pcache, NULL);
    for (int n = 1; n <= VK_MAX_BINDINGS; n++) {
        if (d->layout[n])
            d->fn.vkDestroyPipelineLayout(d->dev, d->layout[n], NULL);
        if (d->dsl[n])
            d->fn.vkDestroyDescriptorSetLayout(d->dev, d->dsl[n], NULL);
    }
}

static int module_for(struct vk_dev *d, int shader, VkShaderModule *out)
{
    if (!d->module[shader]) {
        const struct vk_spirv *s = &awq_vk_spirv[shader];
        int v = d->fast && s->code[1] ? 1 : 0;
        VkShaderModuleCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
            .codeSize = s->size[v],
            .pCode = s->code[v],
        };
        VkResult r = d->fn.vkCreateShaderModule(d->dev, &ci, NULL, &d->module[shader]);
        if (r != VK_SUCCESS) {
            d->module[shader] = VK_NULL_HANDLE;
            awq_vk_dev_fail(d, r, "vkCreateShaderModule");
            return awq_err_prefix(d->err, "shader %s", s->name);
        }
    }
    *out = d->module[shader];
    return 0;
}

int awq_vk_pipeline(struct vk_dev *d, int shader, const uint32_t *spec, int n_spec, VkPipeline *out)
{
    uint32_t key[VK_MAX_SPEC] = { 0 };
    memcpy(key, spec, (size_t)n_spec * sizeof *spec);
    for (int i = 0; i < d->n_pipes; i++)
        if (d->pipes[i].shader == shader && memcmp(d->pipes[i].spec, key, sizeof key) == 0) {
            *out = d->pipes[i].pipe;
            return 0;
        }
    VkShaderModule mod = VK_NULL_HANDLE;
    VK_TRY(module_for(d, shader, &mod));
    if (d->n_pipes == d->cap_pipes) {
        int cap = d->cap_pipes ? d->cap_pipes * 2 : 32;
        struct vk_pipe *p = realloc(d->pipes, (size_t)cap * sizeof *p);
        if (!p)
            return awq_err_set(d->err, AWQ_ERR_OUT_OF_MEMORY, "out of host memory");
        d->pipes = p;
        d->cap_pipes = cap;
    }
    VkSpecializationMapEntry map[VK_MAX_SPEC];
    for (int i = 0; i < n_spec; i++)
        map[i] = (VkSpecializationMapEntry){ (uint32_t)i, (uint32_t)(4 * i), 4 };
    VkSpecializationInfo si = { (uint32_t)n_spec, map, (size_t)n_spec * 4, key };
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = mod,
            .pName = "main",
            .pSpecializationInfo = n_spec ? &si : NULL,
        },
        .layout = d->layout[awq_vk_spirv[shader].bindings],
    };
    VkPipeline p;
    VkResult r = d->fn.vkCreateComputePipelines(d->dev, d->pcache, 1, &ci, NULL, &p);
    if (r != VK_SUCCESS) {
        awq_vk_dev_fail(d, r, "vkCreateComputePipelines");
        return awq_err_prefix(d->err, "shader %s", awq_vk_spirv[shader].name);
    }
    struct vk_pipe *e = &d->pipes[d->n_pipes++];
    e->shader = shader;
    memcpy(e->spec, key, sizeof key);
    e->pipe = p;
    d->cache_dirty = 1;
    *out = p;
    return 0;
}
