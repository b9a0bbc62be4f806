#!/usr/bin/env bash
# Solver overhead: sampling wall time ÷ (NFE × one bare model call at the same batch), every
# solver, on the shipped models. Prints ratios measured in one run; 1.00 means no overhead:
# "ratio" (median of the per-repeat ratios), "best" (fastest run ÷ fastest bare calls) and
# "in-run" (the run's wall time ÷ the time spent inside the network during that same run).
# Usage: bash scripts/bench_overhead.sh [NFE] [THREADS]   (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
nfe=${1:-20}
threads=${2:-0}
cmake --build build -j2 --target diffode_bench >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# fmnist_flow is guided (calls of 2 × 64) and slow: NFE 10, 3 repeats, the default float64 state.
./build/diffode_bench models/fmnist_flow.pt 64 10 "$threads" 3 float64
echo
./build/diffode_bench models/fmnist_exact.pt 64 "$nfe" "$threads"
echo
./build/diffode_bench models/gmm2d.pt 4096 "$nfe" "$threads"
