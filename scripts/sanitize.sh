#!/usr/bin/env bash
# Builds diffode with AddressSanitizer + UndefinedBehaviorSanitizer (clang-14; NaN-to-integer
# casts included; with libFuzzer's instrumentation, so scripts/fuzz.sh reuses the build) into
# build-san/, and runs the tests of configs, files, processes, schedules and solvers and each
# fuzz target's corpus under them. Any report stops the run (exit != 0).
# Usage: bash scripts/sanitize.sh   (CI runs it after the tests). LibTorch is not
# instrumented; what it holds at exit is not a leak of ours (detect_leaks=0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --packages clang-14 libclang-rt-14-dev
werror=OFF; [ "${CI:-}" = "true" ] && werror=ON
CC=clang-14 CXX=clang++-14 cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Release -DDIFFODE_FUZZ=ON \
  -DDIFFODE_WERROR="$werror" >/dev/null
tests=(test_config test_io test_discrete test_solvers test_space test_schedule test_process)
cmake --build build-san -j2 --target diffode fuzz_config fuzz_npy fuzz_process fuzz_records "${tests[@]}"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
regex=$(IFS='|'; echo "^(${tests[*]})\\.|^fuzz\\.")
ctest --test-dir build-san --output-on-failure -j2 -R "$regex"
