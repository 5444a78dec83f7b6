"""One eval run: predictions and metrics on a split, plus execution, safety and regression suites."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from common.atomic import write_json_atomic, write_text_atomic
from common.jsonl import write_jsonl
from common.paths import runs_dir
from eval.backends import BackendSpec, make_backend
from eval.metrics import aggregate_predictions
from eval.predict import load_split, predict, resolve_data_dir
from eval.report import render_chart, render_report


class EvalPlan(BaseModel):
    """What one `securecli eval run` does: the backend, the data and which suites to add."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendSpec
    data: Path
    split: str = "test"
    limit: int | None = None
    execution: bool = True
    safety: bool = True
    regression: str | None = None
    regression_limit: int | None = None


def resolve_run_dir(run: str | None, kind: str) -> Path:
    """Return the run directory: a path as given, a name under `runs/`, or a new timestamped name."""
    if run is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        return runs_dir() / f"eval-{kind}-{stamp}"
    candidate = Path(run)
    if candidate.is_dir() or len(candidate.parts) > 1:
        return candidate
    return runs_dir() / run


def trained_model(run_dir: Path) -> tuple[str, str] | None:
    """Return (base model, adapter dir) when `run_dir` is a `securecli train` run, else None."""
    import yaml

    config, adapter = run_dir / "config.yml", run_dir / "adapter"
    if not (config.is_file() and (adapter / "adapter_config.json").is_file()):
        return None
    return str(yaml.safe_load(config.read_text(encoding="utf-8"))["base_model"]), str(adapter)


def run_eval(plan: EvalPlan, run_dir: Path) -> dict[str, Any]:
    """Run the plan, write `<run_dir>/eval/{predictions.jsonl, metrics.json, report.md, chart.png}`."""
    if plan.regression and plan.backend.kind != "hf":
        raise ValueError("--regression runs lm-eval on a transformers model: it needs --backend hf")
    out_dir = run_dir / "eval"
    rows = load_split(plan.data, plan.split, plan.limit)
    backend = make_backend(plan.backend)
    predictions = predict(backend, rows)
    write_jsonl(out_dir / "predictions.jsonl", predictions)
    metrics: dict[str, Any] = {
        "backend": backend.name,
        "spec": plan.backend.model_dump(mode="json"),
        "data": str(plan.data),
        "split": plan.split,
        "limit": plan.limit,
        "generation": aggregate_predictions(predictions),
    }
    if plan.execution:
        from eval.execution import evaluate_execution

        train_split = plan.data / "train.jsonl"
        metrics["execution"] = evaluate_execution(
            backend, out_dir, limit=plan.limit, train_split=train_split if train_split.is_file() else None
        )
    if plan.safety:
        from eval.safety import evaluate_safety

        metrics["safety"] = evaluate_safety(backend, out_dir)
    if plan.regression:
        from eval.regression import evaluate_regression

        metrics["regression"] = evaluate_regression(
            str(plan.backend.base_model), plan.backend.adapter, plan.regression, plan.regression_limit, out_dir
        )
    metrics["metrics"] = headline(metrics)
    metrics["dataset"] = {"name": "securecli-prepared", "dataset_hash": plan.data.name, "split": plan.split}
    write_json_atomic(out_dir / "metrics.json", metrics)
    write_text_atomic(out_dir / "report.md", render_report(metrics))
    render_chart(metrics, out_dir / "chart.png")
    return metrics


def execution_note(metrics: dict[str, Any], out_dir: Path) -> str | None:
    """Return the one line to print when execution accuracy could not be scored here, else None."""
    execution = metrics.get("execution") or {}
    if execution.get("status") != "unavailable":
        return None
    predictions = out_dir / execution["predictions"]
    return (f"execution accuracy not scored: {execution['reason']}; every other metric is written, and the "
            f"predictions are in {predictions}: score them where the sandbox works with "
            f"`securecli eval exec --pred {predictions}`")


def score_execution_later(pred: Path, out_dir: Path | None = None, workers: int | None = None) -> dict[str, Any]:
    """Score an eval run's `execution_predictions.jsonl` in the sandbox; update that run's metrics and report."""
    import json

    from eval.execution import DEFAULT_WORKERS, score_predictions_file

    out_dir = out_dir or pred.parent
    execution = score_predictions_file(pred, out_dir, workers or DEFAULT_WORKERS)
    metrics_path = out_dir / "metrics.json"
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{metrics_path}:{error.lineno}: not valid JSON ({error.msg})") from error
        metrics["execution"] = execution
        metrics["metrics"] = headline(metrics)
        write_json_atomic(metrics_path, metrics)
        write_text_atomic(out_dir / "report.md", render_report(metrics))
        render_chart(metrics, out_dir / "chart.png")
    return execution


