# The CPU backend: always built; the reference for all other backends.
libawq_internal_la_SOURCES += \
	backends/cpu/cpu_backend.c backends/cpu/cpu_internal.h \
	backends/cpu/cpu_pool.c backends/cpu/cpu_pool.h backends/cpu/cpu_simd.h \
	backends/cpu/cpu_gemm.c \
	backends/cpu/cpu_nn.c \
	backends/cpu/cpu_quant.c
