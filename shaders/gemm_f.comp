#version 450
#extension GL_GOOGLE_include_directive : require
// Unquantized gemm (Y = X * W^T, W [N, K] fp32 or fp16): the tiled kernel of gemm_tiled.glsl.
#include "shader_common.glsl"
#define W4 0
#include "gemm_tiled.glsl"
