"""Config-hash stability, `securecli configs`, and run-manifest reading errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from test_publish_helpers import VERSIONED_CONFIG, write_dataset
from typer.testing import CliRunner

from common.atomic import write_json_atomic
from publish.confighash import file_config_hash, short_hash
from publish.manifest import ManifestError, dataset_record, read_run_manifest
from securecli.commands.publish import register
from securecli.configs import versioned_configs

BASE = """\
base_model: Qwen/Qwen2.5-Coder-7B-Instruct
lora_r: 16
learning_rate: 2.0e-4
datasets:
  - path: data/prepared/latest/train.jsonl
    type: chat_template
lora_target_modules: [q_proj, v_proj]
"""
REORDERED_WITH_COMMENTS = """\
# a comment that must not matter
lora_target_modules:
  - q_proj    # trailing comment
  - v_proj
datasets:
  -   type: chat_template
      path: "data/prepared/latest/train.jsonl"

learning_rate: 0.0002
lora_r:     16
base_model: 'Qwen/Qwen2.5-Coder-7B-Instruct'
"""


def _hash(tmp_path: Path, text: str, name: str = "c.yml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return file_config_hash(path, root=tmp_path)


def test_order_comments_whitespace_do_not_change_hash(tmp_path: Path) -> None:
    assert _hash(tmp_path, BASE, "a.yml") == _hash(tmp_path, REORDERED_WITH_COMMENTS, "b.yml")


def test_derived_keys_and_absolute_paths_do_not_change_hash(tmp_path: Path) -> None:
    moved = BASE.replace("data/prepared", f"{tmp_path}/data/prepared") + "output_dir: runs/x/adapter\n"
    assert _hash(tmp_path, BASE, "a.yml") == _hash(tmp_path, moved, "b.yml")


@pytest.mark.parametrize(
    "old, new",
    [
        ("lora_r: 16", "lora_r: 8"),
        ("learning_rate: 2.0e-4", "learning_rate: 2.0e-5"),
        ("lora_r: 16", "lora_r: '16'"),
        ("[q_proj, v_proj]", "[v_proj, q_proj]"),
        ("type: chat_template", "type: completion"),
        ("latest/train.jsonl", "latest/val.jsonl"),
    ],
)
def test_any_value_change_changes_hash(tmp_path: Path, old: str, new: str) -> None:
    assert old in BASE
    assert _hash(tmp_path, BASE, "a.yml") != _hash(tmp_path, BASE.replace(old, new), "b.yml")


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=8), st.integers() | st.text(max_size=8), min_size=1),
    st.randoms(),
)
def test_hash_ignores_key_order(config: dict, rng) -> None:
    from publish.confighash import config_hash

    keys = list(config)
    rng.shuffle(keys)
    shuffled = {key: config[key] for key in keys}
    assert config_hash(config, Path("/nonexistent")) == config_hash(shuffled, Path("/nonexistent"))
    changed_key = keys[0]
    altered = {**config, changed_key: [config[changed_key]]}
    assert config_hash(config, Path("/nonexistent")) != config_hash(altered, Path("/nonexistent"))


def test_configs_lists_every_versioned_config() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["configs"])
    assert result.exit_code == 0, result.output
    found = versioned_configs()
    assert VERSIONED_CONFIG in found
    for path in found:
        full = file_config_hash(path)
        assert f"{short_hash(full)}  axolotl/{path.name}  (sha256 {full})" in result.output


def test_read_run_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="run directory not found"):
        read_run_manifest(tmp_path / "missing")
    with pytest.raises(ManifestError, match="run manifest not found"):
        read_run_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match=r"manifest.json: run manifest is not valid JSON \(line 1\)"):
        read_run_manifest(tmp_path)
    write_json_atomic(tmp_path / "manifest.json", {"manifest_version": 1, "config_hash": "ab"})
    with pytest.raises(ManifestError, match="missing field\\(s\\) config, versioned_config"):
        read_run_manifest(tmp_path)


def test_dataset_record_rejects_edited_split(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "ds")
    record = dataset_record(folder)
    assert set(record["files"]) == {"train.jsonl", "val.jsonl"}
    with (folder / "train.jsonl").open("a") as handle:
        handle.write(json.dumps({"messages": []}) + "\n")
    with pytest.raises(ManifestError, match="train.jsonl: sha256 .* differs from .* recorded in"):
        dataset_record(folder)


def test_reproduce_restores_a_changed_versioned_config(tmp_path: Path) -> None:
    from securecli.reproduce import ReproduceError, _versioned_config_file

    record = {"path": "axolotl/renamed-since.yml", "hash": file_config_hash(VERSIONED_CONFIG),
              "text": VERSIONED_CONFIG.read_text()}
    restored = _versioned_config_file({"versioned_config": record}, tmp_path)
    assert restored == tmp_path / "renamed-since.yml" and file_config_hash(restored) == record["hash"]
    unchanged = {**record, "path": str(VERSIONED_CONFIG)}
    assert _versioned_config_file({"versioned_config": unchanged}, tmp_path) == VERSIONED_CONFIG
    with pytest.raises(ReproduceError, match="does not hash to the recorded"):
        _versioned_config_file({"versioned_config": {**record, "text": BASE}}, tmp_path)
