# Check suites of this area (guard with 'if HAVE_CHECK'; use TEST_CPPFLAGS, TEST_LDADD, TESTUTIL).
if HAVE_CHECK
check_PROGRAMS += tests/test_tokenizer
TESTS += tests/test_tokenizer
tests_test_tokenizer_SOURCES = tests/test_tokenizer.c $(TESTUTIL)
tests_test_tokenizer_CPPFLAGS = $(TEST_CPPFLAGS) $(JANSSON_CFLAGS) $(PCRE2_CFLAGS) -DAWQ_TOP_SRCDIR='"$(abs_top_srcdir)"'
tests_test_tokenizer_LDADD = $(TEST_LDADD)
endif
# Fixtures (hand-made, NFC vectors) and the directories where the vectors of the real tokenizers
# library go (tests/data/make_tokenizer_vectors.py); listed as directories so that whatever they
# hold is distributed.
EXTRA_DIST += tests/data/make_tiny_tokenizers.py tests/data/make_nfc_vectors.py \
	tests/data/make_tokenizer_vectors.py tests/data/tokenizer-corpus.txt tests/data/nfc-vectors.txt \
	tests/data/tokenizer-tiny-bytelevel tests/data/tokenizer-tiny-gpt2 tests/data/tokenizer-tiny-sp \
	tests/data/tokenizer-bytelevel tests/data/tokenizer-gpt2 tests/data/tokenizer-qwen2 \
	tests/data/tokenizer-sp tests/data/tokenizer-sp-metaspace \
	tests/fuzz_tokenizer.c
