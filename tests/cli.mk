# Check suites of this area (guard with 'if HAVE_CHECK'; use TEST_CPPFLAGS, TEST_LDADD, TESTUTIL).
