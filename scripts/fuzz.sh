#!/usr/bin/env bash
# libFuzzer (clang-14) with AddressSanitizer + UndefinedBehaviorSanitizer on the fuzz targets
# of tests/fuzz: a config file, an .npy file (and its header dict), a model's process
# metadata, a run record read back (manifest.json, shard.json). Each runs FUZZ_SECONDS
# (default 60) from its seed corpus (tests/fuzz/corpus/AREA, grown in
# build-san/corpus/AREA). A crash, hang, undefined behaviour or exception other than
# diffode's InputError stops it: the input is saved as build-san/crash-AREA-*; add it to
# tests/fuzz/corpus/AREA once fixed, so ctest keeps it as a regression test.
# Usage: [FUZZ_SECONDS=600] bash scripts/fuzz.sh [AREA...]   (CI runs it for 60 s each)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --packages clang-14 libclang-rt-14-dev
seconds=${FUZZ_SECONDS:-60}
areas=("$@"); ((${#areas[@]})) || areas=(config npy process records)
# The sanitized build of scripts/sanitize.sh (configured here if it is not there yet).
[ -f build-san/CMakeCache.txt ] ||
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Release -DDIFFODE_FUZZ=ON >/dev/null
cmake --build build-san -j2 --target $(printf 'fuzz_%s ' "${areas[@]}")
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for area in "${areas[@]}"; do
  corpus=build-san/corpus/$area
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/"$area"/* "$corpus"/
  echo "fuzz: $area for ${seconds} s"
  build-san/tests/fuzz/fuzz_"$area" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
    -dict=tests/fuzz/json.dict -artifact_prefix=build-san/crash-"$area"- -print_final_stats=1 "$corpus" \
    2>&1 | grep -v '^#[0-9]' || { echo "fuzz: $area found a failing input (build-san/crash-$area-*)"; exit 1; }
done
