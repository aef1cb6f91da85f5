# Check suites of the Vulkan backend (parity itself: tests/parity_vulkan in tests.mk).
#   test_vulkan_backend   devices, pipeline cache, errors, buffer lifetime, validation run
#   test_vulkan_variants  the parity suite on the fallback paths (base SPIR-V, staging, 256 KiB range)
#   test_vulkan_large     tensors beyond one storage-buffer binding at the device's real limit
#   test_vulkan_reuse     dispatches recorded once and replayed; buffers freed and reallocated; copy shader
if HAVE_CHECK
if HAVE_VULKAN
check_PROGRAMS += tests/test_vulkan_backend tests/test_vulkan_variants tests/test_vulkan_large \
	tests/test_vulkan_reuse
TESTS += tests/test_vulkan_backend tests/test_vulkan_variants tests/test_vulkan_large \
	tests/test_vulkan_reuse

tests_test_vulkan_backend_SOURCES = tests/test_vulkan_backend.c $(TESTUTIL)
tests_test_vulkan_backend_CPPFLAGS = $(TEST_CPPFLAGS) $(VULKAN_CFLAGS)
tests_test_vulkan_backend_LDADD = $(TEST_LDADD)

tests_test_vulkan_variants_SOURCES = tests/test_vulkan_variants.c $(TESTUTIL)
tests_test_vulkan_variants_CPPFLAGS = $(TEST_CPPFLAGS) -DPARITY_BACKEND='"vulkan"'
tests_test_vulkan_variants_LDADD = $(TEST_LDADD)

tests_test_vulkan_large_SOURCES = tests/test_vulkan_large.c $(TESTUTIL)
tests_test_vulkan_large_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_vulkan_large_LDADD = $(TEST_LDADD)

tests_test_vulkan_reuse_SOURCES = tests/test_vulkan_reuse.c $(TESTUTIL)
tests_test_vulkan_reuse_CPPFLAGS = $(TEST_CPPFLAGS) $(VULKAN_CFLAGS)
tests_test_vulkan_reuse_LDADD = $(TEST_LDADD)
endif
endif
