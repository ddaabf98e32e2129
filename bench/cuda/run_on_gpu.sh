#!/usr/bin/env bash
# Builds and runs the CUDA backend's tests and benchmarks on a GPU machine in one go (well under
# 8 minutes on an H100 with 16 cores), then the PyTorch peer (the published procedure), and
# prints a summary table with the project's speed targets.
#
#   bash bench/cuda/stage_gpu_deps.sh      # on the development machine, once per checkout
#   OUT=<results folder> bash bench/cuda/run_on_gpu.sh
#   OUT=<folder> bash bench/cuda/run_on_gpu.sh --build-only   # configure and build only (no GPU needed)
#
# Needs an NVIDIA GPU, nvcc, cmake and python3 (with torch for the published procedure, which is
# skipped with a message without it; ninja is used when present); Eigen, doctest and Google
# Benchmark come from .gpu-deps/. Steps after the build are held to a deadline (OGPSA_GPU_BUDGET
# seconds for the whole run, 450 by default) so that the run ends well inside 8 minutes. Writes $OUT/gpu.log (everything printed), $OUT/bench.json
# (Google Benchmark), $OUT/published.json (the PyTorch peer) and $OUT/summary.md.
# Any failed step stops the run and names itself, except failing tests: they are reported, the
# benchmarks still run, and the script exits non-zero at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${OUT:?set OUT to the folder that receives the results}"
mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1
tee_pid=$!
trap 'exec >&- 2>&-; wait "$tee_pid" || true' EXIT  # the log is complete when the script ends

build_only=0
[[ "${1:-}" == "--build-only" ]] && build_only=1
current="start"
step() {
  current="$1"
  echo
  echo "=== [+${SECONDS}s] $1"
}
trap 'echo; echo "RUN FAILED in step: ${current} (exit status $?, after ${SECONDS}s)"' ERR

step "environment"
capability=90  # H100 and H200; read off the device below
if [[ "$build_only" == 0 ]]; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv
  capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' || echo "no torch"
fi
nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
"$nvcc" --version | tail -n2
cmake --version | head -n1
generator="Unix Makefiles"
if command -v ninja >/dev/null; then generator=Ninja; echo "ninja $(ninja --version)"; fi
echo "$(nproc) cores"
budget="${OGPSA_GPU_BUDGET:-450}"
# Seconds left for a step: what remains of the budget after `reserve` (later steps), at least 30.
left() { local s=$((budget - SECONDS - $1)); echo $((s < 30 ? 30 : s)); }

step "staged dependencies"
deps="$root/.gpu-deps/usr"
for d in "$deps/share/eigen3/cmake" "$deps/lib/cmake/doctest" "$deps/lib/x86_64-linux-gnu/cmake/benchmark"; do
  [[ -d "$d" ]] || { echo "missing $d: run bench/cuda/stage_gpu_deps.sh on the development machine and carry .gpu-deps"; false; }
done

step "configure (CUDA architecture ${capability})"
build="$root/build/gpu"
cmake -S "$root" -B "$build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="${capability}" \
  -DOGPSA_ENABLE_CUDA=ON -DOGPSA_BUILD_TESTS=ON -DOGPSA_BUILD_BENCH=ON -DOGPSA_BUILD_EXAMPLES=OFF \
  -DOGPSA_ENABLE_TORCH=OFF -DOGPSA_INSTALL=OFF -DOGPSA_INSTALL_DEPS=OFF \
  -DEigen3_DIR="$deps/share/eigen3/cmake" -Ddoctest_DIR="$deps/lib/cmake/doctest" \
  -Dbenchmark_DIR="$deps/lib/x86_64-linux-gnu/cmake/benchmark"

step "build"
cmake --build "$build" --parallel "$(nproc)" --target ogpsa_cuda_tests ogpsa_cuda_host_tests ogpsa_cuda_bench

if [[ "$build_only" == 1 ]]; then
  echo "=== built in ${SECONDS}s (--build-only: nothing run)"
  exit 0
fi

step "tests (labels gpu and cuda)"
tests_ok=1
if ! ctest --test-dir "$build" -L 'gpu|cuda' -LE bench --output-on-failure --parallel 8 --timeout "$(left 200)"; then
  tests_ok=0
  echo "SOME TESTS FAILED (see above); continuing with the benchmarks"
fi

step "benchmarks"
timeout "$(left 90)" "$build/bench/cuda/ogpsa_cuda_bench" --benchmark_min_time=0.1 --benchmark_counters_tabular=true \
  --benchmark_out="$out/bench.json" --benchmark_out_format=json

step "published procedure with PyTorch"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  timeout "$(left 15)" python3 "$root/bench/cuda/published_torch.py" "$out/published.json"
else
  echo "SKIPPED: python3 cannot import torch with CUDA here; the summary marks the comparison missing"
fi

step "summary"
python3 "$root/bench/cuda/summarize.py" "$out/bench.json" "$out/published.json" "$out/summary.md"

echo
if [[ "$tests_ok" == 1 ]]; then
  echo "=== done in ${SECONDS}s: tests passed; summary in $out/summary.md"
else
  echo "=== done in ${SECONDS}s: TESTS FAILED (see gpu.log); summary in $out/summary.md"
  exit 1
fi
