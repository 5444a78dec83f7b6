"""`securecli`: a thin typer layer over functions you can call from Python."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="securecli",
    help="Train, check and ship a small LLM that turns plain-language requests into safe Bash.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

COMMAND_MODULES = (
    "securecli.commands.train",
    "securecli.commands.eval",
    "securecli.commands.publish",
    "securecli.commands.launch",
    "securecli.commands.ask",
    "securecli.commands.prepare",
    "securecli.commands.check",
)


def _register_all() -> None:
    """Import every command module; each adds its verbs to `app`."""
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def main() -> None:
    """Console entry point."""
    _register_all()
    app()
