#version 450
#extension GL_GOOGLE_include_directive : require
// Large-M unquantized gemm (W^T) on tensor cores: see gemm_cm.glsl.
#if AWQ_FAST
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif
#include "shader_common.glsl"
#define W4 0
#include "gemm_cm.glsl"
