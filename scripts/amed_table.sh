#!/usr/bin/env bash
# The solver table of the README: every solver at NFE 3, 5, 7, 9 on models/fmnist_flow.pt
# (configs/fmnist_flow_nfe.json: polynomial rho 7 from sigma 80 to 0, guidance 2, labels
# cycling), on seeds 0..N-1, which distillation never uses (it draws from 1e9 on). RMSE to
# a converged reference (heun, 199 NFE; its own change from 99 NFE is printed) and the
# Fréchet distance to the test-split statistics. Needs the predictors of
# scripts/amed_predictors.sh. Usage: bash scripts/amed_table.sh [NUM_SAMPLES] (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
diffode=${DIFFODE:-./build/diffode}
n=${1:-200}
out=runs/amed_table
mkdir -p "$out"
common=(-c configs/fmnist_flow_nfe.json --set sampling.num_samples="$n" --set sampling.batch_size=100
        --set eval.features=models/fmnist_features.pt --set eval.stats=models/fmnist_features.test_stats.json -q)
"$diffode" sample "${common[@]}" --set solver.name=heun --set solver.nfe=199 -o "$out/reference" >/dev/null
"$diffode" sample "${common[@]}" --set solver.name=heun --set solver.nfe=99 -o "$out/reference-half" >/dev/null
for nfe in 3 5 7 9; do
  for solver in euler heun dpm2 dpmpp2m dpmpp3m ipndm ipndm_v amed amed+ipndm; do
    extra=()
    if [[ $solver == amed* ]]; then
      predictor="models/fmnist_flow.${solver/+/-}-${nfe}.pt"
      [[ -f $predictor ]] || { echo "missing $predictor (scripts/amed_predictors.sh $nfe)" >&2; continue; }
      extra=(--set solver.predictor="$predictor")
    fi
    "$diffode" sample "${common[@]}" --set solver.name="$solver" --set solver.nfe="$nfe" "${extra[@]}" \
      -o "$out/$solver-$nfe" >/dev/null 2>"$out/$solver-$nfe.err" || { echo "$solver @ $nfe: $(tail -1 "$out/$solver-$nfe.err")" >&2; continue; }
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
import numpy as np
out = sys.argv[1]
ref = np.load(f"{out}/reference/samples.npy").astype(np.float64)
half = np.load(f"{out}/reference-half/samples.npy").astype(np.float64)
def rmse(a): return float(np.sqrt(((a - ref) ** 2).mean()))
def fd(run): return json.load(open(f"{run}/manifest.json"))["quality"]["frechet_distance"]
lines = [f"Reference: heun 199 NFE; its RMSE to heun 99 NFE is {rmse(half):.4f}. "
         f"{ref.shape[0]} samples (seeds 0..{ref.shape[0]-1}). FD of the reference: {fd(out + '/reference'):.2f}.", "",
         "| solver | RMSE @3 | RMSE @5 | RMSE @7 | RMSE @9 | FD @3 | FD @5 | FD @7 | FD @9 |",
         "|---|---|---|---|---|---|---|---|---|"]
for s in ["euler", "heun", "dpm2", "dpmpp2m", "dpmpp3m", "ipndm", "ipndm_v", "amed", "amed+ipndm"]:
    r, f = [], []
    for nfe in (3, 5, 7, 9):
        run = f"{out}/{s}-{nfe}"
        if os.path.exists(f"{run}/manifest.json"):
            r.append(f"{rmse(np.load(run + '/samples.npy')):.4f}"); f.append(f"{fd(run):.2f}")
        else:
            r.append("—"); f.append("—")
    lines.append(f"| {s} | " + " | ".join(r + f) + " |")
text = "\n".join(lines)
print(text)
open(f"{out}/table.md", "w").write(text + "\n")
PY
