#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded offline default (icalfa tasks + tiny Qwen2 stand-in).
set -euo pipefail
cli=.venv/bin/securecli
config=axolotl/qwen25-coder-7b-qlora.yml
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "prepare: icalfa's 300 NL->bash tasks -> leak-free chat splits"
$cli prepare --source icalfa

step "train: the versioned QLoRA config on the CPU stand-in (tiny random Qwen2, real tokenizer)"
$cli train "$config" --tiny
run=runs/$(readlink runs/latest)

step "eval: the trained adapter, and the retrieval baseline, on the test split"
$cli eval run --backend hf --run "$run" --limit 16 --max-new-tokens 24 --batch-size 16
$cli eval run --backend retrieval --run runs/retrieval-baseline --limit 16
$cli eval compare runs/retrieval-baseline "$run"

step "merge: adapter into the fp32 base, logits checked"
$cli merge "$run" --dtype float32

step "publish --dry-run: every file with size and sha256, and the model card"
$cli publish "$run" --repo securecli/qwen25-coder-7b-securecli-demo --dry-run --force

step "ask: a plain-language request through the guard (retrieval backend, offline)"
$cli ask "find files over 100MB in /var/log" --backend retrieval --train-path data/prepared/latest/train.jsonl || true

step "export: adapter and base to GGUF (llama.cpp's converters), a Modelfile, one llama.cpp answer (tiny: noise)"
$cli export "$run" --to ollama --convert-base --base-outtype f32 --name securecli-tiny \
  --try "list running docker containers"

step "summary"
echo "prepared data : data/prepared/$(readlink data/prepared/latest)"
echo "run           : $run"
echo "adapter       : $run/adapter/adapter_model.safetensors"
echo "eval report   : $run/eval/report.md"
echo "merged model  : $run/merged"
echo "GGUF LoRA     : $run/export/adapter-f16.gguf (Modelfile: $run/export/Modelfile)"
