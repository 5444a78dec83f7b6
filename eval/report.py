"""Eval outputs: metrics.json, report.md, chart.png, and the side-by-side comparison of two runs."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.atomic import write_bytes_atomic
from common.jsonl import flatten_json
from common.paths import runs_dir
from eval.metrics import ROW_METRICS

METRIC_LABELS = {
    "exact": "exact match",
    "equivalent": "equivalence-normalised match",
    "template": "NL2Bash template accuracy",
    "nlc2cmd": "NLC2CMD score (-1..1)",
}


def _fmt(value: Any) -> str:
    """Format a metric value for a table cell."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_report(metrics: Mapping[str, Any]) -> str:
    """Return the Markdown report of one eval run."""
    generation = metrics["generation"]
    lines = [
        f"# Evaluation: {metrics['backend']}",
        "",
        f"- data: `{metrics['data']}` split `{metrics['split']}`, {generation['rows']} rows",
        f"- command-only (strict extraction) rate: {_fmt(generation['command_only_rate'])}",
        f"- lenient extraction rate: {_fmt(generation['lenient_extracted_rate'])}",
        f"- refusal rate: {_fmt(generation['refusal_rate'])}; refusal recall: "
        f"{_fmt(generation['refusal_recall'])}; over-refusal: {_fmt(generation['over_refusal_rate'])}",
        f"- latency (s): mean {_fmt(generation['latency_s']['mean'])}, p50 {_fmt(generation['latency_s']['p50'])}, "
        f"p95 {_fmt(generation['latency_s']['p95'])}",
        "",
        "## Accuracy",
        "",
        "| metric | strict | lenient |",
        "|---|---|---|",
    ]
    for name in ROW_METRICS:
        lines.append(f"| {METRIC_LABELS[name]} | {_fmt(generation['strict'][name])} | {_fmt(generation['lenient'][name])} |")
    lines += ["", "## Guard verdicts on the (lenient) predictions", "", "| verdict | share |", "|---|---|"]
    lines += [f"| {verdict} | {_fmt(generation['guard'].get(verdict))} |" for verdict in ("allow", "warn", "block")]
    if metrics.get("safety"):
        from eval.safety import side_by_side

        lines += ["", "## Safety: the model alone and the model with both guards", "",
                  f"Gates use the model-alone figures. Gates passed: {_fmt(metrics['safety'].get('gates_passed'))}.",
                  "", "| figure | model alone | model + both guards |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(alone)} | {_fmt(guarded)} |" for name, alone, guarded in side_by_side(metrics["safety"])]
    for section in ("execution", "safety", "regression"):
        if metrics.get(section):
            lines += ["", f"## {section.capitalize()}", ""]
            if metrics[section].get("status") == "unavailable":
                lines += [f"Not scored: {metrics[section]['reason']}. The predictions are in "
                          f"`{metrics[section]['predictions']}`; `securecli eval exec --pred` scores them.", ""]
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {key} | {_fmt(value)} |" for key, value in flatten(metrics[section]).items()]
    if metrics.get("comparison"):
        from eval.comparison import render_markdown

        lines += ["", "## Base vs adapter, beside the published figures", "", render_markdown(metrics["comparison"])]
    lines += ["", "![metrics](chart.png)", ""]
    return "\n".join(lines)


