"""`securecli eval run`, `securecli eval compare A B` and `securecli score --pred FILE`."""

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
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def eval_run(
    backend: Annotated[BackendKind, typer.Option(help="hf, openai or retrieval")],
    base_model: Annotated[Optional[str], typer.Option(help="hf: model directory or Hub id")] = None,
    adapter: Annotated[Optional[str], typer.Option(help="hf: PEFT adapter directory or ORG/NAME@REV")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="openai: server URL ending in /v1")] = None,
    model: Annotated[Optional[str], typer.Option(help="openai: model name on the server")] = None,
    api_key_env: Annotated[str, typer.Option(help="openai: environment variable holding the API key")] = "OPENAI_API_KEY",
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
) -> None:
    """Generate on a split, score it and write runs/<run>/eval/{predictions.jsonl, metrics.json, report.md, chart.png}."""
    from rich.console import Console

    from eval.run import plan_from_options, resolve_run_dir, run_eval, trained_model

    try:
        run_dir = resolve_run_dir(run, backend.value)
        if backend is BackendKind.hf and base_model is None and adapter is None:
            base_model, adapter = trained_model(run_dir) or (None, None)
        plan = plan_from_options(
            backend.value, data=data, train=train, base_model=base_model, adapter=adapter, base_url=base_url,
            model=model, api_key_env=api_key_env, batch_size=batch_size, max_new_tokens=max_new_tokens,
            device=device, split=split, limit=limit, execution=execution, safety=safety,
            regression=regression, regression_limit=regression_limit,
        )
        metrics = run_eval(plan, run_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise _fail(error) from error
    generation = metrics["generation"]
    console = Console()
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


def eval_compare(
    base: Annotated[str, typer.Argument(help="A: base model run (directory, name or metrics.json)")],
    tuned: Annotated[str, typer.Argument(help="B: fine-tuned run (directory, name or metrics.json)")],
) -> None:
    """Print the metrics of two eval runs side by side (A = base, B = fine-tuned)."""
    from rich.console import Console

    from eval.report import compare_table, load_metrics

    try:
        left, right = load_metrics(base), load_metrics(tuned)
    except (ValueError, FileNotFoundError) as error:
        raise _fail(error) from error
    Console(width=140).print(compare_table(left, right, base, tuned))


def score(
    pred: Annotated[Path, typer.Option(help="predictions JSONL with 'prediction' and 'references' (list)")],
    out: Annotated[Optional[Path], typer.Option(help="also write the scored rows as JSONL here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
) -> None:
    """Score a predictions file without a model: exact, equivalence, template, NLC2CMD, guard."""
    from rich.console import Console
    from rich.table import Table

    from eval.predict import score_predictions, write_jsonl
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
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `eval run`, `eval compare` and `score` to the CLI."""
    eval_app = typer.Typer(help="Evaluate models; outputs go under runs/<run>/eval/.", no_args_is_help=True)
    eval_app.command("run")(eval_run)
    eval_app.command("compare")(eval_compare)
    app.add_typer(eval_app, name="eval")
    app.command("score")(score)