def base_spec(spec: BackendSpec) -> BackendSpec:
    """Return the backend spec of the base model an adapter run is compared with.

    hf: the same base without the adapter; openai: the server's model named by `base_model`
    (vLLM serves the base under its name and each LoRA under its own).
    """
    if spec.kind == "hf":
        if not spec.adapter:
            raise ValueError("--compare-base needs an adapter: pass --adapter or --run with a training run")
        return spec.model_copy(update={"adapter": None})
    if spec.kind == "openai":
        if not spec.base_model:
            raise ValueError(
                "--compare-base with --backend openai needs --base-model: the base model's name on the server")
        return spec.model_copy(update={"model": spec.base_model})
    raise ValueError("--compare-base compares a base model with its adapter: it needs --backend hf or openai")


def model_label(spec: BackendSpec, role: str) -> str:
    """Return a table label for one side of the comparison."""
    if spec.kind == "hf":
        return f"{role}: {spec.base_model}" + (f" + {spec.adapter}" if spec.adapter else "")
    return f"{role}: {spec.model} (openai at {spec.base_url})"


def run_comparison(plan: EvalPlan, run_dir: Path) -> dict[str, Any]:
    """Evaluate the base model (into `<run_dir>/base/eval/`) and the adapter (into `<run_dir>/eval/`) on the
    same tasks; write the paper-shaped table as `<run_dir>/eval/comparison.{json,md}` and into metrics.json."""
    from eval.comparison import comparison, render_markdown

    base = plan.model_copy(update={"backend": base_spec(plan.backend)})
    base_metrics = run_eval(base, run_dir / "base")
    tuned_metrics = run_eval(plan, run_dir)
    table = comparison([(model_label(base.backend, "base"), base_metrics),
                        (model_label(plan.backend, "adapter"), tuned_metrics)])
    out_dir = run_dir / "eval"
    tuned_metrics["comparison"] = table
    write_json_atomic(out_dir / "comparison.json", table)
    write_text_atomic(out_dir / "comparison.md", render_markdown(table))
    write_json_atomic(out_dir / "metrics.json", tuned_metrics)
    write_text_atomic(out_dir / "report.md", render_report(tuned_metrics))
    return tuned_metrics


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """Return the few numbers a model card leads with (strict command-only scoring first)."""
    generation = metrics["generation"]
    numbers: dict[str, Any] = {
        "exact_match": generation["strict"]["exact"],
        "equivalence_match": generation["strict"]["equivalent"],
        "template_accuracy": generation["strict"]["template"],
        "nlc2cmd": generation["strict"]["nlc2cmd"],
        "lenient_equivalence_match": generation["lenient"]["equivalent"],
        "command_only_rate": generation["command_only_rate"],
        "execution_accuracy": (metrics.get("execution") or {}).get("accuracy"),
        "execution_accuracy_first_reference": (metrics.get("execution") or {}).get("accuracy_first_reference"),
        "execution_accuracy_unordered_lines": (metrics.get("execution") or {}).get("accuracy_unordered_lines"),
        "adversarial_pass_rate": (metrics.get("safety") or {}).get("adversarial_pass_rate"),
        "guarded_adversarial_pass_rate": (metrics.get("safety") or {}).get("guarded_adversarial_pass_rate"),
        "benign_pass_rate": (metrics.get("safety") or {}).get("benign_pass_rate"),
        "near_miss_pass_rate": (metrics.get("safety") or {}).get("near_miss_pass_rate"),
    }
    return {name: float(value) for name, value in numbers.items() if isinstance(value, (int, float))}


def plan_from_options(
    backend: str,
    data: Path | None = None,
    train: Path | None = None,
    **options: Any,
) -> EvalPlan:
    """Build a plan from CLI-style options; the retrieval index defaults to the data's train split."""
    data_dir = resolve_data_dir(data)
    spec_fields = set(BackendSpec.model_fields) - {"kind", "train_path"}
    spec_options = {key: value for key, value in options.items() if key in spec_fields and value is not None}
    if backend == "retrieval":
        spec_options["train_path"] = train or data_dir / "train.jsonl"
    spec = BackendSpec(kind=backend, **spec_options)
    plan_options = {key: value for key, value in options.items() if key not in spec_fields}
    return EvalPlan(backend=spec, data=data_dir, **plan_options)
