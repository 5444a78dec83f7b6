"""Benchmark: the BM25 retrieval baseline on the NL2Bash standard split, against a most-frequent-command baseline.

Run: .venv/bin/python bench/retrieval.py [SPLIT_DIR]   (default ../shared/data/nl2bash/split)
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.paths import repo_root  # noqa: E402
from eval.backends import BackendSpec, load_pairs, make_backend  # noqa: E402
from eval.extract import extract_lenient, extract_strict  # noqa: E402
from eval.metrics import ROW_METRICS, aggregate_scores, guard_verdict, score_row  # noqa: E402
from eval.predict import group_references  # noqa: E402


def evaluate(name: str, outputs: list[str], tests: list[tuple[str, list[str]]], seconds: float) -> dict[str, float]:
    """Score raw outputs strictly and leniently, with guard verdict shares and throughput."""
    strict = aggregate_scores(score_row(extract_strict(raw), refs) for raw, (_, refs) in zip(outputs, tests))
    lenient = aggregate_scores(score_row(extract_lenient(raw), refs) for raw, (_, refs) in zip(outputs, tests))
    verdicts = Counter((guard_verdict(raw) or {"verdict": "none"})["verdict"] for raw in outputs)
    result = {f"strict {metric}": strict[metric] for metric in ROW_METRICS}
    result.update({f"lenient {metric}": lenient[metric] for metric in ROW_METRICS})
    result.update({f"guard {verdict}": verdicts.get(verdict, 0) / len(outputs) for verdict in ("allow", "warn", "block")})
    result["requests/s"] = len(outputs) / max(seconds, 1e-9)
    print(f"{name}: {len(outputs)} requests in {seconds:.2f} s")
    return result


def main() -> None:
    """Index train, answer test, print every metric for BM25 and the trivial baseline side by side."""
    split = Path(sys.argv[1]) if len(sys.argv) > 1 else repo_root().parent / "shared" / "data" / "nl2bash" / "split"
    train, test = split / "train.jsonl", split / "test.jsonl"
    test_pairs = load_pairs(test)
    tests = [(request, refs) for (request, _), refs in zip(test_pairs, group_references(test_pairs))]
    requests = [request for request, _ in tests]
    began = time.perf_counter()
    backend = make_backend(BackendSpec(kind="retrieval", train_path=train))
    bm25_outputs = [generation.raw for generation in backend.generate(requests)]
    bm25 = evaluate("bm25 (incl. indexing)", bm25_outputs, tests, time.perf_counter() - began)
    began = time.perf_counter()
    most_frequent = Counter(command for _, command in load_pairs(train)).most_common(1)[0][0]
    baseline = evaluate(f"most frequent command {most_frequent!r}", [most_frequent] * len(requests), tests,
                        time.perf_counter() - began)
    print(f"\nNL2Bash test split: {len(tests)} requests, index {len(backend.pairs)} train pairs ({split})\n")
    print(f"{'metric':<22}{'bm25':>10}{'baseline':>10}{'ratio':>10}{'diff':>10}")
    for metric, value in bm25.items():
        base = baseline[metric]
        ratio = f"{value / base:.2f}x" if base > 0 else "n/a"
        print(f"{metric:<22}{value:>10.3f}{base:>10.3f}{ratio:>10}{value - base:>+10.3f}")
    shifted = [(run["lenient nlc2cmd"] + 1.0) / 2.0 for run in (bm25, baseline)]
    print(f"\nheadline: NLC2CMD rescaled to [0, 1]: bm25 {shifted[0]:.3f} vs most-frequent {shifted[1]:.3f} "
          f"-> {shifted[0] / max(shifted[1], 1e-9):.2f}x")


if __name__ == "__main__":
    main()
