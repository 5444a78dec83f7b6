"""User defaults for `securecli ask`: built-ins < `$XDG_CONFIG_HOME/securecli/config.toml` < environment < flags.

Example config file:

    [ask]
    backend = "openai"                     # hf | openai | retrieval
    base_url = "http://localhost:11434/v1" # Ollama, vLLM or any OpenAI-compatible server
    model = "securecli"
    run_timeout_s = 30

Environment: SECURECLI_BACKEND, SECURECLI_BASE_MODEL, SECURECLI_ADAPTER, SECURECLI_BASE_URL,
SECURECLI_MODEL, SECURECLI_API_KEY_ENV, SECURECLI_TRAIN_PATH, SECURECLI_MAX_NEW_TOKENS, SECURECLI_RUN_TIMEOUT.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from securecli.paths import data_dir

ENV_KEYS = {
    "backend": "SECURECLI_BACKEND",
    "base_model": "SECURECLI_BASE_MODEL",
    "adapter": "SECURECLI_ADAPTER",
    "base_url": "SECURECLI_BASE_URL",
    "model": "SECURECLI_MODEL",
    "api_key_env": "SECURECLI_API_KEY_ENV",
    "train_path": "SECURECLI_TRAIN_PATH",
    "max_new_tokens": "SECURECLI_MAX_NEW_TOKENS",
    "run_timeout_s": "SECURECLI_RUN_TIMEOUT",
}


class UserConfigError(ValueError):
    """A config file or environment value that cannot be used; the message names where it came from."""


class AskDefaults(BaseModel):
    """Which backend `ask` uses and how, once every source is merged."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["hf", "openai", "retrieval"] = "retrieval"
    base_model: str | None = None
    adapter: str | None = Field(default=None, description="local path or ORG/NAME@REV")
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    train_path: Path | None = Field(default=None, description="retrieval index; default: the prepared train split")
    max_new_tokens: int = Field(default=128, ge=1)
    run_timeout_s: float = Field(default=30.0, gt=0)

    def resolved_train_path(self) -> Path:
        """Return the retrieval train file: the configured one, else `data/prepared/latest/train.jsonl`."""
        return self.train_path or data_dir() / "prepared" / "latest" / "train.jsonl"


def config_path(environ: dict[str, str] | None = None) -> Path:
    """Return the XDG location of the user config file (it may not exist)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", str(Path.home()))) / ".config")
    return Path(base) / "securecli" / "config.toml"


def _file_values(path: Path) -> dict[str, Any]:
    """Read the `[ask]` table of the config file, or nothing when the file does not exist."""
    if not path.is_file():
        return {}
    try:
        loaded = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UserConfigError(f"{path}: invalid TOML: {error}") from error
    section = loaded.get("ask", {})
    if not isinstance(section, dict):
        raise UserConfigError(f"{path}: `ask` must be a table")
    return section


def load_defaults(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> AskDefaults:
    """Merge built-ins, the config file, the environment and explicit overrides (None values are ignored)."""
    environ = os.environ if environ is None else environ
    path = config_path(environ)
    merged: dict[str, Any] = dict(_file_values(path))
    for key, variable in ENV_KEYS.items():
        if environ.get(variable):
            merged[key] = environ[variable]
    merged.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return AskDefaults.model_validate(merged)
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise UserConfigError(f"ask settings (from {path}, SECURECLI_* env or flags): {details}") from error
