#!/usr/bin/env bash
# The GPU check of issue 10 in one run: CUDA tests, train-step speed and memory against the
# DCLS-style baseline, a short Yin-Yang fit with CUDA graphs, and one SHD epoch end to end
# on files of the real size. About 6-8 minutes on one H100; results under $OUT (the device
# tool sets it) or benchmarks/results/.
#
# Installs nothing. It needs a Python with CUDA torch and triton (PYTHON, default python3)
# that can import spsnn's dependencies: on the lent GPU machines the image has torch,
# triton, lightning, torchmetrics, h5py and matplotlib; carry the others as wheels
# (snntorch, norse, DCLS, tonic, nir, nirtorch, wandb, jsonargparse, docstring-parser,
# typeshed-client; see the device tool's README) and put them on PYTHONPATH first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export WANDB_MODE=offline PYTHONUNBUFFERED=1
"$PY" -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA GPU';
print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

echo "== 1/4 CUDA tests: Triton LIF kernels, CUDA graphs, compile, layers on cuda"
"$PY" -m pytest -q -x -n 4 tests/spatial_layers 2>&1 | tee "$OUT/gpu_tests.txt" | tail -4

echo "== 2/4 train step: spsnn (eager, CUDA graphs) against the DCLS-style baseline"
"$PY" benchmarks/train_step.py --device cuda --repeats 5 --no-stream \
  --out "$OUT/train_step.json" > "$OUT/train_step.txt"
tail -n 25 "$OUT/train_step.txt"

echo "== 3/4 Yin-Yang: a short real fit on the GPU with CUDA graphs"
"$PY" -m lightning_modules.cli fit --config recipes/yinyang.yaml --trainer.max_epochs 3 \
  --trainer.accelerator gpu --model.cuda_graphs true --run.wandb false \
  --trainer.enable_progress_bar false --trainer.default_root_dir "$OUT/runs" 2>&1 | tail -6

echo "== 4/4 SHD: one epoch of shd_spatial_d2 end to end (data loading included)"
step_ms=$("$PY" -c "import json,sys; r=json.load(open(sys.argv[1]))
print(1e3 * r['configs']['shd']['models']['spatial-graphs']['time_s'])" "$OUT/train_step.json")
"$PY" benchmarks/shd_epoch.py --accelerator gpu --cuda-graphs --train-step-ms "$step_ms" \
  --out "$OUT/shd_epoch.json" 2>&1 | tail -5

echo "== ratios against the DCLS-style baseline (same run, same GPU)"
sed -n '/^| config | model | ms \/ step/,/^$/p' "$OUT/train_step.txt"
