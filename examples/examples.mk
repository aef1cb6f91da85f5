# Example programs: they use only the installed public header and the shared library.
noinst_PROGRAMS += examples/awq-example
examples_awq_example_SOURCES = examples/awq_example.c
examples_awq_example_CPPFLAGS = -I$(top_srcdir)/include
examples_awq_example_LDADD = libawq.la -lm
