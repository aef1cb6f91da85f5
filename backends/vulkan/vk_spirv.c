/* The SPIR-V of the compute shaders in shaders/, embedded: each shader in two variants (see
 * shader_common.glsl), generated at build time by glslangValidator and `xxd -i` (backends/vulkan/vulkan.mk). */
#include "config.h"

#include "vk_internal.h"

static _Alignas(4) const unsigned char gemv_w4_base[] = {
#include "../../shaders/gemv_w4.base.spv.h"
};
static _Alignas(4) const unsigned char gemv_w4_fast[] = {
#include "../../shaders/gemv_w4.fast.spv.h"
};
static _Alignas(4) const unsigned char gemm_w4_base[] = {
#include "../../shaders/gemm_w4.base.spv.h"
};
static _Alignas(4) const unsigned char gemm_w4_fast[] = {
#include "../../shaders/gemm_w4.fast.spv.h"
};
static _Alignas(4) const unsigned char gemv_f_base[] = {
#include "../../shaders/gemv_f.base.spv.h"
};
static _Alignas(4) const unsigned char gemv_f_fast[] = {
#include "../../shaders/gemv_f.fast.spv.h"
};
static _Alignas(4) const unsigned char gemm_f_base[] = {
#include "../../shaders/gemm_f.base.spv.h"
};
static _Alignas(4) const unsigned char gemm_f_fast[] = {
#include "../../shaders/gemm_f.fast.spv.h"
};
static _Alignas(4) const unsigned char act_stats_base[] = {
#include "../../shaders/act_stats.base.spv.h"
};
static _Alignas(4) const unsigned char act_stats_fast[] = {
#include "../../shaders/act_stats.fast.spv.h"
};
static _Alignas(4) const unsigned char rmsnorm_base[] = {
#include "../../shaders/rmsnorm.base.spv.h"
};
static _Alignas(4) const unsigned char rmsnorm_fast[] = {
#include "../../shaders/rmsnorm.fast.spv.h"
};
static _Alignas(4) const unsigned char rope_base[] = {
#include "../../shaders/rope.base.spv.h"
};
static _Alignas(4) const unsigned char rope_fast[] = {
#include "../../shaders/rope.fast.spv.h"
};
static _Alignas(4) const unsigned char attention_base[] = {
#include "../../shaders/attention.base.spv.h"
};
static _Alignas(4) const unsigned char attention_fast[] = {
#include "../../shaders/attention.fast.spv.h"
};
static _Alignas(4) const unsigned char attn_combine_base[] = {
#include "../../shaders/attn_combine.base.spv.h"
};
static _Alignas(4) const unsigned char attn_combine_fast[] = {
#include "../../shaders/attn_combine.fast.spv.h"
};
static _Alignas(4) const unsigned char eltwise_base[] = {
#include "../../shaders/eltwise.base.spv.h"
};
static _Alignas(4) const unsigned char eltwise_fast[] = {
#include "../../shaders/eltwise.fast.spv.h"
};
static _Alignas(4) const unsigned char embed_base[] = {
#include "../../shaders/embed.base.spv.h"
};
static _Alignas(4) const unsigned char embed_fast[] = {
#include "../../shaders/embed.fast.spv.h"
};
static _Alignas(4) const unsigned char cross_entropy_base[] = {
#include "../../shaders/cross_entropy.base.spv.h"
};
static _Alignas(4) const unsigned char cross_entropy_fast[] = {
#include "../../shaders/cross_entropy.fast.spv.h"
};
static _Alignas(4) const unsigned char pseudo_quant_base[] = {
#include "../../shaders/pseudo_quant.base.spv.h"
};
static _Alignas(4) const unsigned char pseudo_quant_fast[] = {
#include "../../shaders/pseudo_quant.fast.spv.h"
};
static _Alignas(4) const unsigned char clip_search_base[] = {
#include "../../shaders/clip_search.base.spv.h"
};
static _Alignas(4) const unsigned char clip_search_fast[] = {
#include "../../shaders/clip_search.fast.spv.h"
};
static _Alignas(4) const unsigned char sq_err_base[] = {
#include "../../shaders/sq_err.base.spv.h"
};
static _Alignas(4) const unsigned char sq_err_fast[] = {
#include "../../shaders/sq_err.fast.spv.h"
};

static _Alignas(4) const unsigned char gemm_w4_cm_base[] = {
#include "../../shaders/gemm_w4_cm.base.spv.h"
};
static _Alignas(4) const unsigned char gemm_w4_cm_fast[] = {
#include "../../shaders/gemm_w4_cm.fast.spv.h"
};
static _Alignas(4) const unsigned char gemm_f_cm_base[] = {
#include "../../shaders/gemm_f_cm.base.spv.h"
};
static _Alignas(4) const unsigned char gemm_f_cm_fast[] = {
#include "../../shaders/gemm_f_cm.fast.spv.h"
};
static _Alignas(4) const unsigned char copy_base[] = {
#include "../../shaders/copy.base.spv.h"
};
static _Alignas(4) const unsigned char copy_fast[] = {
#include "../../shaders/copy.fast.spv.h"
};
#define S(id, name, n, w) \
    [id] = { #name, { (const uint32_t *)name##_base, (const uint32_t *)name##_fast }, \
             { sizeof name##_base, sizeof name##_fast }, n, w }

const struct vk_spirv awq_vk_spirv[VKS_COUNT] = {
    S(VKS_GEMV_W4, gemv_w4, 7, 0x2),
    S(VKS_GEMM_W4, gemm_w4, 7, 0x2),
    S(VKS_GEMV_F, gemv_f, 4, 0x4),
    S(VKS_GEMM_F, gemm_f, 4, 0x2),
    S(VKS_ACT_STATS, act_stats, 5, 0x1e),
    S(VKS_RMSNORM, rmsnorm, 3, 0x5),
    S(VKS_ROPE, rope, 2, 0x1),
    S(VKS_ATTENTION, attention, 5, 0x18),
    S(VKS_ATTN_COMBINE, attn_combine, 2, 0x2),
    S(VKS_ELTWISE, eltwise, 3, 0x7),
    S(VKS_EMBED, embed, 3, 0x4),
    S(VKS_CROSS_ENTROPY, cross_entropy, 3, 0x4),
    S(VKS_PSEUDO_QUANT, pseudo_quant, 3, 0x5),
    S(VKS_CLIP_SEARCH, clip_search, 3, 0x4),
    S(VKS_SQ_ERR, sq_err, 4, 0xc),
    S(VKS_GEMM_W4_CM, gemm_w4_cm, 8, 0x82),
    S(VKS_GEMM_F_CM, gemm_f_cm, 5, 0x12),
    S(VKS_COPY, copy, 2, 0x2),
};
