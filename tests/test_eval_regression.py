"""General-capability regression: lm-eval on the local shell multiple-choice task with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.regression import LOCAL_TASK, model_arguments, parse_tasks, suites_dir


def _tiny_lora_adapter(base: Path, target: Path) -> Path:
    """Save a LoRA adapter for the tiny model (random B, so it really changes the scores)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    peft_model.save_pretrained(target)
    return target


def test_task_list_and_model_arguments(tmp_path: Path) -> None:
    assert parse_tasks(" mmlu_anatomy, securecli_shell_mc ,") == ["mmlu_anatomy", "securecli_shell_mc"]
    with pytest.raises(ValueError, match="no lm-eval task names"):
        parse_tasks(" , ")
    assert model_arguments("base", None, "float32") == {"pretrained": "base", "dtype": "float32"}
    assert model_arguments("base", str(tmp_path), "float32")["peft"] == str(tmp_path)
    with pytest.raises(ValueError, match="not a local directory"):
        model_arguments("base", "not a hub ref!", "float32")


def test_local_task_ships_its_yaml_loader_and_questions() -> None:
    rows = [json.loads(line) for line in (suites_dir() / "shell_mc.jsonl").read_text().splitlines()]
    assert len(rows) == 20
    assert all(0 <= row["answer"] < len(row["choices"]) for row in rows)
    assert len({row["answer"] for row in rows}) > 1
    assert f"task: {LOCAL_TASK}" in (suites_dir() / f"{LOCAL_TASK}.yaml").read_text()


@pytest.mark.slow
def test_lm_eval_runs_on_the_local_task_with_a_peft_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from common.tiny import build_tiny_model
    from eval.regression import evaluate_regression

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    base = build_tiny_model()
    adapter = _tiny_lora_adapter(base, tmp_path / "adapter")
    summary = evaluate_regression(str(base), str(adapter), LOCAL_TASK, 6, tmp_path / "out", batch_size=8)
    result = summary["results"][LOCAL_TASK]
    assert result["samples"] == 6
    assert 0.0 <= result["acc"] <= 1.0 and 0.0 <= result["acc_norm"] <= 1.0
    written = json.loads((tmp_path / "out" / "regression.json").read_text())
    assert written["adapter"] == str(adapter)
    assert written["results"] == summary["results"]
    assert written["lm_eval"]["n-samples"][LOCAL_TASK]["effective"] == 6
