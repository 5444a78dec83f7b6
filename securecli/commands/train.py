"""`securecli train` and `securecli validate`: the versioned Axolotl run, or its CPU stand-in."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from common.console import CliConsole

console = CliConsole()


def train_command(
    config: Path = typer.Argument(..., help="Versioned Axolotl config, e.g. axolotl/qwen25-coder-7b-qlora.yml"),
    tiny: bool = typer.Option(False, "--tiny", help="CPU stand-in: tiny random Qwen2 + real tokenizer, few steps"),
    gpu_smoke: bool = typer.Option(
        False, "--gpu-smoke", help="GPU smoke run: every GPU setting kept, only the base swapped for the tiny model"
    ),
    data: Path | None = typer.Option(None, "--data", help="Prepared dataset dir (default: data/prepared/latest)"),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps"),
    settings: list[str] = typer.Option([], "--set", help="Override an option: KEY=VALUE (YAML value); part of the hash"),
) -> None:
    """Run `axolotl preprocess` + `axolotl train` into runs/<config-hash>/.

    A config with a `deepspeed` or `fsdp_config` section trains on every visible GPU through axolotl's
    accelerate launcher; any other config trains in one process.
    """
    from publish.confighash import ConfigError, load_config
    from securecli.train import TrainingError, parse_overrides, train

    try:
        load_config(config)
        overrides = parse_overrides(settings)
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=console,
        ) as progress:
            mode = "(tiny CPU stand-in) " if tiny else "(GPU smoke, tiny base) " if gpu_smoke else ""
            task = progress.add_task(f"axolotl train {mode}", total=None)

            def show(verb: str, done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = train(config, tiny=tiny, gpu_smoke=gpu_smoke, data_dir=data, max_steps=max_steps,
                           overrides=overrides, on_progress=show)
    except (ConfigError, TrainingError) as error:
        console.error(error)
        raise typer.Exit(2) from error
    console.print(f"run      {result.run_dir}")
    console.print(f"adapter  {result.adapter_dir}")
    console.print(f"hash     {result.config_hash[:12]}")
    for key, value in result.metrics.items():
        console.print(f"{key:<18} {value}")


def validate_command(configs: list[Path] = typer.Argument(..., help="Axolotl config files")) -> None:
    """Check configs against axolotl's own schema, and reject keys it does not define."""
    from publish.confighash import ConfigError
    from securecli.configs import validate_config

    failed = False
    for path in configs:
        try:
            validate_config(path)
            console.print(f"[green]ok[/green] {path}")
        except ConfigError as error:
            failed = True
            console.print(f"[red]invalid[/red] {escape(str(error))}", highlight=False)
    if failed:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the `train` and `validate` verbs."""
    app.command("train")(train_command)
    app.command("validate")(validate_command)
