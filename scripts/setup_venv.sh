#!/usr/bin/env bash
# Create .venv from requirements.lock; do nothing when the installed lock hash already matches.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f "$venv/.lock.sha256" && "$(cat "$venv/.lock.sha256")" == "$want" ]]; then
  exit 0
fi
echo "setup: creating $venv from requirements.lock"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --no-deps --require-virtualenv -r requirements.lock
"$venv/bin/pip" install --quiet --no-deps --no-build-isolation -e .
"$venv/bin/python" -c "import axolotl, torch, commandrisk, securecli" >/dev/null
echo "$want" > "$venv/.lock.sha256"
echo "setup: done ($("$venv/bin/python" -c 'import torch, axolotl; print("torch", torch.__version__, "axolotl", axolotl.__version__)'))"
