"""`securecli eval run`, `eval exec --pred FILE`, `eval compare A B` and `securecli score --pred FILE`."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class BackendKind(str, Enum):
    """Backends `eval run` can generate with."""

    hf = "hf"
    openai = "openai"
    retrieval = "retrieval"


def _fail(error: Exception) -> typer.Exit:
    """Print a one-line error in red and return the exit to raise."""
    from common.console import CliConsole

    CliConsole(stderr=True).error(error)
    return typer.Exit(code=2)


def eval_run(
    backend: Annotated[BackendKind, typer.Option(help="hf, openai or retrieval")],
    base_model: Annotated[Optional[str], typer.Option(
        help="hf: model directory or Hub id; openai --compare-base: the base model's name on the server")] = None,
    adapter: Annotated[Optional[str], typer.Option(help="hf: PEFT adapter directory or ORG/NAME@REV")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="openai: server URL ending in /v1")] = None,
    model: Annotated[Optional[str], typer.Option(help="openai: model name on the server")] = None,
    api_key_env: Annotated[str, typer.Option(help="openai: environment variable holding the API key")] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(min=1, help="openai: requests in flight at once (outputs keep their order)")] = 8,
    max_retries: Annotated[int, typer.Option(min=0, help="openai: retries of a 408/409/429/5xx reply or lost connection")] = 3,
    train: Annotated[Optional[Path], typer.Option(help="retrieval: index file (default <data>/train.jsonl)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="prepared data directory (default data/prepared/latest)")] = None,
    split: Annotated[str, typer.Option(help="split to evaluate")] = "test",
    limit: Annotated[Optional[int], typer.Option(min=1, help="first N rows (and N execution tasks)")] = None,
    run: Annotated[Optional[str], typer.Option(help="run directory or name under runs/; hf reads a training run's base and adapter")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="hf: generation batch size")] = 8,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="tokens to generate per request")] = 128,
    device: Annotated[str, typer.Option(help="hf: auto, cpu or cuda[:N]")] = "auto",
    execution: Annotated[bool, typer.Option(help="run the icalfa execution-accuracy harness")] = True,
    safety: Annotated[bool, typer.Option(help="run the adversarial safety suite")] = True,
    regression: Annotated[Optional[str], typer.Option(help="lm-eval task(s) to run, e.g. mmlu_high_school_cs")] = None,
    regression_limit: Annotated[Optional[int], typer.Option(min=1, help="lm-eval examples per task")] = None,
    compare_base: Annotated[bool, typer.Option(
        "--compare-base", help="also evaluate the base model on the same tasks (into <run>/base/eval/) and write "
        "<run>/eval/comparison.md: base, adapter and the paper's published figures")] = False,
) -> None:
    """Generate on a split, score it and write runs/<run>/eval/{predictions.jsonl, metrics.json, report.md, chart.png}."""
    from common.console import CliConsole
    from eval.run import execution_note, plan_from_options, resolve_run_dir, run_comparison, run_eval, trained_model

    try:
        run_dir = resolve_run_dir(run, backend.value)
        if backend is BackendKind.hf and base_model is None and adapter is None:
            base_model, adapter = trained_model(run_dir) or (None, None)
        plan = plan_from_options(
            backend.value, data=data, train=train, base_model=base_model, adapter=adapter, base_url=base_url,
            model=model, api_key_env=api_key_env, concurrency=concurrency, max_retries=max_retries,
            batch_size=batch_size, max_new_tokens=max_new_tokens,
            device=device, split=split, limit=limit, execution=execution, safety=safety,
            regression=regression, regression_limit=regression_limit,
        )
        metrics = run_comparison(plan, run_dir) if compare_base else run_eval(plan, run_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise _fail(error) from error
    generation = metrics["generation"]
    console = CliConsole()
    console.print(f"[bold]{metrics['backend']}[/] on {generation['rows']} rows -> {run_dir / 'eval'}")
    for mode in ("strict", "lenient"):
        scores = ", ".join(f"{name} {value:.3f}" for name, value in generation[mode].items())
        console.print(f"  {mode}: {scores}")
    if safety := metrics.get("safety"):
        from eval.safety import side_by_side

        figures = ", ".join(f"{name} {alone:.3f} / {guarded:.3f}" for name, alone, guarded in side_by_side(safety)
                            if name.startswith(("adversarial", "over-refusal")) and guarded is not None)
        gates = "passed" if safety["gates_passed"] else "FAILED"
        console.print(f"  safety (model alone / with both guards): {figures}; gates on the model alone: {gates}",
                      soft_wrap=True)
    if metrics.get("comparison"):
        from eval.comparison import render_markdown

        console.print(render_markdown(metrics["comparison"]), markup=False, highlight=False, soft_wrap=True)
        console.print(f"table written to {run_dir / 'eval' / 'comparison.md'}")
    note = execution_note(metrics, run_dir / "eval")
    if note:
        CliConsole(stderr=True).print(f"[bold yellow]warning:[/] {note}", highlight=False, soft_wrap=True)


def eval_exec(
    pred: Annotated[Path, typer.Option(help="execution_predictions.jsonl written by `eval run`")],
    out: Annotated[Optional[Path], typer.Option(help="directory for execution.jsonl (default: the file's own); "
                                                     "its metrics.json and report are updated")] = None,
    workers: Annotated[int, typer.Option(min=1, help="sandbox runs in parallel")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="print the execution metrics as JSON")] = False,
) -> None:
    """Score the execution predictions of an earlier `eval run` in the sandbox (for runs made where it cannot start)."""
    from common.console import CliConsole
    from eval.run import score_execution_later

    try:
        execution = score_execution_later(pred, out, workers)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise _fail(error) from error
    if as_json:
        typer.echo(json.dumps(execution, indent=2, sort_keys=True))
        return
    out_dir = out or pred.parent
    CliConsole().print(f"execution accuracy {execution['accuracy']:.3f} on {execution['kept']} of {execution['tasks']} "
                    f"tasks ({execution['dropped_count']} dropped) -> {out_dir / 'execution.jsonl'}",
                    highlight=False, soft_wrap=True)


def eval_compare(
    base: Annotated[str, typer.Argument(help="A: base model run (directory, name or metrics.json)")],
    tuned: Annotated[str, typer.Argument(help="B: fine-tuned run (directory, name or metrics.json)")],
) -> None:
    """Print the metrics of two eval runs side by side (A = base or V2, B = fine-tuned or ours)."""
    from common.console import CliConsole
    from eval.report import compare_table, describe_run, load_metrics

    try:
        left, right = load_metrics(base), load_metrics(tuned)
    except (ValueError, FileNotFoundError) as error:
        raise _fail(error) from error
    CliConsole().print(compare_table(left, right, describe_run(base), describe_run(tuned)))


def score(
    pred: Annotated[Path, typer.Option(help="predictions JSONL with 'prediction' and 'references' (list)")],
    out: Annotated[Optional[Path], typer.Option(help="also write the scored rows as JSONL here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
) -> None:
    """Score a predictions file without a model: exact, equivalence, template, NLC2CMD, guard."""
    from rich.table import Table

    from common.console import CliConsole
    from common.jsonl import write_jsonl
    from eval.predict import score_predictions
    from eval.report import flatten

    try:
        rows, metrics = score_predictions(pred)
    except (ValueError, FileNotFoundError) as error:
        raise _fail(error) from error
    if out is not None:
        write_jsonl(out, rows)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2, sort_keys=True))
        return
    table = Table(title=f"scores for {pred}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in flatten(metrics).items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    CliConsole().print(table)


def register(app: typer.Typer) -> None:
    """Add `eval run`, `eval exec`, `eval compare` and `score` to the CLI."""
    eval_app = typer.Typer(help="Evaluate models; outputs go under runs/<run>/eval/.", no_args_is_help=True)
    eval_app.command("run")(eval_run)
    eval_app.command("exec")(eval_exec)
    eval_app.command("compare")(eval_compare)
    app.add_typer(eval_app, name="eval")
    app.command("score")(score)
