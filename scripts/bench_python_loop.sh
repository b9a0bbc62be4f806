#!/usr/bin/env bash
# diffode vs a straightforward Python/torch sampling loop over the same TorchScript model:
# for each model and solver, `diffode sample` then scripts/bench_python_loop.py on the same
# run (same grid, NFE, batch, seeds, labels, guidance, threads), BATCHES batches each.
# Prints one table with the largest |difference| of the samples (float32) and the sampling
# wall times measured in this run: the whole run after loading (cold: the first batch
# includes each side's first model calls at the batch shape) and the median of the later
# batches (warm); ratio = python / diffode (> 1: diffode is faster).
#
# Usage: bash scripts/bench_python_loop.sh [NFE] [GMM_BATCH] [FMNIST_BATCH]
#   defaults 10, 4096, 64 (one batch per model). Environment: DIFFODE (binary, default
#   ./build/diffode), THREADS (model.threads for diffode, default 0 = all cores; Python
#   uses the count diffode reports), PYTHON (default /usr/bin/python3), SOLVERS (default
#   "euler heun dpmpp2m ipndm"), TOL (default 1e-5; exit 1 if any difference exceeds it),
#   REPEATS (default 3: each pair runs this often, times are medians, alternating sides),
#   BATCHES (default 4 batches per run), MODELS (default "gmm2d fmnist_exact fmnist_flow").
set -euo pipefail
cd "$(dirname "$0")/.."
nfe=${1:-10}
gmm_batch=${2:-4096}
fmnist_batch=${3:-64}
diffode=${DIFFODE:-./build/diffode}
threads=${THREADS:-0}
python=${PYTHON:-/usr/bin/python3}
solvers=${SOLVERS:-euler heun dpmpp2m ipndm}
tol=${TOL:-1e-5}
repeats=${REPEATS:-3}
batches=${BATCHES:-4}
models=${MODELS:-gmm2d fmnist_exact fmnist_flow}

