"""Base vs adapter on the same tasks, in the paper's table shape, beside the paper's published figures.

Our rows are measured (execution accuracy by strict stdout + file-system equality, any reference
first, then our other metrics); the paper's rows are read from `eval/suites/nl2sh_alfa_published.yaml`
and labelled as published, never as ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

PUBLISHED = Path(__file__).parent / "suites" / "nl2sh_alfa_published.yaml"
OUR_JUDGE = "strict execution: stdout and file-system diff equal to gold's or gold2's run"
# (column key, header, where it comes from in metrics.json)
COLUMNS = (
    ("execution_accuracy", "execution accuracy (any reference)", ("execution", "accuracy")),
    ("execution_first_reference", "first reference", ("execution", "accuracy_first_reference")),
    ("execution_unordered_lines", "line order ignored", ("execution", "accuracy_unordered_lines")),
    ("execution_lenient", "+ timestamps masked", ("execution", "accuracy_lenient")),
    ("nlc2cmd", "NLC2CMD (icalfa, best reference)", ("execution", "reference_metrics", "nlc2cmd")),
    ("template", "template (icalfa)", ("execution", "reference_metrics", "template")),
    ("equivalent", "equivalence (icalfa)", ("execution", "reference_metrics", "equivalent")),
    ("split_equivalent", "equivalence (test split)", ("generation", "strict", "equivalent")),
    ("kept_tasks", "tasks scored", ("execution", "kept")),
)


class PublishedRow(BaseModel):
    """One model's published execution accuracy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    execution_accuracy: float = Field(ge=0, le=1)


class PublishedTable(BaseModel):
    """The paper's figures, its source and its judge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    judge: str
    rows: list[PublishedRow]


def published_table(path: Path = PUBLISHED) -> PublishedTable:
    """Read and validate the published figures."""
    try:
        return PublishedTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


def _pick(metrics: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = metrics
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def measured_row(label: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Return our row for one eval run's metrics."""
    return {"model": label, "source": "measured here", "judge": OUR_JUDGE,
            **{key: _pick(metrics, path) for key, _, path in COLUMNS}}


def comparison(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Return the table: our measured rows, then the paper's published rows, labelled."""
    paper = published_table()
    reference = [{"model": row.model, "source": f"published: {paper.source}", "judge": paper.judge,
                  "execution_accuracy": row.execution_accuracy} for row in paper.rows]
    return {
        "columns": [{"key": key, "header": header} for key, header, _ in COLUMNS],
        "rows": [measured_row(label, metrics) for label, metrics in rows] + reference,
        "note": f"Ours: {OUR_JUDGE}. Paper: {paper.judge}. Ours is the stricter judge.",
    }


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_markdown(table: Mapping[str, Any]) -> str:
    """Render the comparison as a Markdown table with its note."""
    headers = ["model", *(column["header"] for column in table["columns"]), "source"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in table["rows"]:
        cells = [row["model"], *(_cell(row.get(column["key"])) for column in table["columns"]), row["source"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{table['note']}\n"
