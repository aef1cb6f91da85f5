# Safetensors, JSON and config.json.
libawq_internal_la_SOURCES += \
	src/format/safetensors.c src/format/safetensors.h \
	src/format/safetensors_write.c