[ -x "$diffode" ] || { echo "no diffode binary at $diffode (set DIFFODE)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/bench_python_loop.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
results="$tmp/results.jsonl"
: >"$results"

# config|batch. fmnist_flow keeps the settings of configs/fmnist_flow.json (time_uniform
# schedule, its class-label list, guidance 2); only solver, NFE and sample count change.
cases=(
  "configs/gmm2d.json|$gmm_batch"
  "configs/fmnist_exact.json|$fmnist_batch"
  "configs/fmnist_flow.json|$fmnist_batch"
)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "diffode: $diffode; python: $python ($("$python" -c 'import torch; print("torch", torch.__version__)'))"
for case in "${cases[@]}"; do
  config=${case%%|*}
  batch=${case##*|}
  name=$(basename "$config" .json)
  [[ " $models " == *" $name "* ]] || continue
  for solver in $solvers; do
   for rep in $(seq "$repeats"); do
    dir="$tmp/$name-$solver-$rep"
    if ! "$diffode" sample -c "$config" --set solver.name="$solver" --set solver.nfe="$nfe" \
        --set sampling.num_samples=$((batches * batch)) --set sampling.batch_size="$batch" \
        --set model.threads="$threads" --set output.npy=true --set output.png=false \
        -o "$dir" >"$dir.log" 2>&1; then
      echo "diffode failed on $config / $solver:" >&2
      cat "$dir.log" >&2
      printf '{"model": "%s", "solver": "%s", "error": "diffode failed"}\n' "$name" "$solver" >>"$results"
      continue
    fi
    if ! out=$("$python" scripts/bench_python_loop.py "$dir" 2>"$dir.py.log"); then
      echo "python loop failed on $config / $solver:" >&2
      cat "$dir.py.log" >&2
      [ -n "$out" ] || out=$(printf '{"model": "%s", "solver": "%s", "error": "python failed"}' "$name" "$solver")
    fi
    echo "$out" >>"$results"
   done
  done
done
echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo

"$python" - "$results" "$tol" <<'PY'
import json, sys
import statistics
raw = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rows, groups = [], {}
for r in raw:  # the repeats of one (model, solver): median times, worst difference
    groups.setdefault((r["model"], r["solver"]), []).append(r)
for reps in groups.values():
    ok = [r for r in reps if "error" not in r]
    if len(ok) < len(reps):
        rows.append(next(r for r in reps if "error" in r))
        continue
    r = dict(ok[0])
    med = lambda key: statistics.median(x[key] for x in ok)
    r["diffode_s"], r["python_s"], r["python_noise_s"] = med("diffode_s"), med("python_s"), med("python_noise_s")
    r["python_manual_seed_noise_s"] = med("python_manual_seed_noise_s")
    r["max_abs_diff"] = max(x["max_abs_diff"] for x in ok)
    r["finite"] = all(x["finite"] for x in ok)
    warm = lambda key: statistics.median(statistics.median(x[key][1:]) for x in ok) if len(ok[0][key]) > 1 else None
    r["diffode_warm_s"], r["python_warm_s"] = warm("diffode_batch_s"), warm("python_batch_s")
    r["repeats"] = len(ok)
    rows.append(r)
tol = float(sys.argv[2])
head = (f"{'model':<13} {'solver':<8} {'NFE':>3} {'batch':>5} {'max|diff|':>9}   {'diffode s':>9} {'python s':>9} "
        f"{'ratio':>6} {'ratio*':>6}   {'warm: diffode ms':>16} {'python ms':>9} {'ratio':>6}")
print(head)
print("-" * len(head))
bad = 0
for r in rows:
    if "error" in r:
        print(f"{r['model']:<13} {r['solver']:<8}  {r['error']}")
        bad += 1
        continue
    nfe = int(r["nfe"]) if r["nfe"] == int(r["nfe"]) else r["nfe"]
    d, p = r["diffode_s"], r["python_s"]
    ok = r["max_abs_diff"] <= tol and r["finite"] and r["nfe"] == r["nfe_diffode"]
    bad += not ok
    dw = r["diffode_warm_s"] * 1e3 if r["diffode_warm_s"] else None
    pw = r["python_warm_s"] * 1e3 if r["python_warm_s"] else None
    warm = f"{dw:>16.1f} {pw:>9.1f} {pw / dw:>6.2f}" if dw and pw else f"{'-':>16} {'-':>9} {'-':>6}"
    print(f"{r['model'].removesuffix('.pt'):<13} {r['solver']:<8} {nfe:>3} {r['batch']:>5} {r['max_abs_diff']:>9.2e}   "
          f"{d:>9.3f} {p:>9.3f} {p / d:>6.2f} {(p - r['python_noise_s'] + r['python_manual_seed_noise_s']) / d:>6.2f}   {warm}"
          + ("" if ok else "  <-- MISMATCH"))
good = [r for r in rows if "error" not in r]
if good:
    r = good[0]
    print(f"ratio = python / diffode (> 1: diffode faster). {r['threads']} threads both sides, solver state "
          f"{r['precision']}, model calls float32; medians of {r['repeats']} runs each side. {r['num_samples'] // r['batch']} "
          "batches per run,\nafter loading the model and one probe call:\n"
          "diffode s / python s: all batches (cold: noise, solver, float32 copy; diffode also writes its batch files);\n"
          "ratio*: the same with the noise drawn literally as torch.manual_seed(seed + k); torch.randn(shape) per\n"
          "  sample (DESIGN.md section 6), measured separately; the Python loop itself uses a private generator\n"
          "  (the same numbers, about 10x faster for small samples);\n"
          "warm: the median batch after the first.")
print(f"all samples within {tol:g} of diffode's" if not bad else f"{bad} case(s) failed (tolerance {tol:g})")
sys.exit(1 if bad else 0)
PY
