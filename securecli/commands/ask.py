"""`securecli ask "REQUEST"`: one guarded, explained command; `--run` executes it only when allowed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from common.console import CliConsole

console = CliConsole()
err_console = CliConsole(stderr=True)
VERDICT_STYLE = {"allow": "green", "warn": "yellow", "block": "red"}


def ask_command(
    request: Annotated[str, typer.Argument(help="what you want done, in plain language")],
    backend: Annotated[str | None, typer.Option("--backend", help="hf | openai | retrieval")] = None,
    base_model: Annotated[str | None, typer.Option("--base-model", help="hf: base model path or id")] = None,
    adapter: Annotated[str | None, typer.Option("--adapter", help="hf: adapter path or ORG/NAME@REV")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="openai: server URL (Ollama, vLLM)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="openai: model name")] = None,
    train_path: Annotated[Path | None, typer.Option("--train-path", help="retrieval: train JSONL")] = None,
    max_retries: Annotated[int | None, typer.Option("--max-retries", min=0, help="openai: retries of a 429/5xx reply or lost connection")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output (schema version 1)")] = False,
    run: Annotated[bool, typer.Option("--run", help="execute the command if the guard allows it")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="with --run: skip the confirmation of an ALLOWED command")] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="with --run: seconds before the command is killed")] = None,
) -> None:
    """Turn a request into one safe Bash command: guarded, explained, and optionally run after confirmation.

    Exit status: 0 allow, 1 warn, 2 refused or blocked; with --run, the command's own exit status.
    """
    from securecli import ask
    from securecli.userconfig import UserConfigError, load_defaults

    try:
        defaults = load_defaults({"backend": backend, "base_model": base_model, "adapter": adapter,
                                  "base_url": base_url, "model": model, "train_path": train_path,
                                  "max_retries": max_retries, "run_timeout_s": timeout})
        result = ask.ask(request, _backend(defaults))
    except (UserConfigError, ValueError, FileNotFoundError) as error:
        err_console.error(error)
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(result.model_dump_json())
    else:
        _show(result)
    if not run:
        raise typer.Exit({"allow": 0, "warn": 1, "block": 2}[result.verdict] if result.status == "ok" else 2)
    try:
        ask.authorize_run(result, interactive=sys.stdin.isatty() and sys.stdout.isatty(), assume_yes=yes,
                          prompt=lambda text: typer.prompt(text, default="", show_default=False))
        outcome = ask.execute(result.command, defaults.run_timeout_s)
    except ask.RunRefused as refused:
        err_console.print(f"[bold]not run:[/bold] {escape(str(refused))}", highlight=False)
        raise typer.Exit(2) from None
    _show_outcome(outcome, as_json)
    raise typer.Exit(124 if outcome.timed_out else outcome.exit_code)


def _backend(defaults):
    """Build the generation backend the merged defaults describe."""
    from eval.backends import BackendSpec, make_backend

    spec = BackendSpec(
        kind=defaults.backend, base_model=defaults.base_model, adapter=defaults.adapter, base_url=defaults.base_url,
        model=defaults.model, api_key_env=defaults.api_key_env, max_new_tokens=defaults.max_new_tokens, batch_size=1,
        concurrency=defaults.concurrency, max_retries=defaults.max_retries,
        train_path=defaults.resolved_train_path() if defaults.backend == "retrieval" else None,
    )
    if spec.kind == "retrieval" and not Path(str(spec.train_path)).is_file():
        raise FileNotFoundError(f"{spec.train_path}: retrieval index not found; run `securecli prepare` or pass --train-path")
    return make_backend(spec)


def _show(result) -> None:
    """Print the command highlighted, the verdict with reasons and ATT&CK ids, and the explanation."""
    from rich.syntax import Syntax

    style = VERDICT_STYLE[result.verdict]
    if result.command:
        console.print(Syntax(result.command, "bash", theme="ansi_dark", background_color="default", word_wrap=True))
    console.print(f"[{style}]verdict: {result.verdict}[/{style}] (risk {result.risk}) {result.guard_explanation}",
                  highlight=False)
    for finding in result.findings:
        console.print(f"  - {finding.stage}: {finding.message} [{finding.technique}, {finding.rule_id}] "
                      f"({finding.verdict})", highlight=False, markup=False)
    if result.refusal:
        console.print(f"[red]refused:[/red] {escape(result.refusal.reason)}", highlight=False)
        if result.refusal.alternative:
            console.print(f"safe alternative: {result.refusal.alternative_reason}:", highlight=False, markup=False)
            console.print(Syntax(result.refusal.alternative, "bash", theme="ansi_dark", background_color="default"))
    if result.explanation and result.command:
        console.print(f"what it does: {result.explanation}", highlight=False, markup=False)


def _show_outcome(outcome, as_json: bool) -> None:
    """Print a run's exit status and output."""
    if as_json:
        console.print_json(outcome.model_dump_json())
        return
    console.print(outcome.stdout, end="", markup=False, highlight=False)
    if outcome.stderr:
        err_console.print(outcome.stderr, end="", markup=False, highlight=False)
    status = "timed out" if outcome.timed_out else f"exit code {outcome.exit_code}"
    console.print(f"[bold]{status}[/bold] after {outcome.duration_s:.2f}s", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `ask` to the CLI."""
    app.command("ask")(ask_command)
