#!/usr/bin/env bash
# The way to validate a GPU machine for ogpsa's CUDA backend. Builds the backend's tests and
# benchmarks with every core, runs the `gpu` tests one source file per process (under
# compute-sanitizer's memcheck when present), then the benchmarks that carry the speed targets
# (copy roofline, flat and matrix-side projection, whole model), the published procedure with
# PyTorch, and the estimators against cuSOLVER's gesvd/gesvdj. $OUT/summary.md is rewritten after
# every step, so a run that is cut short still reports what finished.
#
#   bash bench/cuda/stage_gpu_deps.sh                  # on the development machine, once per checkout
#   OUT=<results folder> bash bench/cuda/run_on_gpu.sh # on the GPU machine
#   OUT=<folder> bash bench/cuda/run_on_gpu.sh --build-only   # configure and build only (no GPU needed)
#
# When the working tree (with .gpu-deps/) is copied to the GPU machine and $OUT names a folder
# that comes back, the command is `bash bench/cuda/run_on_gpu.sh`; the default limits below fit in
# 600 s. A second run on the same machine finds the build done and only runs.
#
# The build is limited apart from the rest and its time printed. Limits, in seconds, from the
# environment: OGPSA_GPU_BUILD_TIMEOUT (configure and build, 270), OGPSA_GPU_BUDGET (every step
# after the build together, 300), OGPSA_GPU_TEST_BUDGET (the gpu tests, 150) and
# OGPSA_GPU_GROUP_TIMEOUT (one test group, 90); each benchmark step also has a cap of its own.
# OGPSA_GPU_SANITIZER=0 runs the tests without compute-sanitizer. OGPSA_GPU_WERROR=ON makes warnings
# errors; it is off by default because this machine's compilers may warn where the development
# machine's do not (the summary counts the warnings instead).
#
# Exits non-zero, with a line in summary.md that says why, when the build fails, when any test
# fails, is skipped or does not run, or when a step fails or runs out of time. Missed speed
# targets are reported in the summary, not in the exit status.
#
# Writes to $OUT: gpu.log (everything printed), build.log, steps.tsv (each step's status and
# time), tests-host.json and tests-gpu.json (run_test_groups.py), bench-<step>.json (Google
# Benchmark), published.json (the PyTorch peer) and summary.md (summarize.py).
#
# Needs nvcc, cmake and python3 (torch with CUDA for the published procedure, which is skipped
# with a note without it; ninja is used when present); Eigen, doctest and Google Benchmark come
# from .gpu-deps/. For checks on the development machine (check_staged_deps.sh): OGPSA_GPU_DEPS
# (the staged prefix), OGPSA_GPU_BUILD (the build folder), OGPSA_GPU_TARGETS, OGPSA_GPU_JOBS and
# OGPSA_GPU_CMAKE_ARGS (more configure arguments, split at spaces).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/bench/cuda"
cd "$root"
out="${OUT:?set OUT to the folder that receives the results}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee "$out/gpu.log") 2>&1
tee_pid=$!
trap 'exec >&- 2>&-; wait "$tee_pid" || true' EXIT  # the log is complete when the script ends

build_only=0
[[ "${1:-}" == "--build-only" ]] && build_only=1
build_limit="${OGPSA_GPU_BUILD_TIMEOUT:-270}"
budget="${OGPSA_GPU_BUDGET:-300}"
test_budget="${OGPSA_GPU_TEST_BUDGET:-150}"
group_timeout="${OGPSA_GPU_GROUP_TIMEOUT:-90}"
deps="${OGPSA_GPU_DEPS:-$root/.gpu-deps/usr}"
build="${OGPSA_GPU_BUILD:-$root/build/gpu}"
read -ra targets <<< "${OGPSA_GPU_TARGETS:-ogpsa_cuda_tests ogpsa_cuda_host_tests ogpsa_cuda_bench}"
read -ra extra_args <<< "${OGPSA_GPU_CMAKE_ARGS:-}"
jobs="${OGPSA_GPU_JOBS:-$(nproc)}"
failures=0
budget_end=0  # set when the build is done
: > "$out/steps.tsv"

step() {
  echo
  echo "=== [+${SECONDS}s] $1"
}

