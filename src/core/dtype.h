#ifndef AWQ_CORE_DTYPE_H
#define AWQ_CORE_DTYPE_H
#include "awq.h"
/* Safetensors dtype name ("F32") to awq_dtype; -1 when unknown. */
int awq_dtype_from_name(const char *name, awq_dtype *out);
#endif
