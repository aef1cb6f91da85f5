# The CUDA backend: host code and kernels in backends/cuda/*.cu (CUDA C++), compiled by nvcc
# through libtool. nvcc rejects the -fPIC that libtool adds, hence the nvcc-lt wrapper. The objects
# go into the internal library with cuBLAS and the static CUDA runtime (CUDA_LIBS, which carries
# -lstdc++), so libawq loads on machines without the NVIDIA driver.
#
# Automake knows the .cu sources (EXTRA_..._SOURCES) only for directory stamps, cleaning and
# distribution; the suffix rule below builds them. Another fragment needing a suffix rule must
# use 'SUFFIXES += ...' after this one.
AWQ_CUDA_SRC = \
	backends/cuda/cuda_backend.cu \
	backends/cuda/cuda_gemm.cu \
	backends/cuda/cuda_w4.cu \
	backends/cuda/cuda_nn.cu \
	backends/cuda/cuda_quant.cu
AWQ_CUDA_HDR = backends/cuda/cuda_internal.h
EXTRA_DIST += $(AWQ_CUDA_SRC) $(AWQ_CUDA_HDR) backends/cuda/nvcc-lt
SUFFIXES = .cu

if HAVE_CUDA
EXTRA_libawq_internal_la_SOURCES = $(AWQ_CUDA_SRC) $(AWQ_CUDA_HDR)
libawq_internal_la_LIBADD += $(AWQ_CUDA_SRC:.cu=.lo) $(CUDA_LIBS)
endif

# -lineinfo costs nothing at run time and lets compute-sanitizer name source lines. Host compiler
# flags go in one --compiler-options word: libtool would take a '-Xcompiler' for itself.
CUDA_NVCCFLAGS = -O3 -std=c++20 -lineinfo $(CUDA_GENCODE) \
	--compiler-options=-fvisibility=hidden,-Wall,-Wextra

AM_V_NVCC = $(am__v_NVCC_@AM_V@)
am__v_NVCC_ = $(am__v_NVCC_@AM_DEFAULT_V@)
am__v_NVCC_0 = @echo "  NVCC    " $@;
am__v_NVCC_1 =

.cu.lo:
	$(AM_V_NVCC)$(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) $(LIBTOOLFLAGS) --mode=compile \
	$(SHELL) $(srcdir)/backends/cuda/nvcc-lt $(NVCC) $(DEFS) $(DEFAULT_INCLUDES) $(INCLUDES) \
	$(AM_CPPFLAGS) $(CPPFLAGS) $(CUDA_CPPFLAGS) $(CUDA_NVCCFLAGS) $(NVCCFLAGS) -c -o $@ $<

# nvcc runs without dependency tracking: every object depends on the shared headers.
backends/cuda/cuda_backend.lo backends/cuda/cuda_gemm.lo backends/cuda/cuda_w4.lo \
backends/cuda/cuda_nn.lo backends/cuda/cuda_quant.lo: $(AWQ_CUDA_HDR) src/backend.h src/util/error.h \
	include/awq.h config.h
