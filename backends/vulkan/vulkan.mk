# The Vulkan compute backend (issue 5): host code in C against the Vulkan API (the loader is
# opened at run time), GLSL compute shaders in shaders/*.comp compiled to SPIR-V at build time
# and embedded. The generated SPIR-V headers live in $(srcdir)/shaders and ship in the release
# tarball together with shaders/spirv.stamp, so a tarball builds without glslangValidator.

VK_COMP = \
	shaders/gemv_w4.comp shaders/gemm_w4.comp shaders/gemv_f.comp shaders/gemm_f.comp \
	shaders/act_stats.comp shaders/rmsnorm.comp shaders/rope.comp shaders/attention.comp \
	shaders/attn_combine.comp shaders/eltwise.comp shaders/embed.comp shaders/cross_entropy.comp \
	shaders/pseudo_quant.comp shaders/clip_search.comp shaders/sq_err.comp \
	shaders/gemm_w4_cm.comp shaders/gemm_f_cm.comp shaders/copy.comp
VK_GLSL_INC = backends/vulkan/shader_common.glsl backends/vulkan/gemm_tiled.glsl \
	backends/vulkan/gemm_cm.glsl
VK_SPV_H = \
	shaders/gemv_w4.base.spv.h shaders/gemv_w4.fast.spv.h \
	shaders/gemm_w4.base.spv.h shaders/gemm_w4.fast.spv.h \
	shaders/gemv_f.base.spv.h shaders/gemv_f.fast.spv.h \
	shaders/gemm_f.base.spv.h shaders/gemm_f.fast.spv.h \
	shaders/act_stats.base.spv.h shaders/act_stats.fast.spv.h \
	shaders/rmsnorm.base.spv.h shaders/rmsnorm.fast.spv.h \
	shaders/rope.base.spv.h shaders/rope.fast.spv.h \
	shaders/attention.base.spv.h shaders/attention.fast.spv.h \
	shaders/attn_combine.base.spv.h shaders/attn_combine.fast.spv.h \
	shaders/eltwise.base.spv.h shaders/eltwise.fast.spv.h \
	shaders/embed.base.spv.h shaders/embed.fast.spv.h \
	shaders/cross_entropy.base.spv.h shaders/cross_entropy.fast.spv.h \
	shaders/pseudo_quant.base.spv.h shaders/pseudo_quant.fast.spv.h \
	shaders/clip_search.base.spv.h shaders/clip_search.fast.spv.h \
	shaders/sq_err.base.spv.h shaders/sq_err.fast.spv.h \
	shaders/gemm_w4_cm.base.spv.h shaders/gemm_w4_cm.fast.spv.h \
	shaders/gemm_f_cm.base.spv.h shaders/gemm_f_cm.fast.spv.h \
	shaders/copy.base.spv.h shaders/copy.fast.spv.h

EXTRA_DIST += $(VK_COMP) $(VK_GLSL_INC) backends/vulkan/gen-spirv.sh $(VK_SPV_H) shaders/spirv.stamp
MAINTAINERCLEANFILES = $(VK_SPV_H) $(VK_SPV_H:.h=) shaders/spirv.stamp

if HAVE_VULKAN
libawq_internal_la_SOURCES += \
	backends/vulkan/vk_internal.h \
	backends/vulkan/vk_backend.c \
	backends/vulkan/vk_error.c \
	backends/vulkan/vk_queue.c \
	backends/vulkan/vk_memory.c \
	backends/vulkan/vk_pipeline.c \
	backends/vulkan/vk_cache.c \
	backends/vulkan/vk_spirv.c \
	backends/vulkan/vk_gemm.c \
	backends/vulkan/vk_nn.c \
	backends/vulkan/vk_quant.c
libawq_internal_la_CFLAGS += $(VULKAN_CFLAGS)
# The loader is dlopen()ed by vk_backend.c (libawq must run where Vulkan is absent), so only the
# headers come from $(VULKAN_CFLAGS); configure already links the dl library.
BUILT_SOURCES += $(srcdir)/shaders/spirv.stamp
endif

# All SPIR-V is regenerated when any shader or shared GLSL changes. The stamp is created before the
# headers and renamed into place after them, so the headers are never older than the stamp.
if HAVE_GLSLANG
$(srcdir)/shaders/spirv.stamp: $(VK_COMP) $(VK_GLSL_INC) backends/vulkan/gen-spirv.sh
	@rm -f shaders-spirv.tmp && touch shaders-spirv.tmp
	$(AM_V_GEN)$(SHELL) $(srcdir)/backends/vulkan/gen-spirv.sh '$(GLSLANG)' '$(XXD)' '$(srcdir)' $(VK_COMP)
	@mv -f shaders-spirv.tmp $@
else
$(srcdir)/shaders/spirv.stamp: $(VK_COMP) $(VK_GLSL_INC) backends/vulkan/gen-spirv.sh
	@echo "error: a shader changed but glslangValidator was not found at configure time" >&2; \
	echo "       (install glslang-tools and re-run configure)" >&2; exit 1
endif
$(VK_SPV_H): $(srcdir)/shaders/spirv.stamp
	@test -f $@ || test -f $(srcdir)/$@ || { \
	  rm -f $(srcdir)/shaders/spirv.stamp; $(MAKE) $(AM_MAKEFLAGS) $(srcdir)/shaders/spirv.stamp; }
CLEANFILES += shaders-spirv.tmp