def render_chart(metrics: Mapping[str, Any], path: Path) -> None:
    """Draw strict vs lenient accuracy and the guard verdict shares into a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generation = metrics["generation"]
    suites = suite_scores(metrics)
    panels = 3 if suites else 2
    figure, axes = plt.subplots(1, panels, figsize=(5 + 3 * panels, 4),
                                gridspec_kw={"width_ratios": [3, 2, 2][:panels]})
    accuracy, guard = axes[0], axes[1]
    positions = range(len(ROW_METRICS))
    width = 0.38
    for offset, mode in ((-width / 2, "strict"), (width / 2, "lenient")):
        accuracy.bar([p + offset for p in positions], [generation[mode][name] for name in ROW_METRICS], width, label=mode)
    accuracy.set_xticks(list(positions), ["exact", "equivalent", "template", "NLC2CMD"], fontsize=8)
    accuracy.set_ylim(-1, 1)
    accuracy.axhline(0, color="black", linewidth=0.6)
    accuracy.set_title(f"{metrics['backend']} on {metrics['split']} ({generation['rows']} rows)", fontsize=9)
    accuracy.legend(fontsize=8)
    verdicts = ["allow", "warn", "block"]
    guard.bar(verdicts, [generation["guard"].get(verdict) or 0.0 for verdict in verdicts],
              color=["#4c9", "#fb4", "#e55"])
    guard.set_ylim(0, 1)
    guard.set_title("guard verdicts on predictions", fontsize=9)
    if suites:
        axes[2].bar(list(suites), list(suites.values()), color="#69c")
        axes[2].set_ylim(0, 1)
        axes[2].tick_params(axis="x", labelsize=7, labelrotation=20)
        axes[2].set_title("execution, safety and regression", fontsize=9)
    figure.tight_layout()
    image = io.BytesIO()
    try:
        figure.savefig(image, format="png", dpi=110, metadata={"Software": None})
    finally:
        plt.close(figure)
    write_bytes_atomic(path, image.getvalue())


def suite_scores(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Return the headline rates of the execution, safety and regression suites that ran."""
    headline = metrics.get("metrics") or {}
    scores = {name.replace("_", " "): float(headline[name])
              for name in ("execution_accuracy", "adversarial_pass_rate", "guarded_adversarial_pass_rate",
                           "benign_pass_rate") if name in headline}
    for task, task_metrics in ((metrics.get("regression") or {}).get("results") or {}).items():
        if isinstance(task_metrics.get("acc"), (int, float)):
            scores[f"{task} acc"] = float(task_metrics["acc"])
    return scores


def flatten(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten nested metrics to dotted keys, keeping numbers, booleans and None."""
    return {key: value for key, value in flatten_json(dict(tree)).items()
            if value is None or isinstance(value, (int, float, bool))}


def find_metrics(reference: str) -> Path:
    """Locate metrics.json from a file, an eval directory, a run directory or a run name."""
    candidate = Path(reference)
    options = [candidate, candidate / "metrics.json", candidate / "eval" / "metrics.json",
               runs_dir() / reference / "eval" / "metrics.json"]
    for option in options:
        if option.is_file():
            return option
    raise FileNotFoundError(f"{reference}: no metrics.json (looked in {', '.join(str(o) for o in options[1:])})")


def load_metrics(reference: str) -> dict[str, Any]:
    """Read the metrics.json a reference points at."""
    path = find_metrics(reference)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from error


def describe_run(reference: str) -> str:
    """Return a run reference with the versioned config it trained (e.g. V2's or ours), when it is a training run."""
    manifest = find_metrics(reference).parent.parent / "manifest.json"
    try:
        config = json.loads(manifest.read_text(encoding="utf-8"))["versioned_config"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return reference
    return f"{reference} ({Path(config).name})"


def compare_table(base: Mapping[str, Any], tuned: Mapping[str, Any], base_name: str, tuned_name: str):  # noqa: ANN201
    """Return a rich table of every metric of either run (base vs fine-tuned, or V2 vs ours) and their difference."""
    from rich.table import Table

    left, right = flatten(base), flatten(tuned)
    table = Table(title="A vs B")
    table.add_column("metric")
    table.add_column(f"A: {base_name}", justify="right")
    table.add_column(f"B: {tuned_name}", justify="right")
    table.add_column("B - A", justify="right")
    for key in [*left, *(key for key in right if key not in left)]:
        a, b = left.get(key), right.get(key)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        delta = f"{b - a:+.3f}" if numeric else ""
        table.add_row(key, _fmt(a), _fmt(b), delta)
    return table
