# Check suites. Every suite links the internal library statically (it reaches private functions).
# Each area keeps its own suites in its own fragment, included at the end.
if HAVE_CHECK
TEST_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
TEST_LDADD = libawq_internal.la $(CHECK_LIBS) $(JANSSON_LIBS) $(PCRE2_LIBS) $(PTHREAD_LIBS) -lm
TESTUTIL = tests/testutil.c tests/testutil.h

check_PROGRAMS += tests/test_quant tests/test_cpu_ops
TESTS += tests/test_quant tests/test_cpu_ops

tests_test_quant_SOURCES = tests/test_quant.c $(TESTUTIL)
tests_test_quant_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_quant_LDADD = $(TEST_LDADD)

tests_test_cpu_ops_SOURCES = tests/test_cpu_ops.c $(TESTUTIL)
tests_test_cpu_ops_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_cpu_ops_LDADD = $(TEST_LDADD)

# Backend parity: one program per GPU-capable backend, each against the CPU reference.
if HAVE_CUDA
check_PROGRAMS += tests/parity_cuda
TESTS += tests/parity_cuda
tests_parity_cuda_SOURCES = tests/parity.c $(TESTUTIL)
tests_parity_cuda_CPPFLAGS = $(TEST_CPPFLAGS) -DPARITY_BACKEND='"cuda"'
tests_parity_cuda_LDADD = $(TEST_LDADD)
endif
if HAVE_OPENCL
check_PROGRAMS += tests/parity_opencl
TESTS += tests/parity_opencl
tests_parity_opencl_SOURCES = tests/parity.c $(TESTUTIL)
tests_parity_opencl_CPPFLAGS = $(TEST_CPPFLAGS) -DPARITY_BACKEND='"opencl"'
tests_parity_opencl_LDADD = $(TEST_LDADD)
endif
if HAVE_VULKAN
check_PROGRAMS += tests/parity_vulkan
TESTS += tests/parity_vulkan
tests_parity_vulkan_SOURCES = tests/parity.c $(TESTUTIL)
tests_parity_vulkan_CPPFLAGS = $(TEST_CPPFLAGS) -DPARITY_BACKEND='"vulkan"'
tests_parity_vulkan_LDADD = $(TEST_LDADD)
endif
endif

include tests/format.mk
include tests/tokenizer.mk
include tests/model.mk
include tests/cli.mk
include tests/backend-cuda.mk
include tests/backend-opencl.mk
include tests/backend-vulkan.mk
