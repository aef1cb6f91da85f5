#version 450
#extension GL_GOOGLE_include_directive : require
// Large-M gemm_w4: the tiled kernel of gemm_tiled.glsl with B = the dequantized 4-bit weight
// (dequantized into shared memory one BK x BN tile at a time; BK divides the group size).
#include "shader_common.glsl"
#define W4 1
#include "gemm_tiled.glsl"
