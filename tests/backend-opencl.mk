# Check suites of the OpenCL backend (the parity suite itself is in tests.mk). Each opens its
# devices without forking (PoCL, CI-NOTES item 9) and exits 77 without an OpenCL device.
if HAVE_CHECK
if HAVE_OPENCL
check_PROGRAMS += tests/test_opencl_cache tests/test_opencl_errors tests/test_opencl_noplatform \
	tests/test_opencl_rows
TESTS += tests/test_opencl_cache tests/test_opencl_errors tests/test_opencl_noplatform \
	tests/test_opencl_rows

tests_test_opencl_cache_SOURCES = tests/test_opencl_cache.c $(TESTUTIL)
tests_test_opencl_cache_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_opencl_cache_LDADD = $(TEST_LDADD)

# reaches the backend's internals (program builds, device limits)
tests_test_opencl_errors_SOURCES = tests/test_opencl_errors.c $(TESTUTIL)
tests_test_opencl_errors_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir) $(OPENCL_CFLAGS)
tests_test_opencl_errors_LDADD = $(TEST_LDADD)

tests_test_opencl_noplatform_SOURCES = tests/test_opencl_noplatform.c $(TESTUTIL)
tests_test_opencl_noplatform_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_opencl_noplatform_LDADD = $(TEST_LDADD)

# runs tests/parity_opencl once per row of the kernel parameter table
tests_test_opencl_rows_SOURCES = tests/test_opencl_rows.c
tests_test_opencl_rows_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_opencl_rows_LDADD =
EXTRA_tests_test_opencl_rows_DEPENDENCIES = tests/parity_opencl$(EXEEXT)
endif
endif
