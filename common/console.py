"""Rich consoles for the CLI: lines are never hard-wrapped, and off a terminal nothing depends on its width."""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions
from rich.markup import escape

# Off a terminal (pipes, logs, CliRunner) renderables such as tables get their natural width up to this.
UNWRAPPED_WIDTH = 1000


class CliConsole(Console):
    """A console that soft-wraps text and ignores `COLUMNS` and the terminal size when its file is not a terminal."""

    def __init__(self, *, stderr: bool = False, highlight: bool = True) -> None:
        super().__init__(stderr=stderr, soft_wrap=True, highlight=highlight)

    @property
    def size(self) -> ConsoleDimensions:
        """Return the terminal's size on a terminal, else a fixed width wide enough for any table."""
        natural = Console.size.fget(self)
        return natural if self.is_terminal else ConsoleDimensions(UNWRAPPED_WIDTH, natural.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)

    def error(self, message: object) -> None:
        """Print `error: MESSAGE` on one line, the message taken literally (no rich markup inside)."""
        self.print(f"[red]error:[/red] {escape(str(message))}", highlight=False)

