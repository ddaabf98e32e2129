#!/usr/bin/env bash
# Stages what the GPU machine lacks into .gpu-deps/ (ignored by git): Eigen, doctest and Google
# Benchmark, as their Debian packages install them here (headers, CMake package files, the
# benchmark library), keeping the layout their CMake files expect so that run_on_gpu.sh can point
# find_package at them; the CMake files find their prefix from their own location, so the tree
# works wherever it is copied (check_staged_deps.sh proves it). Run on the development machine, from anywhere in the repository, before
# the checkout goes to the GPU machine (which then needs `.gpu-deps` carried along).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$root/.gpu-deps"
lib=usr/lib/x86_64-linux-gnu
paths=(usr/include/eigen3 usr/share/eigen3/cmake usr/include/doctest usr/lib/cmake/doctest
       usr/include/benchmark "$lib/cmake/benchmark" "$lib/libbenchmark.so.1.7.1" "$lib/libbenchmark_main.a")
for p in "${paths[@]}"; do
  if [[ ! -e "/$p" ]]; then
    echo "stage_gpu_deps.sh: /$p is missing; install libeigen3-dev doctest-dev libbenchmark-dev" \
         "(cmake --workflow --preset test does) and run again" >&2
    exit 1
  fi
done
rm -rf "$dest"
for p in "${paths[@]}"; do
  mkdir -p "$dest/$(dirname "$p")"
  cp -RL "/$p" "$dest/$p"  # -L: plain files only, no links to travel
done
# The soname and the development name, as files (the CMake package refers to the versioned one).
cp -L "/$lib/libbenchmark.so.1.7.1" "$dest/$lib/libbenchmark.so.1debian"
cp -L "/$lib/libbenchmark.so.1.7.1" "$dest/$lib/libbenchmark.so"
# CMake's generated targets files hard-code the prefix they were installed with when it is /usr
# (doctest's does); the staged ones must find it from where they lie, three or more folders up.
while read -r targets; do
  up="$(dirname "${targets#"$dest"/usr/}" | sed 's#[^/]*#..#g')"
  sed -i "s#^set(_IMPORT_PREFIX \"/usr\")\$#get_filename_component(_IMPORT_PREFIX \"\${CMAKE_CURRENT_LIST_DIR}/$up\" ABSOLUTE)#" "$targets"
done < <(grep -rlx 'set(_IMPORT_PREFIX "/usr")' "$dest" --include='*.cmake')
if grep -rqx 'set(_IMPORT_PREFIX "/usr")' "$dest" --include='*.cmake'; then
  echo "stage_gpu_deps.sh: a staged CMake file still sets its prefix to /usr" >&2
  exit 1
fi
echo "staged into $dest ($(du -sh "$dest" | cut -f1)); carry '.gpu-deps' to the GPU machine"
