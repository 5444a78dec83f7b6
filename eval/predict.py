"""Load an eval split, generate with a backend, extract and score each row; JSONL in and out."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.backends import Backend, Generation
from eval.extract import extract_lenient, extract_strict
from eval.metrics import aggregate_scores, guard_verdict, score_row
from securecli.atomic import write_text_atomic
from securecli.paths import data_dir
from securecli.prompt import is_refusal


@dataclass(frozen=True)
class EvalRow:
    """One request to evaluate and every reference command the split gives for it."""

    id: str
    request: str
    references: list[str]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows as JSON lines, atomically."""
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows))


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a bad line raises naming file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            yield number, row


def resolve_data_dir(data: Path | None) -> Path:
    """Return the prepared-data directory to read (default `data/prepared/latest`), resolved."""
    chosen = data if data is not None else data_dir() / "prepared" / "latest"
    if not chosen.is_dir():
        raise FileNotFoundError(f"{chosen}: no prepared data here; run `securecli prepare` or pass --data DIR")
    return chosen.resolve()


def request_command(row: dict[str, Any], path: Path, number: int) -> tuple[str, str]:
    """Return (request, command) of a chat row (`messages`) or an NL2Bash row (`nl`, `bash`)."""
    if "messages" not in row:
        for field_name in ("nl", "bash"):
            if not isinstance(row.get(field_name), str):
                raise ValueError(f"{path}:{number}: field {field_name!r} missing or not a string (or give 'messages')")
        return row["nl"], row["bash"]
    messages = row["messages"]
    if not isinstance(messages, list):
        raise ValueError(f"{path}:{number}: field 'messages' is not a list")
    found: dict[str, str] = {}
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise ValueError(f"{path}:{number}: field 'messages[{position}].content' missing or not a string")
        found.setdefault(str(message.get("role")), message["content"])
    for role in ("user", "assistant"):
        if role not in found:
            raise ValueError(f"{path}:{number}: field 'messages' has no {role!r} message")
    return found["user"], found["assistant"]


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
