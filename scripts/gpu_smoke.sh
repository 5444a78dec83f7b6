#!/usr/bin/env bash
# GPU smoke run: the versioned config with every GPU setting kept (bf16 + tf32, the fused lora_*_kernel
# options, NF4 QLoRA through bitsandbytes on CUDA, flash-attention 2, packing) and only the base model swapped
# for the tiny stand-in (securecli/configs.py: apply_gpu_smoke_overlay). Offline: icalfa's tasks are the data.
# Prints the settings it trained with, the loss and the adapter path.
#
# Usage: scripts/gpu_smoke.sh [CONFIG] [MAX_STEPS]   (default axolotl/qwen25-coder-7b-qlora.yml, 20 steps)
# Data and runs go under $SECURECLI_HOME (default: the current directory).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
config=${1:-$repo/axolotl/qwen25-coder-7b-qlora.yml}
max_steps=${2:-}
if [[ -x "$repo/.venv/bin/securecli" ]]; then
  python="$repo/.venv/bin/python" cli="$repo/.venv/bin/securecli"
else
  python=python cli=securecli
fi

if ! device=$("$python" -c 'import torch, sys
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA GPU")
print(f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}, torch {torch.__version__}")'); then
  echo "gpu_smoke: refused: this run needs a CUDA GPU (bf16, flash-attention and NF4 on CUDA are what it checks)." >&2
  echo "gpu_smoke: on a CPU machine use the stand-in instead: securecli train CONFIG --tiny" >&2
  exit 2
fi
echo "gpu_smoke: $device"

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline AXOLOTL_DO_NOT_TRACK=1
"$cli" prepare --source icalfa
"$cli" train "$config" --gpu-smoke ${max_steps:+--max-steps "$max_steps"}

"$python" - <<'EOF'
import json
import math
import sys

import yaml

from common.paths import runs_dir

run = (runs_dir() / "latest").resolve()
config = yaml.safe_load((run / "config.yml").read_text(encoding="utf-8"))
metrics = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["metrics"]
adapter = run / "adapter" / "adapter_model.safetensors"
kept = ("bf16", "tf32", "lora_qkv_kernel", "lora_o_kernel", "lora_mlp_kernel", "attn_implementation", "adapter")
print("settings        : " + ", ".join(f"{key}={config.get(key)}" for key in kept)
      + f", quant={config['bnb_config_kwargs']['bnb_4bit_quant_type']}, base={config['base_model']}")
print(f"steps           : {metrics.get('global_step')}")
for key in ("first_train_loss", "final_train_loss", "final_eval_loss"):
    print(f"{key:<16}: {metrics.get(key)}")
print(f"adapter         : {adapter}")
loss = metrics.get("final_train_loss")
if not adapter.is_file() or not isinstance(loss, float) or not math.isfinite(loss):
    sys.exit("gpu_smoke: FAILED: no adapter or no finite training loss")
print("gpu_smoke: ok")
EOF
