"""The utility catalogue: what each known program reads, writes, deletes, runs and contacts, as validated data.

One YAML file per family under `commandrisk/catalogue/`, loaded once. A program that is not in the catalogue
is not understood, so the guard asks about it (see `capabilities.py`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Role = Literal[
    "data", "read", "write", "delete", "exec", "argv", "script", "code", "url", "host", "remote_path",
    "package", "config", "module", "mode", "owner", "signal", "env", "device", "workdir",
]
"""What an operand or option value is: `exec` a shell command string, `argv` the rest of the words as a command,
`script` a file of code that runs, `code` program text (in the utility's `language`), `config` a `key=value`
setting (risky keys in `config_code_keys`), `workdir` a directory the program then works in."""

Capability = Literal[
    "inspect", "edit", "build", "network", "package_install", "privilege", "system", "process", "vcs_push",
    "vcs_remote", "container", "cluster", "cloud", "interpreter", "shell", "remote_shell", "scheduler",
    "name_resolution", "wrapper", "tunnel", "recon",
]
"""What running a program (or one of its subcommands) does at all; the policy gives each a default verdict."""


class Option(BaseModel):
    """An option that takes a value, and what that value is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role = "data"
    capability: Capability | None = Field(default=None, description="the option turns the program into this")
    optional: bool = Field(default=False, description="the value only counts when glued on (`-i.bak`, `--x=v`)")
    nargs: int = Field(default=1, ge=1, description="how many words the value takes (`find -fprintf FILE FORMAT`)")
    until: list[str] = Field(default_factory=list, description="the value runs until one of these words (`-exec ... ;`)")
    ends_options: bool = Field(default=False, description="the words after the value are the program's own (`python -m`)")


class Behaviour(BaseModel):
    """Options, operands and effects of one utility or subcommand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str = ""
    capability: Capability = "inspect"
    flags: list[str] = Field(default_factory=list, description="options that take no value")
    flag_capabilities: dict[str, Capability] = Field(
        default_factory=dict, description="flags that change what the program does (`sed -i`: edit)"
    )
    flag_roles: dict[str, Role] = Field(
        default_factory=dict, description="flags that give every operand another role (`find -delete`: delete)"
    )
    options: dict[str, Option] = Field(default_factory=dict, description="options that take a value")
    operands: list[Role] = Field(default_factory=lambda: ["data"], description="roles in order; the last repeats")
    last_operand: Role | None = Field(default=None, description="role of the final operand when there are two+")
    unknown_options: Literal["allow", "warn"] = Field(
        default="warn", description="allow only where no option of the program can write, delete or run code"
    )
    end_of_options: bool = Field(default=True, description="the first operand ends option parsing (`--` always does)")
    subcommands: dict[str, Behaviour] = Field(default_factory=dict)
    unknown_subcommands: Literal["allow", "warn"] = "warn"
    config_code_keys: list[str] = Field(
        default_factory=list, description="globs of `config` keys whose value is code (`core.editor`, `alias.*`)"
    )
    language: str | None = Field(default=None, description="language of `code` values (python, sed, awk, ...)")
    modules: dict[str, Behaviour] = Field(default_factory=dict, description="what `-m NAME` runs (`python -m venv`)")

    @field_validator("flags")
    @classmethod
    def _options_look_like_options(cls, flags: list[str]) -> list[str]:
        bad = [f for f in flags if not f.startswith(("-", "+"))]
        if bad:
            raise ValueError(f"flags must start with '-' or '+': {bad}")
        return flags


class Utility(Behaviour):
    """One program, under all the names it is installed as."""

    names: list[str] = Field(min_length=1)
    wrapper: Wrapper | None = Field(default=None, description="runs another command given after its own words")


class Wrapper(BaseModel):
    """How a wrapper's own words end and the wrapped command begins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    positionals: int = Field(default=0, description="operands of the wrapper before the command (`timeout 5`)")
    script_flag: str | None = Field(default=None, description="option whose value is a shell script (`su -c`)")
    joins_rest: bool = Field(default=False, description="the rest is joined into one script (`ssh host cmd`)")
    root: bool = Field(default=False, description="the wrapped command runs as root")
    remote: bool = Field(default=False, description="the wrapped command runs on another machine")
    script_only: bool = Field(default=False, description="never takes a command, only a script (`su -c`)")


Utility.model_rebuild()


class Family(BaseModel):
    """One catalogue file."""

    model_config = ConfigDict(extra="forbid")

    family: str
    system: bool = Field(default=False, description="utilities of the operating system itself (coreutils, shells, ...)")
    description: str
    utilities: list[Utility]


class CatalogueError(ValueError):
    """A catalogue file that does not validate; names the file and field."""


class Catalogue:
    """All families, indexed by program name."""

    def __init__(self, families: list[Family]):
        self.families = families
        self.by_name: dict[str, Utility] = {}
        self.system_names: set[str] = set()
        for family in families:
            for utility in family.utilities:
                for name in utility.names:
                    if name in self.by_name:
                        raise CatalogueError(f"{family.family}: {name!r} is catalogued twice")
                    self.by_name[name] = utility
                    if family.system:
                        self.system_names.add(name)

    def get(self, name: str) -> Utility | None:
        """The utility installed as `name`, or None."""
        return self.by_name.get(name)

    def wrappers(self) -> dict[str, Utility]:
        """Every name of every wrapper utility."""
        return {name: u for name, u in self.by_name.items() if u.wrapper is not None}


def load_yaml(text: str) -> object:
    """Parse trusted package data with libyaml when it is there (the catalogue is large)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def parse_family(text: str, name: str) -> Family:
    """Validate one catalogue file; errors name the file and field."""
    try:
        return Family.model_validate(load_yaml(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise CatalogueError(f"{name}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise CatalogueError(f"{name}: field {field}: {error['msg']}") from exc


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The packaged catalogue, loaded and validated once."""
    folder = resources.files("commandrisk").joinpath("catalogue")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return Catalogue([parse_family(f.read_text(encoding="utf-8"), f"commandrisk/catalogue/{f.name}") for f in files])
