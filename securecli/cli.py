"""`securecli`: a thin typer layer over functions you can call from Python."""

from __future__ import annotations

import functools
import importlib

import typer

COMMAND_MODULES = (
    "securecli.commands.train",
    "securecli.commands.prepare",
    "securecli.commands.check",
    "securecli.commands.eval",
    "securecli.commands.publish",
    "securecli.commands.launch",
    "securecli.commands.ask",
)


@functools.cache
def build_app() -> typer.Typer:
    """Return the CLI with every command module's verbs registered (built once)."""
    app = typer.Typer(
        name="securecli",
        help="Train, check and ship a small LLM that turns plain-language requests into safe Bash.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    """Console entry point."""
    build_app()()
