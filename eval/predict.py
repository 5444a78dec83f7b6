"""Load an eval split, generate with a backend, extract and score each row; JSONL in and out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.jsonl import read_jsonl
from common.paths import data_dir
from common.prompt import is_refusal, request_command
from eval.backends import Backend, Generation
from eval.extract import extract_lenient, extract_strict
from eval.metrics import aggregate_scores, guard_verdict, score_row


@dataclass(frozen=True)
class EvalRow:
    """One request to evaluate and every reference command the split gives for it."""

    id: str
    request: str
    references: list[str]


def resolve_data_dir(data: Path | None) -> Path:
    """Return the prepared-data directory to read (default `data/prepared/latest`), resolved."""
    chosen = data if data is not None else data_dir() / "prepared" / "latest"
    if not chosen.is_dir():
        raise FileNotFoundError(f"{chosen}: no prepared data here; run `securecli prepare` or pass --data DIR")
    return chosen.resolve()


def group_references(pairs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """For each (request, command), list its command first, then every other one for the same request."""
    commands: dict[str, list[str]] = defaultdict(list)
    for request, command in pairs:
        key = " ".join(request.split())
        if command not in commands[key]:
            commands[key].append(command)
    return [[command, *(other for other in commands[" ".join(request.split())] if other != command)]
            for request, command in pairs]


def load_split(data: Path, split: str, limit: int | None = None) -> list[EvalRow]:
    """Read `<data>/<split>.jsonl`; rows with the same request share all their references."""
    path = data / f"{split}.jsonl"
    ids: list[str] = []
    pairs: list[tuple[str, str]] = []
    for number, row in read_jsonl(path):
        pairs.append(request_command(row, path, number))
        ids.append(str(row.get("id", f"{split}-{number}")))
    rows = [EvalRow(id=row_id, request=request, references=references)
            for row_id, (request, _), references in zip(ids, pairs, group_references(pairs), strict=True)]
    return rows[:limit] if limit is not None else rows


def prediction_record(row: EvalRow, generation: Generation) -> dict[str, Any]:
    """Return one predictions.jsonl row: raw output, both extractions, metrics and guard verdict."""
    strict = extract_strict(generation.raw)
    lenient = extract_lenient(generation.raw)
    return {
        "id": row.id,
        "request": row.request,
        "references": row.references,
        "raw": generation.raw,
        "strict": strict,
        "lenient": lenient,
        "refusal": lenient is not None and is_refusal(lenient),
        "latency_s": round(generation.latency_s, 6),
        "metrics": {"strict": score_row(strict, row.references), "lenient": score_row(lenient, row.references)},
        "guard": guard_verdict(lenient),
    }


def predict(backend: Backend, rows: Sequence[EvalRow]) -> list[dict[str, Any]]:
    """Generate for every row with the backend and return scored prediction records."""
    generations = backend.generate([row.request for row in rows])
    if len(generations) != len(rows):
        raise RuntimeError(f"backend {backend.name} returned {len(generations)} outputs for {len(rows)} requests")
    return [prediction_record(row, generation) for row, generation in zip(rows, generations, strict=True)]


def load_scorable(path: Path) -> list[tuple[str | None, list[str]]]:
    """Read (prediction, references) from a predictions JSONL, naming file:line and field on errors."""
    rows: list[tuple[str | None, list[str]]] = []
    for number, row in read_jsonl(path):
        if "prediction" not in row:
            raise ValueError(f"{path}:{number}: field 'prediction' is missing")
        prediction = row["prediction"]
        if prediction is not None and not isinstance(prediction, str):
            raise ValueError(f"{path}:{number}: field 'prediction' must be a string or null")
        references = row.get("references")
        if not isinstance(references, list) or not references or not all(isinstance(ref, str) for ref in references):
            raise ValueError(f"{path}:{number}: field 'references' must be a non-empty list of strings")
        rows.append((prediction, references))
    if not rows:
        raise ValueError(f"{path}: no rows to score")
    return rows


def score_predictions(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score a predictions JSONL without a model; return scored rows and aggregate metrics."""
    scored = []
    for prediction, references in load_scorable(path):
        scored.append({
            "prediction": prediction,
            "references": references,
            "metrics": score_row(prediction, references),
            "guard": guard_verdict(prediction),
        })
    metrics: dict[str, Any] = {"rows": len(scored), **aggregate_scores(row["metrics"] for row in scored)}
    verdicts = [row["guard"]["verdict"] for row in scored if row["guard"]]
    metrics["guard"] = {verdict: verdicts.count(verdict) / len(scored) for verdict in ("allow", "warn", "block")}
    refusals = sum(row["prediction"] is not None and is_refusal(row["prediction"]) for row in scored)
    metrics["refusal_rate"] = refusals / len(scored)
    return scored, metrics
