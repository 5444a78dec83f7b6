"""The V2 reproduction config trains on the same prepared data as ours, through its `text` rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import write_chat_dataset

from common.paths import repo_root
from securecli.train import train

pytestmark = pytest.mark.slow
V2_CONFIG = repo_root() / "axolotl" / "securecli-v2-reproduction.yml"
STEPS = 2


def test_the_v2_config_trains_a_few_steps_on_text_rows(tmp_path: Path, tiny_model: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECURECLI_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    data = write_chat_dataset(tmp_path / "data" / "prepared" / "repeated", repeats=2)
    first = json.loads((data / "train.jsonl").read_text().splitlines()[0])
    assert first["text"].startswith("Instruction: ") and "\nCommand: " in first["text"]
    run = train(V2_CONFIG, tiny=True, data_dir=data, max_steps=STEPS)
    trained = yaml.safe_load((run.run_dir / "config.yml").read_text())
    assert trained["datasets"][0]["type"] == "completion" and trained["datasets"][0]["field"] == "text"
    assert trained["adapter"] == "lora" and trained["max_steps"] == STEPS
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    assert (run.adapter_dir / f"checkpoint-{STEPS}" / "trainer_state.json").is_file()
    assert run.metrics["global_step"] == STEPS
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["versioned_config"]["path"].endswith("securecli-v2-reproduction.yml")
