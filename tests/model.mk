# Models and the AWQ pipeline (test data through AWQ_TEST_DATA).
if HAVE_CHECK
check_PROGRAMS += tests/test_model
TESTS += tests/test_model
tests_test_model_SOURCES = tests/test_model.c $(TESTUTIL)
tests_test_model_CPPFLAGS = $(TEST_CPPFLAGS)
tests_test_model_LDADD = $(TEST_LDADD)
endif

# The pipeline agrees across backends (skips without a non-CPU device or AWQ_TEST_DATA).
if HAVE_CHECK
check_PROGRAMS += tests/test_backend_pipeline
TESTS += tests/test_backend_pipeline
tests_test_backend_pipeline_SOURCES = tests/test_backend_pipeline.c $(TESTUTIL)
tests_test_backend_pipeline_CPPFLAGS = $(TEST_CPPFLAGS) $(JANSSON_CFLAGS)
tests_test_backend_pipeline_LDADD = $(TEST_LDADD)
endif
