# The OpenCL backend: host code against the OpenCL 1.2 API (through the ICD loader) and the
# OpenCL C kernels of shaders/*.cl, embedded as NUL-terminated strings and compiled at run time.
OPENCL_CL_FILES = \
	shaders/common.cl \
	shaders/gemm_w4.cl \
	shaders/gemm.cl \
	shaders/nn.cl \
	shaders/quant.cl \
	shaders/attention.cl
EXTRA_DIST += $(OPENCL_CL_FILES)

if HAVE_OPENCL
libawq_internal_la_SOURCES += \
	backends/opencl/ocl_internal.h \
	backends/opencl/ocl_backend.c \
	backends/opencl/ocl_params.c \
	backends/opencl/ocl_program.c \
	backends/opencl/ocl_gemm.c \
	backends/opencl/ocl_ops.c
nodist_libawq_internal_la_SOURCES = backends/opencl/ocl_kernels.h
libawq_internal_la_CFLAGS += $(OPENCL_CFLAGS)
libawq_internal_la_LIBADD += $(OPENCL_LIBS)
BUILT_SOURCES += backends/opencl/ocl_kernels.h
CLEANFILES += backends/opencl/ocl_kernels.h

# One array per kernel file, ocl_src_<name>, each ending in a NUL. `xxd -i < file` keeps the
# array name independent of the path (which differs in a VPATH build such as make distcheck).
backends/opencl/ocl_kernels.h: $(OPENCL_CL_FILES) $(srcdir)/backends/opencl/opencl.mk
	$(AM_V_GEN)$(MKDIR_P) backends/opencl && \
	{ echo "/* Generated from the OpenCL kernel files by backends/opencl/opencl.mk; do not edit. */"; \
	  for f in $(OPENCL_CL_FILES); do \
	    n=`basename $$f .cl`; \
	    echo "static const char ocl_src_$${n}[] = {"; \
	    $(XXD) -i < $(srcdir)/$$f || exit 1; \
	    echo ", 0x00 };"; \
	  done; } > $@-t && mv $@-t $@
endif
