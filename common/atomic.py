"""Atomic writes (temp file in the same directory, fsync, rename) and atomic symlink swaps."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write indented JSON with sorted keys atomically."""
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def point_symlink(link: Path, target: str) -> None:
    """Atomically make `link` a (relative) symlink to `target`."""
    staging = link.with_name(f".{link.name}-{os.getpid()}")
    staging.unlink(missing_ok=True)
    os.symlink(target, staging)
    os.replace(staging, link)


@contextmanager
def staged_directory(target: Path, prefix: str | None = None) -> Iterator[Path]:
    """Yield an empty directory beside `target`; when the block ends without error it replaces `target` whole
    (an old one is swapped out and removed), so readers never see a half-written folder. On error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix or f".{target.name}.", dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)
        if target.exists() or target.is_symlink():
            trash = staging.with_name(f"{staging.name}.old")
            os.replace(target, trash)
            os.replace(staging, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
