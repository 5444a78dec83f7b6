"""Where generated things live: gitignored `data/` and `runs/` under the working directory."""

from __future__ import annotations

import os
from pathlib import Path


def workdir() -> Path:
    """Return the project working directory (`SECURECLI_HOME`, else the current directory)."""
    return Path(os.environ.get("SECURECLI_HOME", ".")).resolve()


def data_dir() -> Path:
    """Return the directory for prepared data and cached tiny models."""
    return workdir() / "data"


def runs_dir() -> Path:
    """Return the directory for training runs and their eval outputs."""
    return workdir() / "runs"


def repo_root() -> Path:
    """Return the source checkout that holds the versioned configs."""
    return Path(__file__).resolve().parent.parent


def relative_to_workdir(path: Path) -> str:
    """Return a path relative to the working directory when it lies inside it, else absolute."""
    resolved = path.resolve()
    root = workdir()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else resolved.as_posix()
