# Safetensors, JSON and config.json.
libawq_internal_la_SOURCES +=
