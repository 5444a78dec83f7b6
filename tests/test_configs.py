"""Versioned configs validate against axolotl's own schema; bad ones fail naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from publish.confighash import ConfigError
from securecli.cli import build_app
from securecli.configs import TINY_OVERLAY, apply_tiny_overlay, validate_config, versioned_configs

MAIN = "qwen25-coder-7b-qlora.yml"


def _variant(tmp_path: Path, change: dict) -> Path:
    """Write a copy of the main config with some options changed."""
    config = yaml.safe_load((versioned_configs()[0].parent / MAIN).read_text())
    path = tmp_path / "variant.yml"
    path.write_text(yaml.safe_dump({**config, **change}))
    return path


@pytest.mark.parametrize("path", versioned_configs(), ids=lambda path: path.name)
def test_every_versioned_config_validates(path: Path) -> None:
    assert validate_config(path)["base_model"]


def test_the_configs_are_the_ones_the_issue_names() -> None:
    names = {path.name for path in versioned_configs()}
    assert {MAIN, "securecli-v2-reproduction.yml"} <= names


def test_main_run_corrects_v2() -> None:
    config = validate_config(versioned_configs()[0].parent / MAIN)
    assert config["adapter"] == "qlora" and config["load_in_4bit"] is True
    assert config["bnb_config_kwargs"] == {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
    assert len(config["revision_of_model"]) == 40
    assert config["chat_template"] == "qwen_25" and config["sample_packing"] is True
    for section in ("datasets", "test_datasets"):
        assert config[section][0]["roles_to_train"] == ["assistant"] and config[section][0]["train_on_eos"] == "turn"
    assert all(config[f"lora_{part}_kernel"] for part in ("qkv", "o", "mlp"))


def test_v2_reproduction_keeps_v2_values() -> None:
    config = validate_config(versioned_configs()[0].parent / "securecli-v2-reproduction.yml")
    assert config["adapter"] == "lora" and config["load_in_4bit"] is True
    assert (config["lora_r"], config["lora_alpha"], config["lora_dropout"]) == (8, 16, 0.05)
    assert config["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert config["datasets"][0]["type"] == "completion" and config["sequence_len"] == 512
    assert config["sample_packing"] is False and config["pad_to_sequence_len"] is True
    assert (config["max_steps"], config["warmup_steps"], config["save_steps"], config["eval_steps"]) == (500, 50, 100, 50)
    assert config["optimizer"] == "adamw_bnb_8bit" and config["bf16"] is True


def test_missing_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path}/absent.yml: config file not found"):
        validate_config(tmp_path / "absent.yml")


def test_unknown_key_is_named_with_a_hint(tmp_path: Path) -> None:
    path = _variant(tmp_path, {"lora_rr": 8})
    with pytest.raises(ConfigError, match=r"variant.yml: unknown key `lora_rr` \(did you mean `lora_r`\?\)"):
        validate_config(path)


def test_unknown_dataset_key_is_named(tmp_path: Path) -> None:
    config = yaml.safe_load((versioned_configs()[0].parent / MAIN).read_text())
    config["datasets"][0]["roles_to_trian"] = ["assistant"]
    path = tmp_path / "variant.yml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"unknown key `datasets\[0\].roles_to_trian`"):
        validate_config(path)


def test_invalid_value_surfaces_axolotls_message(tmp_path: Path) -> None:
    path = _variant(tmp_path, {"micro_batch_size": "four"})
    with pytest.raises(ConfigError, match=r"variant.yml: micro_batch_size: Input should be a valid integer"):
        validate_config(path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("base_model: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yml: invalid YAML"):
        validate_config(path)


def test_tiny_overlay_changes_only_what_cpu_needs(tiny_model: Path) -> None:
    config = validate_config(versioned_configs()[0].parent / MAIN)
    overlaid = apply_tiny_overlay(config, tiny_model, max_steps=7)
    changed = {key for key in config.keys() | overlaid.keys() if config.get(key) != overlaid.get(key)}
    expected = set(TINY_OVERLAY) | {"base_model", "max_steps", "save_steps", "revision_of_model", "test_datasets", "eval_steps", "eval_strategy"}
    assert changed <= expected
    assert overlaid["adapter"] == "qlora" and overlaid["load_in_4bit"] and overlaid["sample_packing"]


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(build_app(), ["validate", *map(str, versioned_configs())])
    assert good.exit_code == 0, good.output
    bad = runner.invoke(build_app(), ["validate", str(_variant(tmp_path, {"lora_rr": 8}))])
    assert bad.exit_code == 2 and "lora_rr" in bad.output
