"""LoRA merge into the unquantized base: shards, tokenizer, and the logit check that guards it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import typer
from test_publish_helpers import PASSING_EVAL, make_run
from typer.testing import CliRunner

from common.tiny import build_tiny_model
from publish.hub import publish_run
from publish.merge import MergeError, check_logits, merge_run
from securecli.commands.publish import register


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("merge"), build_tiny_model(), metrics=PASSING_EVAL)


def test_bf16_merge_via_cli_then_publish_merged(run_dir: Path) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["merge", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output
    merged = run_dir / "merged"
    report = json.loads((merged / "merge_report.json").read_text())
    assert report["dtype"] == "bfloat16" and report["max_abs_diff"] <= report["tolerance"]
    assert report["adapter_effect"] > 10 * report["tolerance"], "the check must be able to see the adapter"
    assert json.loads((merged / "config.json").read_text())["dtype"] == "bfloat16"
    assert "quantization_config" not in json.loads((merged / "config.json").read_text())
    assert list(merged.glob("*.safetensors")) and (merged / "tokenizer.json").is_file()
    assert not list(merged.glob("adapter_*")), "merged weights, not an adapter"

    plan = publish_run(run_dir, "securecli/tiny-merged", merged=True, dry_run=True)
    names = {f.path_in_repo for f in plan.files}
    assert {"model.safetensors", "config.json", "merge_report.json", "README.md", "manifest.json"} <= names
    assert "adapter_model.safetensors" not in names
    assert "base_model_relation: finetune" in plan.card and "library_name: transformers" in plan.card


def test_fp32_merge_is_exact_and_a_tight_tolerance_fails_loudly(run_dir: Path) -> None:
    result = merge_run(run_dir, dtype="float32")
    assert result.max_abs_diff < 1e-4 < result.adapter_effect
    with pytest.raises(MergeError, match="merged model logits differ from base\\+adapter by"):
        merge_run(run_dir, dtype="float32", tolerance=0.0 if result.max_abs_diff > 0 else -1.0)
    assert json.loads((run_dir / "merged" / "merge_report.json").read_text())["dtype"] == "float32"


def test_check_logits_reports_worst_sample() -> None:
    reference = [torch.zeros(1, 3, 5), torch.ones(1, 2, 5)]
    shifted = [torch.zeros(1, 3, 5), torch.ones(1, 2, 5) + 0.5]
    assert check_logits(reference, reference, 0.0) == 0.0
    with pytest.raises(MergeError, match=r"by 0.5 .*per sample: 0, 0.5"):
        check_logits(reference, shifted, 0.1)


def test_refuses_4bit_and_missing_adapter(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(MergeError, match="never 4-bit"):
        merge_run(run_dir, dtype="int4")
    with pytest.raises(MergeError, match="adapter_model.safetensors not found"):
        merge_run(tmp_path)
