"""What setting an environment variable does to the programs that run (from `environment.yaml`)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

from commandrisk.catalogue import load_yaml

VariableRole = Literal["exec", "load", "path"]


class EnvironmentRoles(BaseModel):
    """The data file's shape."""

    model_config = ConfigDict(extra="forbid")

    variables: dict[str, VariableRole]


@lru_cache(maxsize=1)
def _roles() -> dict[str, VariableRole]:
    text = resources.files("commandrisk").joinpath("environment.yaml").read_text(encoding="utf-8")
    return EnvironmentRoles.model_validate(load_yaml(text)).variables


def role(name: str) -> VariableRole | None:
    """`exec`, `load`, `path`, or None for a variable that only carries data."""
    return _roles().get(name)
