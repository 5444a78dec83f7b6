"""Suite-wide setup: everything offline, one shared tiny-model cache, shared tiny training data."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "AXOLOTL_DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
for key, value in OFFLINE.items():
    os.environ.setdefault(key, value)
os.environ.setdefault("SECURECLI_MODELS", str(REPO / "data" / "models"))

REPEATED_PAIRS = [
    ("list all files in the current directory", "ls -la"),
    ("show free disk space in human readable units", "df -h"),
    ("list running docker containers", "docker ps"),
    ("print the current working directory", "pwd"),
    ("count the lines in notes.txt", "wc -l notes.txt"),
    ("show every running process", "ps aux"),
]


def write_chat_dataset(folder: Path, repeats: int = 10) -> Path:
    """Write a tiny prepared dataset (train/val chat JSONL) of repeated pairs, as `securecli prepare` lays it out."""
    from common.prompt import plain_text_row, training_row

    def row(nl: str, command: str) -> dict:
        return {**training_row(nl, command), "text": plain_text_row(nl, command)}

    folder.mkdir(parents=True, exist_ok=True)
    train = [row(nl, command) for _ in range(repeats) for nl, command in REPEATED_PAIRS]
    val = [row(nl, command) for nl, command in REPEATED_PAIRS]
    files = {}
    for name, rows in (("train.jsonl", train), ("val.jsonl", val), ("test.jsonl", val)):
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        (folder / name).write_bytes(data)
        files[name] = hashlib.sha256(data).hexdigest()
    manifest = {
        "dataset_hash": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16],
        "files": files,
        "sources": [{"spec": "tests:repeated-pairs", "revision": None}],
        "parameters": {"repeats": repeats},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return folder


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny random Qwen2 with the real Qwen tokenizer, built once per cache."""
    from common.tiny import build_tiny_model

    return build_tiny_model()
