"""Hub references: `ORG/NAME@REV` parsing, verified snapshot downloads, and adapter paths or refs resolved to
folders. Publishing itself lives in `publish.hub`."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from common.jsonl import MANIFEST_NAME, ManifestError, read_json
from common.provenance import sha256_file

TOKEN_ENV = "HF_TOKEN"


PULL_PATTERNS = ["*.safetensors", "*.json", "*.yml", "*.txt", "*.jinja", "*.md", "eval/*"]


REF_PATTERN = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


class VerificationError(RuntimeError):
    """A pulled file is missing, unexpected, or does not match the published manifest's sha256."""


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split `ORG/NAME[@REV]` into the repo id and the revision (None when not pinned)."""
    match = REF_PATTERN.match(ref)
    if not match:
        raise ValueError(f"expected ORG/NAME or ORG/NAME@REVISION, got {ref!r}")
    return match["repo"], match["rev"]


def verify_snapshot(folder: Path) -> dict[str, Any]:
    """Check every file listed in the published manifest exists with its sha256; return the manifest."""
    manifest_path = folder / MANIFEST_NAME
    try:
        manifest = read_json(manifest_path, "published manifest")
    except ManifestError as error:
        raise VerificationError(str(error)) from error
    listed = manifest.get("published_files")
    if not isinstance(listed, dict) or not listed:
        raise VerificationError(f"{manifest_path}: no 'published_files' list; cannot verify this snapshot")
    problems = []
    for name, expected in sorted(listed.items()):
        path = folder / name
        if not _matches_pull_patterns(name):
            continue
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif (actual := sha256_file(path)) != expected["sha256"]:
            problems.append(f"{name}: sha256 {actual} does not match the published {expected['sha256']}")
    unexpected = [
        path.relative_to(folder).as_posix()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME and path.relative_to(folder).as_posix() not in listed
        and _matches_pull_patterns(path.relative_to(folder).as_posix())
    ]
    problems += [f"{name}: not in the published manifest" for name in unexpected]
    if problems:
        raise VerificationError(f"{folder}: verification failed against {MANIFEST_NAME}:\n  " + "\n  ".join(problems))
    return manifest


def _matches_pull_patterns(name: str) -> bool:
    """Tell whether `pull` downloads a file of this name."""
    return any(fnmatch.fnmatch(name, pattern) for pattern in PULL_PATTERNS)


def pull(ref: str, cache_dir: Path | None = None, *, local_files_only: bool = False) -> Path:
    """Download `ORG/NAME[@REV]` with `snapshot_download`, verify every file, and return the folder."""
    from huggingface_hub import snapshot_download

    repo_id, revision = parse_ref(ref)
    folder = snapshot_download(
        repo_id,
        revision=revision,
        cache_dir=cache_dir,
        allow_patterns=PULL_PATTERNS,
        token=os.environ.get(TOKEN_ENV) or False,
        local_files_only=local_files_only,
    )
    path = Path(folder)
    verify_snapshot(path)
    return path


def resolve_adapter(ref: str, cache_dir: Path | None = None) -> Path:
    """Return a local adapter directory as is; pull and verify `ORG/NAME@REV` from the Hub."""
    local = Path(ref).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ValueError(f"{local}: an adapter must be a directory")
        return local
    if ref.startswith((".", "/", "~")) or not REF_PATTERN.match(ref):
        raise ValueError(f"{ref}: not a local directory, nor a Hub reference ORG/NAME@REVISION")
    return pull(ref, cache_dir)
