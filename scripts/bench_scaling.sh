#!/usr/bin/env bash
# Scaling of `diffode sample`, measured in one run (after scripts/setup.sh):
#   threads: samples/s with model.threads 1 and every core (fmnist_exact, batch 64);
#   batch:   samples/s at batch 1, 4, 16, 64, 256 (fmnist_exact, 256 samples);
#   memory:  peak RSS against num_samples (fmnist_exact, batch 64), which should stay flat.
# Each number is from the run's timings.json (sample_s: sampling only; peak_rss_mb).
# Usage: bash scripts/bench_scaling.sh [NFE]
set -euo pipefail
cd "$(dirname "$0")/.."
nfe=${1:-10}
diffode=${DIFFODE:-./build/diffode}
tmp=$(mktemp -d /tmp/bench_scaling.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
run() {  # run NAME ARGS...: one sample run into $tmp/NAME
  local name=$1; shift
  "$diffode" sample -q -c configs/fmnist_exact.json --set solver.name=dpmpp2m --set solver.nfe="$nfe" "$@" \
    -o "$tmp/$name" >/dev/null
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); fmnist_exact, dpmpp2m, NFE $nfe"

echo; echo "threads   samples/s"
for t in 1 0; do
  run "threads-$t" --set model.threads=$t --set sampling.num_samples=128 --set sampling.batch_size=64
  printf "%-9s %9.1f\n" "$([ $t = 0 ] && echo "all ($(nproc))" || echo $t)" "$(field "$tmp/threads-$t/timings.json" samples_per_s)"
done

echo; echo "batch     samples/s"
for b in 1 4 16 64 256; do
  run "batch-$b" --set sampling.num_samples=256 --set sampling.batch_size=$b
  printf "%-9s %9.1f\n" "$b" "$(field "$tmp/batch-$b/timings.json" samples_per_s)"
done

echo; echo "num_samples  peak RSS MiB  samples.npy MiB"
for n in 64 512 2048 8192; do
  run "rss-$n" --set sampling.num_samples=$n --set sampling.batch_size=64
  printf "%-12s %12.1f %16.1f\n" "$n" "$(field "$tmp/rss-$n/timings.json" peak_rss_mb)" \
    "$(/usr/bin/python3 -c "import os, sys; print(os.path.getsize(sys.argv[1]) / 2**20)" "$tmp/rss-$n/samples.npy")"
done
