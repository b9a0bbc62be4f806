#!/usr/bin/env bash
# Distils the shipped AMED predictors for models/fmnist_flow.pt: amed+dpmpp2m, amed+ipndm and
# amed at NFE 3, 5, 7, 9, on the plan and with the distillation settings of
# configs/fmnist_flow_amed5.json (VP-time grid to sigma 0, AFS with the data mean, every
# interval learned, the last one into 0 too; teacher dpmpp2m with 20 points per interval,
# the loss in the data's scale). The three solvers at one NFE share one cached teacher. Each
# file is written whenever its validation loss improves, and a re-run continues an
# unfinished one. Usage: bash scripts/amed_predictors.sh [NFE...]
set -euo pipefail
cd "$(dirname "$0")/.."
diffode=${DIFFODE:-./build/diffode}
nfes=("$@"); ((${#nfes[@]})) || nfes=(5 3 7 9)
for nfe in "${nfes[@]}"; do
  for solver in amed+dpmpp2m amed+ipndm amed; do
    out="models/fmnist_flow.${solver/+/-}-${nfe}.pt"
    echo "== $solver at NFE $nfe -> $out" >&2
    "$diffode" distill -c configs/fmnist_flow_amed5.json \
      --set solver.name="$solver" --set solver.nfe="$nfe" -o "$out"
  done
done