# record STEP STATUS SECONDS [NOTE]: one line of steps.tsv; any status but ok or skipped fails the run.
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >> "$out/steps.tsv"
  case "$2" in
    ok | skipped) ;;
    *) failures=$((failures + 1)) ;;
  esac
  echo "--- $1: $2 after ${3}s${4:+ ($4)}"
}

summarize() {
  python3 "$here/summarize.py" "$out" > /dev/null || echo "summarize.py failed; the raw results are in $out"
}

# run_step STEP CAP COMMAND...: runs COMMAND under its own limit (CAP, or what is left of the
# budget if less), records how it ended and rewrites the summary. Never stops the script.
run_step() {
  local name="$1" cap="$2"
  shift 2
  local limit=$((budget_end - SECONDS))
  if ((limit > cap)); then limit="$cap"; fi
  step "$name (limit ${limit}s)"
  if ((limit < 10)); then
    record "$name" "not run" 0 "the budget of ${budget}s is spent"
  else
    local start="$SECONDS" status=0
    timeout --kill-after=10 "$limit" "$@" || status=$?
    case "$status" in
      0) record "$name" ok $((SECONDS - start)) ;;
      124 | 137) record "$name" "timed out" $((SECONDS - start)) "limit ${limit}s" ;;
      *) record "$name" failed $((SECONDS - start)) "exit status $status" ;;
    esac
  fi
  summarize
}

step "environment"
capability=90  # H100 and H200; read off the device below
if [[ "$build_only" == 0 ]]; then
  if nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv; then
    capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')"
  else
    record environment failed 0 "nvidia-smi failed: no usable GPU or driver; building for sm_${capability}"
  fi
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2> /dev/null || echo "no torch"
fi
nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
"$nvcc" --version | tail -n2
cmake --version | head -n1
generator="Unix Makefiles"
if command -v ninja > /dev/null; then
  generator=Ninja
  echo "ninja $(ninja --version)"
fi
sanitizer=""
if [[ "${OGPSA_GPU_SANITIZER:-1}" != 0 ]]; then
  sanitizer="$(command -v compute-sanitizer || true)"
  if [[ -z "$sanitizer" && -x "$(dirname "$nvcc")/compute-sanitizer" ]]; then sanitizer="$(dirname "$nvcc")/compute-sanitizer"; fi
fi
echo "$(nproc) cores, ${jobs} build jobs; compute-sanitizer: ${sanitizer:-none}"
echo "limits: ${build_limit}s for configure and build, then ${budget}s for the steps (tests ${test_budget}s)"
summarize  # from here on, summary.md says how far the run got

step "staged dependencies in $deps"
for d in "$deps/share/eigen3/cmake" "$deps/lib/cmake/doctest" "$deps/lib/x86_64-linux-gnu/cmake/benchmark"; do
  if [[ ! -d "$d" ]]; then
    echo "missing $d: run bench/cuda/stage_gpu_deps.sh on the development machine and carry .gpu-deps"
    record "staged dependencies" failed 0 "missing $d"
    summarize
    exit 1
  fi
done

step "configure and build (sm_${capability}, warnings as errors: ${OGPSA_GPU_WERROR:-OFF})"
build_start="$SECONDS"
status=0
timeout --kill-after=10 "$build_limit" cmake -S "$root" -B "$build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="${capability}" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DOGPSA_ENABLE_CUDA=ON -DOGPSA_BUILD_TESTS=ON -DOGPSA_BUILD_BENCH=ON -DOGPSA_BUILD_EXAMPLES=OFF \
  -DOGPSA_ENABLE_TORCH=OFF -DOGPSA_INSTALL=OFF -DOGPSA_INSTALL_DEPS=OFF -DOGPSA_WERROR="${OGPSA_GPU_WERROR:-OFF}" \
  -DEigen3_DIR="$deps/share/eigen3/cmake" -Ddoctest_DIR="$deps/lib/cmake/doctest" \
  -Dbenchmark_DIR="$deps/lib/x86_64-linux-gnu/cmake/benchmark" "${extra_args[@]}" || status=$?
