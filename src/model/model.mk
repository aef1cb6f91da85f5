# Models: config, host tensors, the block forward on a device, corpora, the awq_model API; and the
# quantization pipeline (src/quant) and checkpoint writer (src/format/checkpoint.c).
libawq_internal_la_SOURCES += \
	src/util/file.c src/util/file.h \
	src/model/config.c src/model/config.h \
	src/model/hmodel.c src/model/hmodel.h \
	src/model/forward.c src/model/forward.h \
	src/model/corpus.c src/model/corpus.h \
	src/model/model.c \
	src/model/synth.c src/model/synth.h \
	src/quant/awq_layer.c src/quant/awq_layer.h \
	src/quant/quantize.c \
	src/format/checkpoint.c src/format/checkpoint.h
