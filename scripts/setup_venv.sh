#!/usr/bin/env bash
# Create .venv from requirements.lock; a second run does nothing while the lock and pyproject are unchanged.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
lock_hash=$(sha256sum requirements.lock | cut -d' ' -f1)
project_hash=$(sha256sum pyproject.toml | cut -d' ' -f1)

pip_install() {
  # The machine's pip config lists extra local indexes that do not exist; drop only those warnings.
  "$venv/bin/pip" install --quiet --no-deps --require-virtualenv "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
}

if [[ ! -f "$venv/.lock.sha256" || "$(cat "$venv/.lock.sha256")" != "$lock_hash" ]]; then
  echo "setup: creating $venv from requirements.lock"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  pip_install -r requirements.lock
  echo "$lock_hash" > "$venv/.lock.sha256"
fi
if [[ ! -f "$venv/.project.sha256" || "$(cat "$venv/.project.sha256")" != "$project_hash" ]]; then
  pip_install --no-build-isolation -e .
  "$venv/bin/python" -c "import axolotl.cli, torch, commandrisk, securecli.cli" >/dev/null
  echo "$project_hash" > "$venv/.project.sha256"
  echo "setup: ready ($("$venv/bin/python" -c 'import torch, axolotl; print("torch", torch.__version__, "axolotl", axolotl.__version__)'))"
fi
