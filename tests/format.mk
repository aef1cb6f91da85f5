# Check suites of this area (guard with 'if HAVE_CHECK'; use TEST_CPPFLAGS, TEST_LDADD, TESTUTIL).
if HAVE_CHECK
check_PROGRAMS += tests/test_safetensors
TESTS += tests/test_safetensors
tests_test_safetensors_SOURCES = tests/test_safetensors.c $(TESTUTIL)
tests_test_safetensors_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_safetensors_LDADD = $(TEST_LDADD)
endif

# awq info on the real model and on a corrupt file (needs only the awq program).
TESTS += tests/info.test
EXTRA_DIST += tests/info.test tests/fuzz_safetensors.c
