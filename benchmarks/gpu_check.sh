#!/usr/bin/env bash
# The GPU checks of issue 11 in one script, for a machine with a CUDA GPU (none was available when it was written, so
# it has not run yet): the penalty benchmark on CUDA (both models, every kernel form), mixed-precision runs, an FSDP run
# with one device, and the test suite. Figures and run dirs go to ${OUT:-outputs/gpu_check}.
#     bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-outputs/gpu_check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python benchmarks/penalty_overhead.py --device cuda --forms --repeats 7 --steps 20 | tee "$out/penalty_overhead_cuda.txt"
for precision in 16-mixed bf16-mixed; do
    python -m train trainer=gpu trainer.precision="$precision" +penalty=l1 lambda=0.001 trainer.max_epochs=3 \
        hydra.run.dir="$out/train_$precision"
done
python -m train trainer=fsdp trainer.devices=1 +penalty=l1 lambda=0.001 trainer.max_epochs=3 hydra.run.dir="$out/fsdp"
python -m pytest -q -x | tail -5 | tee "$out/pytest.txt"
