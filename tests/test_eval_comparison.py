"""`securecli eval run --compare-base`: base and adapter on the same tasks, beside the paper's published rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from conftest import write_chat_dataset
from typer.testing import CliRunner

from eval.comparison import published_table, render_markdown
from securecli.commands.eval import register


@pytest.fixture
def tiny_adapter(tiny_model: Path, tmp_path: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                          LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")
    return tmp_path / "adapter"


def test_published_figures_are_the_papers() -> None:
    table = published_table()
    assert {row.model: row.execution_accuracy for row in table.rows} == {
        "Qwen2.5-Coder-7B-Instruct (base)": 0.61,
        "Qwen2.5-Coder-7B-Instruct + LoRA fine-tune on NL2SH-ALFA train": 0.51,
        "GPT-4o": 0.74,
    }
    assert "embedding" in table.judge and "NAACL 2025" in table.source


def test_compare_base_writes_both_measured_rows_and_the_reference_rows(
    tiny_model: Path, tiny_adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publish.card import _comparison_section

    monkeypatch.setenv("SECURECLI_HOME", str(tmp_path))
    data = write_chat_dataset(tmp_path / "prepared" / "tiny", repeats=1)
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [
        "eval", "run", "--backend", "hf", "--base-model", str(tiny_model), "--adapter", str(tiny_adapter),
        "--data", str(data), "--run", str(tmp_path / "run"), "--limit", "2", "--no-safety", "--compare-base",
        "--max-new-tokens", "4", "--device", "cpu", "--batch-size", "2",
    ])
    assert result.exit_code == 0, result.output
    out = tmp_path / "run" / "eval"
    assert (tmp_path / "run" / "base" / "eval" / "metrics.json").is_file()
    table = json.loads((out / "comparison.json").read_text())
    measured = [row for row in table["rows"] if row["source"] == "measured here"]
    published = [row for row in table["rows"] if row["source"].startswith("published:")]
    assert [row["model"].split(":")[0] for row in measured] == ["base", "adapter"]
    assert "+" not in measured[0]["model"] and str(tiny_adapter) in measured[1]["model"]
    assert all(row["kept_tasks"] == measured[0]["kept_tasks"] for row in measured)
    assert all(0.0 <= row["execution_accuracy"] <= 1.0 for row in measured)
    assert [row["execution_accuracy"] for row in published] == [0.61, 0.51, 0.74]
    assert "stricter" in table["note"]
    markdown = (out / "comparison.md").read_text()
    assert markdown == render_markdown(table) and "| GPT-4o | 0.740 |" in markdown
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["comparison"] == table and "## Base vs adapter" in (out / "report.md").read_text()
    assert render_markdown(table) in _comparison_section(metrics)


def test_eval_compare_names_the_config_each_run_trained(tmp_path: Path) -> None:
    from eval.report import describe_run

    configs = (("v2", "axolotl/securecli-v2-reproduction.yml"), ("ours", "axolotl/qwen25-coder-7b-qlora.yml"))
    for name, config in configs:
        (tmp_path / name / "eval").mkdir(parents=True)
        (tmp_path / name / "eval" / "metrics.json").write_text(json.dumps({"generation": {"rows": 1}}))
        (tmp_path / name / "manifest.json").write_text(json.dumps({"versioned_config": {"path": config}}))
    assert describe_run(str(tmp_path / "v2")) == f"{tmp_path / 'v2'} (securecli-v2-reproduction.yml)"
    assert describe_run(str(tmp_path / "ours" / "eval" / "metrics.json")).endswith("(qwen25-coder-7b-qlora.yml)")
    (tmp_path / "plain" / "eval").mkdir(parents=True)
    (tmp_path / "plain" / "eval" / "metrics.json").write_text("{}")
    assert describe_run(str(tmp_path / "plain")) == str(tmp_path / "plain")


def test_the_base_side_of_each_backend() -> None:
    from eval.backends import BackendSpec
    from eval.run import base_spec

    served = BackendSpec(kind="openai", base_url="http://localhost:8000/v1", model="securecli",
                         base_model="Qwen/Qwen2.5-Coder-7B-Instruct")
    assert base_spec(served).model == "Qwen/Qwen2.5-Coder-7B-Instruct" and base_spec(served).base_url == served.base_url
    assert base_spec(BackendSpec(kind="hf", base_model="m", adapter="a")).adapter is None
    with pytest.raises(ValueError, match="needs an adapter"):
        base_spec(BackendSpec(kind="hf", base_model="m"))
    with pytest.raises(ValueError, match="needs --base-model"):
        base_spec(BackendSpec(kind="openai", base_url="http://x/v1", model="securecli"))
    with pytest.raises(ValueError, match="hf or openai"):
        base_spec(BackendSpec(kind="retrieval", train_path=Path("train.jsonl")))
