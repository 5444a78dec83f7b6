"""`securecli prepare`: raw sources -> validated, filtered, leak-free chat JSONL splits + funnel report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from common.console import CliConsole

console = CliConsole()
err_console = CliConsole(stderr=True)

SOURCE_HELP = (
    "hf[:REPO[@REVISION]][#config=NAME,nl=FIELD,command=FIELD] | nl2bash:DIR | jsonl:PATH[#nl=FIELD,command=FIELD] "
    "| icalfa | tldr:PATH (repeat to combine; default: the 7B config's training mix, NL2SH-ALFA train + hf)"
)


def prepare_command(
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help=SOURCE_HELP)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="output root (default: data/prepared)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the funnel, write nothing")] = False,
    train_ratio: Annotated[float, typer.Option("--train-ratio")] = 0.8,
    val_ratio: Annotated[float, typer.Option("--val-ratio")] = 0.1,
    test_ratio: Annotated[float, typer.Option("--test-ratio")] = 0.1,
    severity: Annotated[str, typer.Option("--shellcheck-severity", help="error | warning | info | style")] = "error",
    nl_max_chars: Annotated[int, typer.Option("--nl-max-chars")] = 512,
    command_max_chars: Annotated[int, typer.Option("--command-max-chars")] = 512,
    workers: Annotated[int | None, typer.Option("--workers", help="shellcheck processes (default: all cores)")] = None,
    tokenizer: Annotated[Path | None, typer.Option("--tokenizer", help="local tokenizer dir (default: Qwen)")] = None,
    refusal_ratio: Annotated[float, typer.Option(
        "--refusal-ratio", help="share of rows that are adversarial (refusals and injection-ignoring answers)")] = 0.06,
    near_miss_ratio: Annotated[float, typer.Option(
        "--near-miss-ratio", help="near-miss benign rows to add, as a share of the kept source rows")] = 0.03,
    generator_seed: Annotated[int, typer.Option("--generator-seed", help="seed of the generated rows")] = 0,
) -> None:
    """Build train/val/test chat JSONL from one or more sources, with rejects, report and manifest.

    Exit status: 0 written (or dry run clean), 1 no row kept or a split empty (nothing written), 2 bad input.
    """
    from pydantic import ValidationError

    from common.paths import data_dir
    from preprocessing.params import PrepareParams
    from preprocessing.pipeline import EmptyResultError, prepare
    from preprocessing.shellcheck import ShellcheckError
    from preprocessing.sources import DEFAULT_TRAINING_SOURCES, SourceError

    try:
        params = PrepareParams(
            train_ratio=train_ratio, val_ratio=val_ratio, test_ratio=test_ratio, shellcheck_severity=severity,
            nl_max_chars=nl_max_chars, command_max_chars=command_max_chars, workers=workers, tokenizer_dir=tokenizer,
            refusal_ratio=refusal_ratio, near_miss_ratio=near_miss_ratio, generator_seed=generator_seed,
        )
        result = prepare(source or list(DEFAULT_TRAINING_SOURCES), out or data_dir() / "prepared", params,
                         dry_run=dry_run, progress=True)
    except ValidationError as exc:
        err_console.error(f"bad parameters: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    except EmptyResultError as exc:
        console.print(funnel_table(exc.report))
        err_console.error(f"{exc}; nothing written")
        raise typer.Exit(1) from exc
    except (SourceError, ShellcheckError, FileNotFoundError) as exc:
        err_console.error(exc)
        raise typer.Exit(2) from exc
    console.print(funnel_table(result.report))
    if result.out_dir is None:
        console.print(f"dry run: nothing written; dataset hash would be [bold]{result.dataset_hash}[/bold]")
        return
    tokens = result.report["tokens"]["all"]
    console.print(
        f"tokens per row: mean {tokens['mean']}, p50 {tokens['p50']}, p99 {tokens['p99']}, max {tokens['max']}; "
        f"recommended sequence_len {tokens['recommended_sequence_len']}"
    )
    console.print(f"dataset hash [bold]{result.dataset_hash}[/bold]")
    console.print(f"written to {result.out_dir}")


def _top(counts: dict[str, int], limit: int = 3) -> str:
    """Return the most frequent codes with their counts."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return ", ".join(f"{code} {count}" for code, count in ranked)


def funnel_table(report: dict[str, Any]) -> Table:
    """Render the funnel: each stage, the refusals it made, the generated rows, then the split."""
    funnel = report["funnel"]
    table = Table(title="prepare funnel")
    for column in ("stage", "in", "out", "dropped", "top reasons"):
        table.add_column(column, justify="right" if column in ("in", "out", "dropped") else "left")
    for stage in funnel["stages"]:
        table.add_row(stage["stage"], str(stage["in"]), str(stage["out"]), str(stage["dropped"]), _top(stage["reasons"]))
        if stage["stage"] == "danger" or stage.get("converted_to_refusal"):
            table.add_row("  -> refusal rows", "", str(stage.get("converted_to_refusal", 0)), "",
                          "; ".join(filter(None, ["blocked rows kept as `# refused:`",
                                                  _top(stage.get("converted_reasons", {}))])))
    for rows in funnel["generated"]:
        table.add_row(f"+ {rows['rows'].replace('_', '-')} rows", str(rows["in"]), str(rows["out"]), str(rows["dropped"]),
                      "; ".join(filter(None, [_top(rows["kinds"]), _top(rows["reasons"])])))
    splits = report["splits"]
    table.add_row("split", str(funnel["output"]), " / ".join(str(splits[n]) for n in ("train", "val", "test")),
                  "", "train / val / test")
    return table


def register(app: typer.Typer) -> None:
    """Add the `prepare` verb."""
    app.command("prepare")(prepare_command)
