#!/bin/sh
# Compiles GLSL compute shaders to SPIR-V and embeds them as C array bodies.
# usage: gen-spirv.sh GLSLANG XXD SRCDIR shaders/NAME.comp...
# For each shader, two variants (AWQ_FAST=0 "base", AWQ_FAST=1 "fast"; see
# backends/vulkan/shader_common.glsl) become SRCDIR/shaders/NAME.VARIANT.spv and, through
# `xxd -i < file` (no array name, so the output does not depend on the path), NAME.VARIANT.spv.h.
# A header whose contents did not change keeps its timestamp.
set -e
glslang=$1
xxd=$2
srcdir=$3
shift 3
for comp in "$@"; do
    name=`basename "$comp" .comp`
    for variant in base fast; do
        if test $variant = fast; then fast=1; else fast=0; fi
        spv="$srcdir/shaders/$name.$variant.spv"
        if ! log=`"$glslang" -V --target-env vulkan1.1 -DAWQ_FAST=$fast -I"$srcdir/backends/vulkan" \
                 -o "$spv.tmp" "$srcdir/$comp" 2>&1`; then
            echo "$log" >&2
            rm -f "$spv.tmp"
            exit 1
        fi
        mv -f "$spv.tmp" "$spv"
        "$xxd" -i < "$spv" > "$spv.h.tmp"
        if cmp -s "$spv.h.tmp" "$spv.h"; then
            rm -f "$spv.h.tmp"
        else
            mv -f "$spv.h.tmp" "$spv.h"
        fi
    done
done
