#!/usr/bin/env bash
# The GPU checks in one script, for a machine with a CUDA GPU: the penalty benchmark on CUDA (both models,
# every kernel form), mixed-precision and FSDP/DDP runs through the CLI, and the quick test suite. Each step has a time
# limit and its own log, and a failing step does not stop the others (the summary lists each step's exit status).
# Logs (five files) go to ${OUT:-outputs/gpu_check}; run dirs to ${RUNS:-outputs/gpu_check_runs}.
#     bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-outputs/gpu_check}"
runs="${RUNS:-outputs/gpu_check_runs}"
mkdir -p "$out" "$runs"
summary="$out/summary.txt"
: >"$summary"

step() {  # step NAME LOG SECONDS COMMAND...: run with a limit, append to $out/LOG.txt, record exit status and seconds
    local name=$1 log=$2 limit=$3
    shift 3
    local start=$SECONDS
    echo "== $name: $*" >>"$out/$log.txt"
    timeout "$limit" "$@" >>"$out/$log.txt" 2>&1
    echo "$name rc=$? $((SECONDS - start))s" >>"$summary"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$summary" 2>&1
python -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)" >>"$summary"
step penalty_overhead penalty_overhead 240 python -m benchmarks.speed.penalty_overhead --device cuda --forms --repeats 7 --steps 20
train=(python -m train +penalty=l1 lambda=0.001 trainer.max_epochs=3)
step train_16mixed train 90 "${train[@]}" trainer=gpu trainer.precision=16-mixed hydra.run.dir="$runs/16-mixed"
step train_bf16mixed train 90 "${train[@]}" trainer=gpu trainer.precision=bf16-mixed hydra.run.dir="$runs/bf16-mixed"
step train_fsdp train 120 "${train[@]}" trainer=fsdp trainer.devices=1 hydra.run.dir="$runs/fsdp"
step train_ddp train 120 "${train[@]}" trainer=ddp hydra.run.dir="$runs/ddp"
step train_exact train 120 python -m train experiment=seed001_exact trainer=gpu hydra.run.dir="$runs/exact"
for run in "$runs"/*/; do
    echo "== $run" >>"$out/metrics.txt"
    cat "$run/metrics.json" >>"$out/metrics.txt" 2>&1
done
step pytest pytest 200 python -m pytest -q -m "not slow" --ignore=tests/test_notebook.py -p no:cacheprovider
tail -3 "$out/pytest.txt" >>"$summary"
