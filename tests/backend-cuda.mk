# CUDA-specific checks beyond the parity suite (tests/test_cuda.c): every gemm_w4 path, determinism
# of the split reductions, wide attention, large quantization groups, errors. Skips without a GPU.
if HAVE_CHECK
if HAVE_CUDA
check_PROGRAMS += tests/test_cuda
TESTS += tests/test_cuda
tests_test_cuda_SOURCES = tests/test_cuda.c $(TESTUTIL)
tests_test_cuda_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_cuda_LDADD = $(TEST_LDADD)
endif
endif
