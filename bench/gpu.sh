#!/usr/bin/env bash
# GPU figures in one go (< 5 minutes on an H100/H200): encoder, latency, throughput and fp16-vs-fp32 agreement.
# Usage: bench/gpu.sh [OUT_DIR]   (results as JSON in OUT_DIR, default bench/results)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python bench/encoders.py --device cuda --runs 50 --json "$out/encoders_cuda.json"
python bench/latency.py --device cuda --runs 50 --json "$out/latency_cuda.json"
python bench/throughput.py --device cuda --seconds 3 --json "$out/throughput_cuda.json"
python bench/precision.py --device cuda --json "$out/precision_cuda.json"
