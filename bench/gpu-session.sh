#!/bin/bash
# The GPU machine's part of libawq's verification and benchmarks (run from the project root on a
# machine prepared with ../shared/device/prepare; logs go to $OUT). Each step is guarded by a time
# limit and logs to its own file; `steps` chooses what runs:
#   build verify parity sanitize tokvec bench pipeline speed
# Example: bench/gpu-session.sh build parity bench
set -u
OUT=${OUT:-/tmp/awq-gpu}
mkdir -p "$OUT"
data=${AWQ_TEST_DATA:-$PWD/shared}
export AWQ_TEST_DATA=$data
log() { echo "== $* ($(date +%T))"; }
summary() { grep -hE '^[0-9]+%: Checks|SKIP|ERROR SUMMARY|perplexity|FAIL' "$@" 2>/dev/null | head -40; }

for step in "$@"; do
  case $step in
  build)
    log build
    source .device/setup.sh >"$OUT/setup.log" 2>&1
    autoreconf -fi >/dev/null 2>&1 && ./configure CUDA_ARCHS=90 ${CONFIGURE_FLAGS:-} >"$OUT/configure.log" 2>&1 &&
      make -j16 >"$OUT/build.log" 2>&1 && make -j16 check TESTS= \
        >>"$OUT/build.log" 2>&1
    rc=$?; tail -12 "$OUT/configure.log"; [ $rc = 0 ] || { tail -30 "$OUT/build.log"; exit 1; }
    ./awq devices | tee "$OUT/devices.log" ;;
  parity)
    for b in cuda opencl vulkan; do
      [ -x tests/parity_$b ] || continue
      log parity $b
      AWQ_PARITY_LARGE=1 timeout 400 tests/parity_$b >"$OUT/parity_$b.log" 2>&1; echo "exit $?" >>"$OUT/parity_$b.log"
      grep -E 'device under test|%: Checks|nmse|Failure|exit' "$OUT/parity_$b.log" | head -12
    done
    [ -x tests/test_cuda ] && { timeout 200 tests/test_cuda >"$OUT/test_cuda.log" 2>&1; summary "$OUT/test_cuda.log"; } ;;
  verify)
    # every GPU test, one lane per backend running side by side (correctness only; no timings)
    lane() {
      b=$1; shift
      { AWQ_PARITY_LARGE=1 timeout 300 tests/parity_$b; echo "exit $?"; } >"$OUT/parity_$b.log" 2>&1
      for t in "$@"; do { timeout 300 tests/$t; echo "exit $?"; } >"$OUT/$t.log" 2>&1; done
      q=/tmp/q32-$b
      { timeout 300 ./awq quantize "$data/models/stories260K" --calib "$data/data/tinystories-calib.txt" \
          --group-size 32 --out $q --backend $b -q --json >"$OUT/quant_$b.json" &&
        timeout 200 ./awq ppl $q "$data/data/tinystories-eval.txt" --backend $b -q &&
        timeout 200 ./awq ppl $q "$data/data/tinystories-eval.txt" --backend cpu -q &&
        timeout 200 ./awq ppl "$data/models/stories260K" "$data/data/tinystories-eval.txt" --backend $b -q &&
        timeout 60 ./awq run "$data/models/stories260K" -p "Once upon a time" -n 40 --backend $b; } \
        >"$OUT/pipeline_$b.log" 2>&1
    }
    log verify
    lane cuda test_cuda &
    lane opencl test_opencl_cache test_opencl_errors test_opencl_ops test_opencl_rows &
    lane vulkan test_vulkan_backend test_vulkan_large test_vulkan_reuse test_vulkan_variants &
    wait
    log verify done
    for f in "$OUT"/parity_*.log "$OUT"/test_*.log; do
      echo "-- ${f##*/}: $(grep -hE '^[0-9]+%: Checks|^SKIP' "$f" | head -1) $(tail -1 "$f")"
    done
    for b in cuda opencl vulkan; do echo "-- pipeline $b"; cat "$OUT/pipeline_$b.log"; done
    (cd "$OUT" && tar czf logs.tar.gz *.log *.json && rm -f parity_*.log test_*.log pipeline_*.log quant_*.json) ;;
  sanitize)
    log compute-sanitizer
    for tool in memcheck racecheck; do
      timeout 300 /usr/local/cuda/bin/compute-sanitizer --tool $tool tests/parity_cuda >"$OUT/sanitize_$tool.log" 2>&1
      grep -E 'ERROR SUMMARY|%: Checks' "$OUT/sanitize_$tool.log"
    done ;;
  tokvec)
    log tokenizer vectors
    PYTHONUNBUFFERED=1 timeout 200 python3 tests/data/make_tokenizer_vectors.py "$OUT/tok" \
      --sp-dir "$data/models/stories260K" >"$OUT/tokvec.log" 2>&1; tail -3 "$OUT/tokvec.log"
    (cd "$OUT" && tar czf tokvec.tar.gz tok && rm -rf tok) ;;
  bench)
    log bench
    timeout ${BENCH_TIMEOUT:-500} ./awq bench ${BENCH_ARGS:-} >"$OUT/bench.md" 2>"$OUT/bench.err"; cat "$OUT/bench.md" ;;
  pipeline)
    for b in cuda opencl vulkan cpu; do
      log pipeline $b
      q=/tmp/q32-$b
      timeout 300 ./awq quantize "$data/models/stories260K" --calib "$data/data/tinystories-calib.txt" \
        --group-size 32 --out $q --backend $b -q --json >"$OUT/quant_$b.json" 2>"$OUT/quant_$b.err"
      tail -2 "$OUT/quant_$b.err"
      timeout 200 ./awq ppl $q "$data/data/tinystories-eval.txt" --backend $b -q
      [ $b = cpu ] || timeout 200 ./awq ppl "$data/models/stories260K" "$data/data/tinystories-eval.txt" --backend $b -q
      [ $b = cpu ] || timeout 60 ./awq run "$data/models/stories260K" -p "Once upon a time" -n 40 --backend $b
    done 2>&1 | tee "$OUT/pipeline.log" ;;
  speed)
    log speed: Llama-2-7B shape, random weights, 128 x 512 calibration tokens
    m=/tmp/llama7b-shape
    ./awq demo --save $m --layers 32 --hidden 4096 --intermediate 11008 --heads 32 --vocab 32000 >/dev/null &&
      /usr/bin/time -v ./awq quantize $m --calib $m/calib-ids.txt --out /tmp/llama7b-awq --backend cuda \
        >"$OUT/speed.log" 2>&1
    tail -45 "$OUT/speed.log" ;;
  esac
done
