"""Dataset loader for `securecli_shell_mc.yaml`: reads `shell_mc.jsonl` next to this file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).with_name("shell_mc.jsonl")


def load_splits(**_options: Any) -> dict[str, Any]:
    """Return the test split; lm-eval passes the task metadata as keyword options, which are unused."""
    from datasets import load_dataset

    return {"test": load_dataset("json", data_files=str(DATA_FILE), split="train")}
