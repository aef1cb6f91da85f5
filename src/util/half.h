/* fp16 and bf16 <-> fp32 conversion: the one place in the library that does it. Round to nearest
 * even on narrowing; NaN stays NaN, overflow becomes infinity, subnormals are kept. */
#ifndef AWQ_UTIL_HALF_H
#define AWQ_UTIL_HALF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

float awq_f16_to_f32(uint16_t h);
uint16_t awq_f32_to_f16(float f);
float awq_bf16_to_f32(uint16_t h);
uint16_t awq_f32_to_bf16(float f);

void awq_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void awq_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
void awq_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);

#ifdef __cplusplus
}
#endif
#endif
