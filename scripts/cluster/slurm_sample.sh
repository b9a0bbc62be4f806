#!/usr/bin/env bash
# A Slurm array job that samples one config on N machines, one shard each, then merges.
#
#   sbatch --array=0-7 scripts/cluster/slurm_sample.sh configs/fmnist_flow_quality.json runs/quality
#   # when all tasks are done (or chain it: sbatch --dependency=afterok:JOBID ...):
#   ./build/diffode merge runs/quality
#
# Each task samples the seeds of its shard (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT,
# read by --shard auto) into runs/quality/shard-I-of-N; a task that is preempted or
# requeued continues from its complete batches (--resume). `diffode merge` then writes
# grid.png, samples.npy and manifest.json, byte for byte what one machine would have.
#SBATCH --job-name=diffode
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --requeue
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
config=${1:?usage: sbatch --array=0-N scripts/cluster/slurm_sample.sh CONFIG OUT_DIR}
out=${2:?usage: sbatch --array=0-N scripts/cluster/slurm_sample.sh CONFIG OUT_DIR}
diffode=${DIFFODE:-./build/diffode}
# model.threads 0 = every core of this machine; Slurm's allocation is what we were given.
exec "$diffode" sample -c "$config" -o "$out" --shard auto --resume \
     --set model.threads="${SLURM_CPUS_PER_TASK:-0}"
