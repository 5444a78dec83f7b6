#!/usr/bin/env bash
# Re-resolve requirements.in into requirements.lock (exact versions of the whole closure).
set -euo pipefail
python=${1:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet -r requirements.in
"$scratch/venv/bin/pip" freeze --all --exclude-editable | sed -E 's/^(torch==[0-9.]+)\+cpu$/\1/' > requirements.lock.tmp
mv requirements.lock.tmp requirements.lock
echo "lock: $(wc -l < requirements.lock) packages pinned"
