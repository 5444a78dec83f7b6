"""Benchmark: batched greedy hf generation on the tiny model against batch size 1 (target >= 4x).

Run: .venv/bin/python bench/generation.py [REQUESTS] [BATCH_SIZE]   (default 64 requests, batch 32)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common.tiny import build_tiny_model  # noqa: E402
from eval.backends import BackendSpec, HFBackend  # noqa: E402

REQUESTS = [
    "list all files including hidden ones",
    "show disk usage of every mounted filesystem in human readable form",
    "count the lines of every python file below the current directory",
    "print the ten largest files in /var/log",
    "show running docker containers",
    "find files modified in the last day",
]
NEW_TOKENS = 16


def timed(backend: HFBackend, requests: list[str]) -> tuple[float, list[str]]:
    """Return the seconds one pass over the requests takes, and the outputs."""
    began = time.perf_counter()
    outputs = backend.generate(requests)
    return time.perf_counter() - began, [output.raw for output in outputs]


def main() -> None:
    """Time batch size 1 and the batched backend on the same requests and print the throughput ratio."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    batch_size = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    requests = [REQUESTS[index % len(REQUESTS)] + f" (case {index})" for index in range(count)]
    model = str(build_tiny_model())
    single = HFBackend(BackendSpec(kind="hf", base_model=model, batch_size=1, max_new_tokens=NEW_TOKENS, device="cpu"))
    batched = HFBackend(BackendSpec(kind="hf", base_model=model, batch_size=batch_size, max_new_tokens=NEW_TOKENS,
                                    device="cpu"))
    batched.generate(requests[:2])
    single_seconds, single_outputs = timed(single, requests)
    batched_seconds, batched_outputs = timed(batched, requests)
    if single_outputs != batched_outputs:
        raise SystemExit("batched and unbatched greedy outputs differ: left padding is broken")
    print(f"tiny Qwen2, {count} requests, up to {NEW_TOKENS} new tokens each, greedy, CPU; outputs identical")
    print(f"batch size 1:  {single_seconds:7.2f} s  {count / single_seconds:7.2f} requests/s")
    print(f"batch size {batch_size:<2}: {batched_seconds:7.2f} s  {count / batched_seconds:7.2f} requests/s")
    print(f"throughput ratio (batched / batch 1): {single_seconds / batched_seconds:.2f}x (target >= 4x)")


if __name__ == "__main__":
    main()
