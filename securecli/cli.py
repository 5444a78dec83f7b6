"""`securecli`: a thin typer layer over functions you can call from Python."""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import warnings

import typer

COMMAND_MODULES = (
    "securecli.commands.train",
    "securecli.commands.prepare",
    "securecli.commands.check",
    "securecli.commands.eval",
    "securecli.commands.publish",
    "securecli.commands.export",
    "securecli.commands.launch",
    "securecli.commands.ask",
)


# Import-time messages of optional CPU/GPU extras that are harmless here and would bury our own output.
QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "bitsandbytes.backends.cpu.ops")


def quiet_known_noise() -> None:
    """Silence optional-kernel fallbacks that third-party packages announce at import."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Skipping publisher trust check")


@functools.cache
def build_app() -> typer.Typer:
    """Return the CLI with every command module's verbs registered (built once).

    Off a terminal, usage errors come as click's plain one-line text, not as rich panels wrapped to a width.
    """
    app = typer.Typer(
        name="securecli",
        help="Train, check and ship a small LLM that turns plain-language requests into safe Bash.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        rich_markup_mode="rich" if sys.stderr.isatty() else None,
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    """Console entry point."""
    quiet_known_noise()
    build_app()()
