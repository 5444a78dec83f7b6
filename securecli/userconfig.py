"""User defaults for `securecli ask`: built-ins < user `config.toml` < environment < flags (pydantic-settings).

The file is `securecli/config.toml` in the platform's user config folder (platformdirs: on Linux
`$XDG_CONFIG_HOME/securecli/config.toml`, else `~/.config/securecli/config.toml`). Example:

    [ask]
    backend = "openai"                     # hf | openai | retrieval
    base_url = "http://localhost:11434/v1" # Ollama, vLLM or any OpenAI-compatible server
    model = "securecli"
    run_timeout_s = 30

Environment: SECURECLI_BACKEND, SECURECLI_BASE_MODEL, SECURECLI_ADAPTER, SECURECLI_BASE_URL,
SECURECLI_MODEL, SECURECLI_API_KEY_ENV, SECURECLI_TRAIN_PATH, SECURECLI_MAX_NEW_TOKENS, SECURECLI_RUN_TIMEOUT,
SECURECLI_CONCURRENCY, SECURECLI_MAX_RETRIES (empty values are ignored).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from common.paths import data_dir

ENV_PREFIX = "SECURECLI_"
TABLE = "ask"
FLAGS = {"run_timeout_s": "--timeout"}


class UserConfigError(ValueError):
    """A config file or environment value that cannot be used; the message names where it came from."""


def config_path() -> Path:
    """Return the user config file (platformdirs' user config folder; it may not exist)."""
    from platformdirs import user_config_path

    return user_config_path("securecli", appauthor=False) / "config.toml"


def _ask_table(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    """Return the `[ask]` table of the config file as a settings source (empty when there is no file)."""
    try:
        loaded = TomlConfigSettingsSource(settings_cls, toml_file=path).toml_data
    except tomllib.TOMLDecodeError as error:
        raise UserConfigError(f"{path}: invalid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserConfigError(f"{path}: cannot read the config file: {error}") from None
    section = loaded.get(TABLE, {})
    if not isinstance(section, dict):
        raise UserConfigError(f"{path}: `{TABLE}` must be a table")
    return InitSettingsSource(settings_cls, init_kwargs=section)


class AskDefaults(BaseSettings):
    """Which backend `ask` uses and how, once every source is merged."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix=ENV_PREFIX, env_ignore_empty=True, validate_by_name=True, validate_by_alias=True,
    )

    backend: Literal["hf", "openai", "retrieval"] = "retrieval"
    base_model: str | None = None
    adapter: str | None = Field(default=None, description="local path or ORG/NAME@REV")
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    train_path: Path | None = Field(default=None, description="retrieval index; default: the prepared train split")
    max_new_tokens: int = Field(default=128, ge=1)
    run_timeout_s: float = Field(default=30.0, gt=0, validation_alias=f"{ENV_PREFIX}RUN_TIMEOUT")
    concurrency: int = Field(default=8, ge=1, description="openai: requests in flight at once")
    max_retries: int = Field(default=3, ge=0, description="openai: retries of a 429/5xx reply or lost connection")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init arguments) first, then the environment, then the `[ask]` table of the config file."""
        return init_settings, env_settings, _ask_table(settings_cls, config_path())

    def resolved_train_path(self) -> Path:
        """Return the retrieval train file: the configured one, else `data/prepared/latest/train.jsonl`."""
        return self.train_path or data_dir() / "prepared" / "latest" / "train.jsonl"


def env_name(field: str) -> str | None:
    """Return the environment variable that sets a field (None for a name that is not a field)."""
    if field not in AskDefaults.model_fields:
        return None
    alias = AskDefaults.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


def _field_name(location: str) -> str:
    """Map an error location (a field name or its environment alias) back to the field name."""
    for name in AskDefaults.model_fields:
        if location in (name, env_name(name)):
            return name
    return location


def _file_line(path: Path, key: str) -> int | None:
    """Return the line of `key = ...` inside the `[ask]` table (tomllib keeps no positions)."""
    in_table = False
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = stripped.split("#")[0].strip() == f"[{TABLE}]"
        elif in_table and re.match(rf"""["']?{re.escape(key)}["']?\s*=""", stripped):
            return number
    return None


def _origin(field: str, flags: dict[str, Any], path: Path) -> str:
    """Name where a field's value came from: a flag, an environment variable or a file line."""
    if field in flags:
        return FLAGS.get(field, f"--{field.replace('_', '-')}")
    variable = env_name(field)
    if variable and os.environ.get(variable):
        return variable
    line = _file_line(path, field) if path.is_file() else None
    return f"{path}:{line}" if line else str(path)


def load_defaults(overrides: dict[str, Any] | None = None) -> AskDefaults:
    """Merge built-ins, the config file, the environment and explicit overrides (None values are ignored)."""
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}
    path = config_path()
    try:
        return AskDefaults(**flags)
    except ValidationError as error:
        details = []
        for item in error.errors():
            field = _field_name(str(item["loc"][0])) if item["loc"] else "<settings>"
            details.append(f"{_origin(field, flags, path)}: {field}: {item['msg']}")
        raise UserConfigError("ask settings: " + "; ".join(details)) from None
