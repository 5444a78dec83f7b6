"""The config hash: sha256 of the canonical resolved config, the identity of a run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

SHORT_LENGTH = 12
DERIVED_KEYS = frozenset({"output_dir", "dataset_prepared_path"})


class ConfigError(ValueError):
    """A config file that cannot be read as a YAML mapping."""


def load_config(path: Path) -> dict[str, Any]:
    """Read a YAML config as a mapping, with errors that name the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of options, got {type(loaded).__name__}")
    return loaded


def _relative(value: Any, root: Path) -> Any:
    """Rewrite absolute paths under `root` as relative ones, recursively."""
    if isinstance(value, dict):
        return {key: _relative(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [_relative(item, root) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        path = Path(value)
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return value


def canonical_json(config: dict[str, Any], root: Path | None = None) -> str:
    """Return the canonical form: derived keys dropped, paths relative, keys sorted."""
    kept = {key: value for key, value in config.items() if key not in DERIVED_KEYS}
    relative = _relative(kept, (root or Path.cwd()).resolve())
    return json.dumps(relative, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(config: dict[str, Any], root: Path | None = None) -> str:
    """Return the full sha256 hex digest of a config's canonical form."""
    return hashlib.sha256(canonical_json(config, root).encode("utf-8")).hexdigest()


def short_hash(full_hash: str) -> str:
    """Return the 12-character short form used in run directory names and tags."""
    return full_hash[:SHORT_LENGTH]


def file_config_hash(path: Path, root: Path | None = None) -> str:
    """Return the full config hash of a YAML file as written."""
    return config_hash(load_config(path), root)
