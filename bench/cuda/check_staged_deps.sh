#!/usr/bin/env bash
# Proves that the GPU build needs nothing of Debian's Eigen, doctest and Google Benchmark packages
# but what stage_gpu_deps.sh copies into .gpu-deps/, as on a GPU machine that lacks them:
#
# 1. stages them, and copies the staged tree to a fresh folder elsewhere (its path on the GPU
#    machine differs too);
# 2. hides the packages in a private mount namespace: their folders are bind-mounted over with an
#    empty one, their other files with an empty file (needs root and unshare; without them, step 4
#    alone is the proof),
#    and find_package is told to ignore /usr (CMAKE_IGNORE_PREFIX_PATH);
# 3. configures and builds, through run_on_gpu.sh --build-only (the GPU script's own configure),
#    the targets given (default: ogpsa_cuda_host_tests and the CUDA benchmarks' main.cpp object,
#    which include doctest, Eigen and Google Benchmark; one job, the development machine is small);
# 4. reads the build: every header the compiler read (ninja's dependency log), the include flags
#    (compile_commands.json) and the benchmark library the link uses (build.ninja) must come from
#    the staged tree, and each of the three must be read from there at least once.
#
#   bash bench/cuda/check_staged_deps.sh [TARGET...]   # e.g. ogpsa_cuda_tests as well, if time allows
#
# Prints what it found and "staged dependencies: OK" or "... FAILED: <why>" (exit status 1).
# Needs ninja (for the dependency log). Leaves its folder in /tmp when it fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
packages=(libeigen3-dev doctest-dev libbenchmark-dev libbenchmark1debian)
fail() {
  echo "staged dependencies: FAILED: $*" >&2
  exit 1
}
command -v ninja > /dev/null || fail "ninja is needed for its dependency log"

# The files the packages install (documentation aside): what must not be read.
debian_files() {
  dpkg -L "${packages[@]}" | grep -v '^/usr/share/doc/' | while read -r path; do
    if [[ -f "$path" ]]; then echo "$path"; fi
  done
}

# Where a package file is hidden: its package's own folder (made empty) when it lies in one, else
# the file itself (made an empty file).
hiding_point() {
  if [[ "$1" =~ ^(/usr/include/[^/]+|/usr/share/[^/]+|/usr/lib/cmake/[^/]+|/usr/lib/[^/]+/cmake/[^/]+)/ ]] &&
     [[ "${BASH_REMATCH[1]}" != */pkgconfig ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    echo "$1"
  fi
}

# --hidden COMMAND...: runs COMMAND with every package file hidden (inside a private mount namespace).
if [[ "${1:-}" == "--hidden" ]]; then
  shift
  files="$(debian_files)"
  empty="$(mktemp -d)"
  while read -r point; do
    if [[ -d "$point" ]]; then mount --bind "$empty" "$point"; else mount --bind /dev/null "$point"; fi
  done < <(while read -r path; do hiding_point "$path"; done <<< "$files" | sort -u)
  while read -r path; do
    if [[ -s "$path" ]]; then fail "could not hide $path"; fi
  done <<< "$files"
  echo "hidden: the $(wc -l <<< "$files") files of ${packages[*]} are missing or empty here"
  exec "$@"
fi

targets=("$@")
if [[ ${#targets[@]} == 0 ]]; then
  targets=(ogpsa_cuda_host_tests bench/cuda/CMakeFiles/ogpsa_cuda_bench.dir/main.cpp.o)
fi
work="$(mktemp -d /tmp/ogpsa-staged-deps.XXXXXX)"
echo "working in $work"
bash "$here/stage_gpu_deps.sh"
cp -R "$root/.gpu-deps" "$work/deps"
deps="$work/deps/usr"

# One job and no time limit to speak of: nvcc on a small, shared machine is slow.
build_command=(env OUT="$work/out" OGPSA_GPU_DEPS="$deps" OGPSA_GPU_BUILD="$work/build" OGPSA_GPU_JOBS=1
               OGPSA_GPU_BUILD_TIMEOUT="${OGPSA_GPU_BUILD_TIMEOUT:-7200}" OGPSA_GPU_TARGETS="${targets[*]}"
               OGPSA_GPU_CMAKE_ARGS="-DCMAKE_IGNORE_PREFIX_PATH=/usr" bash "$here/run_on_gpu.sh" --build-only)
if [[ "$(id -u)" == 0 ]] && unshare --mount --propagation private true 2> /dev/null; then
  unshare --mount --propagation private bash "${BASH_SOURCE[0]}" --hidden "${build_command[@]}" \
    || fail "the build with Debian's packages hidden failed (log: $work/out/gpu.log)"
else
  echo "NOTE: cannot hide Debian's packages here (needs root and unshare --mount); the audit below is the proof"
  "${build_command[@]}" || fail "the build failed (log: $work/out/gpu.log)"
fi

echo
echo "=== audit of $work/build"
debian='^/usr/(include/(doctest|eigen3|benchmark)/|lib/x86_64-linux-gnu/libbenchmark|lib/cmake/doctest/|share/eigen3/)'
headers="$(ninja -C "$work/build" -t deps | sed -n 's/^    //p' | sort -u)"
[[ -n "$headers" ]] || fail "ninja's dependency log is empty: nothing was compiled"
from_debian="$(grep -E "$debian" <<< "$headers" || true)"
[[ -z "$from_debian" ]] || fail "headers read from Debian's packages: $(head -n5 <<< "$from_debian")"
for package in doctest eigen3 benchmark; do
  count="$(grep -c "^$deps/include/$package/" <<< "$headers" || true)"
  echo "headers read from the staged $package: $count"
  [[ "$count" -gt 0 ]] || fail "no header of the staged $package was read (is it in the targets: ${targets[*]}?)"
done
echo "headers read from Debian's doctest, Eigen or Google Benchmark: 0 (of $(wc -l <<< "$headers") read in all)"

flags="$(python3 -c '
import json, shlex, sys
for entry in json.load(open(sys.argv[1])):
    words = shlex.split(entry["command"])
    for i, word in enumerate(words):
        if word in ("-I", "-isystem") and i + 1 < len(words):
            print(words[i + 1])
        elif word.startswith("-I") and len(word) > 2:
            print(word[2:])
' "$work/build/compile_commands.json" | sort -u)"
echo "include folders on the command lines:"
while read -r folder; do echo "    $folder"; done <<< "$flags"
grep -qE '^/usr/include/(doctest|eigen3|benchmark)' <<< "$flags" && fail "an include flag names Debian's packages"
grep -qx "$deps/include/eigen3" <<< "$flags" || fail "Eigen's staged include folder is not on the command lines"
grep -qx "$deps/include" <<< "$flags" || fail "the staged include folder (doctest, benchmark) is not on the command lines"

libraries="$(grep -oE '[^ ]*libbenchmark[^ ]*' "$work/build/build.ninja" | sort -u)"
echo "benchmark library in the link lines: $libraries"
[[ -n "$libraries" ]] || fail "build.ninja links no libbenchmark"
grep -vq "^$deps/" <<< "$libraries" && fail "a libbenchmark outside the staged tree is linked"

grep -E '^(Eigen3|doctest|benchmark)_DIR:' "$work/build/CMakeCache.txt"
echo "staged dependencies: OK"
rm -rf "$work"
