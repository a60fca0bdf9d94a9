#!/bin/bash
# A robustness sweep of one trained run as a SLURM job array: one array task per shard.
#
#   sbatch benchmarks/slurm_sweep.sh runs/tr-sign-c addnorm          # Figure 2A
#   sbatch benchmarks/slurm_sweep.sh runs/tr-sign-c power --per-layer # extra flags pass through
#
# Task i (0-based, SLURM_ARRAY_TASK_ID) does grid points i, i+N, i+2N, ... and writes
# RUN_DIR/sweeps/<name>.shard-<i>-of-<N>.jsonl (<name>: the distortion, or layers-<distortion>
# with --per-layer or --layer). A task that hits its time limit is resumed by
# resubmitting (the same command skips finished points; `sbatch --array=3 ...` reruns one:
# SHARDS stays 8, so task 3 is still shard 3 of 8).
# Random draws depend only on (seed, level, layer, draw), so the merged shards equal one
# unsharded run exactly. Merge and read them with
#   python -c "from tinyproj.robustness import merge_sweep_files as m; print(len(m('runs/tr-sign-c', 'addnorm')))"
# (the report does the same).
#
# N is SHARDS below (8), not the size of this submission's array: a resubmitted single task
# (--array=3) must keep its place in the 8. For another N change --array=0-7 and SHARDS
# together (or submit with SHARDS=N in the environment, sbatch --export=ALL,SHARDS=N).
# The logs go to the folder sbatch is called from (SLURM opens --output before the script
# runs, so it must name a folder that exists then).
#SBATCH --job-name=tinyproj-sweep
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=tinyproj-sweep-%A_%a.out
# On a GPU partition add, for example:
##SBATCH --gres=gpu:1
##SBATCH --partition=gpu

set -euo pipefail

RUN_DIR=${1:?usage: sbatch slurm_sweep.sh RUN_DIR DISTORTION [more tinyproj sweep flags]}
DISTORTION=${2:?usage: sbatch slurm_sweep.sh RUN_DIR DISTORTION [more tinyproj sweep flags]}
shift 2
SHARDS=${SHARDS:-8}
TASK=${SLURM_ARRAY_TASK_ID:?run this script with sbatch --array=0-$((SHARDS - 1))}

# One BLAS thread pool the size of the task's CPUs.
export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export MKL_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
# Where the datasets are on this cluster (the run folder remembers where it was trained).
export TINYPROJ_DATA=${TINYPROJ_DATA:-$HOME/datasets}

# Activate the environment that has tinyproj installed, e.g.
# source .venv/bin/activate
srun tinyproj sweep "$RUN_DIR" --distortion "$DISTORTION" \
    --shard "$TASK/$SHARDS" --draws 5 --no-progress "$@"