configured=$((SECONDS - build_start))
if [[ "$status" == 0 ]]; then
  timeout --kill-after=10 $((build_limit - configured)) \
    cmake --build "$build" --parallel "$jobs" --target "${targets[@]}" 2>&1 | tee "$out/build.log" || status=$?
fi
warnings="$(grep -cE '(^|[^[:alnum:]_])warning( #[0-9]+-D)?:' "$out/build.log" 2>/dev/null || true)"
built=$((SECONDS - build_start))
echo "=== configured in ${configured}s, built in $((built - configured))s (${built}s of the ${build_limit}s limit); ${warnings:-0} compiler warnings"
case "$status" in
  0) record build ok "$built" "configure ${configured}s, ${warnings:-0} compiler warnings" ;;
  124 | 137) record build "timed out" "$built" "limit ${build_limit}s (OGPSA_GPU_BUILD_TIMEOUT)" ;;
  *) record build failed "$built" "exit status $status" ;;
esac
summarize
if [[ "$status" != 0 ]]; then exit 1; fi
if [[ "$build_only" == 1 ]]; then
  echo "=== --build-only: nothing run"
  exit 0
fi
budget_end=$((SECONDS + budget))

# test_step STEP CAP LABEL NAME BUDGET [SANITIZER]: the tests with ctest label LABEL, one group per process.
test_step() {
  local command=(python3 "$here/run_test_groups.py" "$build" "$out" --label "$3" --name "$4" --budget "$5"
                 --group-timeout "$group_timeout")
  if [[ -n "${6:-}" ]]; then command+=(--sanitizer "$6"); fi
  run_step "$1" "$2" "${command[@]}"
}
test_step "host tests (label cuda)" 60 '^cuda$' host 50
# The groups' own budget ends before the step's limit, so that the last group is reported, not killed.
groups_budget=$((budget_end - SECONDS - 20))
if ((groups_budget > test_budget)); then groups_budget="$test_budget"; fi
test_step "gpu tests (label gpu), one process per source file" $((groups_budget + 20)) '^gpu$' gpu "$groups_budget" "$sanitizer"

# bench_step STEP CAP NAME FILTER: the benchmarks whose names match FILTER, into bench-NAME.json.
bench_step() {
  run_step "benchmarks: $1" "$2" "$build/bench/cuda/ogpsa_cuda_bench" --benchmark_filter="$4" \
    --benchmark_min_time=0.1 --benchmark_counters_tabular=true \
    --benchmark_out="$out/bench-$3.json" --benchmark_out_format=json
}
# The families the summary reports, in the order they run: the speed targets first.
targeted='device_copy|flat_projection|matrix_projection|whole_model|one_block'
estimators='exact_svd_estimate|svd_estimate|mean_gradient_estimate|cusolver_gram_syevd'
bench_step "copy roofline" 30 copy '^device_copy/'
bench_step "flat projection" 60 flat '^flat_projection<'
bench_step "matrix-side projection" 60 matrix '^matrix_projection<'
bench_step "whole model and one block" 90 model '^(whole_model|one_block)<'

if python3 -c 'import torch; assert torch.cuda.is_available()' 2> /dev/null; then
  run_step "published procedure with PyTorch" 60 python3 "$here/published_torch.py" "$out/published.json"
else
  record "published procedure with PyTorch" skipped 0 "python3 cannot import torch with CUDA here"
fi

bench_step "estimators" 60 estimators "^($estimators)[</]"
bench_step "cuSOLVER gesvd and gesvdj" 60 cusolver_svd '^cusolver_gesvdj?/'
rest="-^($targeted|$estimators|cusolver_gesvdj?)[</]"  # a leading - negates the filter
if [[ -n "$("$build/bench/cuda/ogpsa_cuda_bench" --benchmark_list_tests --benchmark_filter="$rest" 2> /dev/null)" ]]; then
  bench_step "the rest" 30 rest "$rest"
fi

step "summary"
python3 "$here/summarize.py" "$out" || echo "summarize.py failed; the raw results are in $out"
echo
if [[ "$failures" == 0 ]]; then
  echo "=== done in ${SECONDS}s: every step and test passed; summary in $out/summary.md"
else
  echo "=== done in ${SECONDS}s: ${failures} steps did not pass (failed, skipped tests, out of time); see $out/summary.md"
  exit 1
fi
