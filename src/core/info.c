/* Version, build information and dtype facts. */
#include "config.h"

#include <string.h>

#include "awq.h"
#include "core/dtype.h"

AWQ_API const char *awq_version(void)
{
    return AWQ_VERSION_STRING;
}

AWQ_API int awq_version_number(void)
{
    return AWQ_VERSION_NUMBER;
}

AWQ_API const char *awq_build_info(void)
{
    return "cpu"
#ifdef AWQ_HAVE_CUDA
           " cuda"
#endif
#ifdef AWQ_HAVE_OPENCL
           " opencl"
#endif
#ifdef AWQ_HAVE_VULKAN
           " vulkan"
#endif
        ;
}

static const struct {
    const char *name;
    size_t size;
} dtypes[AWQ_DTYPE_COUNT] = {
    [AWQ_DTYPE_F32] = { "F32", 4 },  [AWQ_DTYPE_F16] = { "F16", 2 },
    [AWQ_DTYPE_BF16] = { "BF16", 2 }, [AWQ_DTYPE_I32] = { "I32", 4 },
    [AWQ_DTYPE_I64] = { "I64", 8 },  [AWQ_DTYPE_U8] = { "U8", 1 },
    [AWQ_DTYPE_I8] = { "I8", 1 },    [AWQ_DTYPE_I16] = { "I16", 2 },
    [AWQ_DTYPE_F64] = { "F64", 8 },  [AWQ_DTYPE_BOOL] = { "BOOL", 1 },
};

AWQ_API size_t awq_dtype_size(awq_dtype t)
{
    return (unsigned)t < AWQ_DTYPE_COUNT ? dtypes[t].size : 0;
}

AWQ_API const char *awq_dtype_name(awq_dtype t)
{
    return (unsigned)t < AWQ_DTYPE_COUNT ? dtypes[t].name : NULL;
}

int awq_dtype_from_name(const char *name, awq_dtype *out)
{
    for (int i = 0; i < AWQ_DTYPE_COUNT; i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            *out = (awq_dtype)i;
            return 0;
        }
    return -1;
}
