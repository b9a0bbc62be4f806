#!/usr/bin/env bash
# Tunes the shipped grids for models/fmnist_flow.pt (configs/tuned/): each solver of
# configs/fmnist_flow_plans.json that uses a tuned grid, at NFE 3, 5, 7, 9, with the
# config's tune settings, guidance, labels and candidate schedule (time_uniform from
# σ̃ = 80), refined by each solver's own end error. The teacher runs once (cached); each
# grid then costs its refinement's solver runs (1-4 min here). Usage:
# bash scripts/tune_plans.sh [NFE...]
set -euo pipefail
cd "$(dirname "$0")/.."
diffode=${DIFFODE:-./build/diffode}
nfes=("$@"); ((${#nfes[@]})) || nfes=(5 3 7 9)
mkdir -p configs/tuned
# solver|max_order (0: the solver's default)|file tag
plans=("unipc_bh2|2|unipc_bh2-o2" "dpmpp2m|0|dpmpp2m")
for nfe in "${nfes[@]}"; do
  for plan in "${plans[@]}"; do
    IFS='|' read -r solver order tag <<<"$plan"
    out="configs/tuned/fmnist_flow-${tag}-afs_mean-${nfe}.json"
    echo "== $solver (max_order $order, afs mean) at NFE $nfe -> $out" >&2
    "$diffode" tune -c configs/fmnist_flow_plans.json --set solver.name="$solver" --set solver.max_order="$order" \
      --set solver.nfe="$nfe" --set solver.afs=mean -o "$out"
  done
done
