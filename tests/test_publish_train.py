"""Real tiny trainings: the run manifest, determinism (via `reproduce`), and merging a trained adapter.

Two trainings in total: the module fixture trains once, and `reproduce` trains the same config again,
which must give a byte-identical adapter (this needs the `SeedLoraInit` plugin in the config).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_publish_helpers import VERSIONED_CONFIG

from common.provenance import sha256_file
from publish.confighash import canonical_json, load_config, short_hash
from publish.manifest import read_run_manifest
from securecli.determinism import PLUGIN_PATH
from securecli.reproduce import ReproduceError, format_report, reproduce, resolve

pytestmark = pytest.mark.slow
MAX_STEPS = 3


def _write_source(path: Path, offset: int = 0) -> Path:
    """Write a JSONL source of distinct, shellcheck-clean NL->bash pairs."""
    rows = [
        {"nl": f"show the first {n} lines of notes{n}.txt", "command": f"head -n {n} notes{n}.txt"}
        for n in range(1 + offset, 61 + offset)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project working directory (SECURECLI_HOME) holding data/ and runs/ for this module."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SECURECLI_HOME", str(folder))
        patch.chdir(folder)
        yield folder


@pytest.fixture(scope="module")
def trained(home: Path):
    """Prepare a small dataset with the real pipeline and train the versioned config once (tiny, CPU)."""
    from preprocessing.params import PrepareParams
    from preprocessing.pipeline import prepare
    from securecli.train import train

    source = _write_source(home / "pairs.jsonl")
    prepared = prepare([f"jsonl:{source}"], home / "data" / "prepared", PrepareParams(workers=1))
    return train(VERSIONED_CONFIG, tiny=True, data_dir=prepared.out_dir, max_steps=MAX_STEPS), prepared


def test_run_manifest_records_everything(trained) -> None:
    result, prepared = trained
    manifest = read_run_manifest(result.run_dir)
    assert result.run_dir.name == short_hash(manifest["config_hash"]) == short_hash(result.config_hash)
    assert manifest["config"]["max_steps"] == MAX_STEPS and manifest["seed"] == manifest["config"]["seed"]
    dataset = manifest["dataset"]
    assert dataset["dataset_hash"] == prepared.dataset_hash
    assert dataset["manifest_sha256"] == sha256_file(prepared.out_dir / "manifest.json")
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        assert dataset["files"][name] == sha256_file(prepared.out_dir / name)
    assert dataset["sources"][0]["spec"].startswith("jsonl:") and dataset["params"]["train_ratio"] == 0.8
    env = manifest["environment"]
    assert set(env["versions"]) >= {"axolotl", "torch", "transformers", "peft", "bitsandbytes"}
    assert env["versions"]["axolotl"] == "0.19.0"
    assert env["hardware"]["accelerator"] == "cpu" and env["hardware"]["cpu"]
    assert set(env["git"]) == {"commit", "dirty"} and "lock_file_sha256" in env and "container_image" in env
    assert manifest["versioned_config"]["hash"] and manifest["versioned_config"]["text"] == VERSIONED_CONFIG.read_text()
    assert manifest["metrics"]["global_step"] == MAX_STEPS
    assert manifest["times"]["started_at"] <= manifest["times"]["ended_at"]


def test_versioned_config_seeds_the_lora_init() -> None:
    """Without this plugin axolotl 0.19 draws lora_A from an unseeded generator (see securecli/determinism.py)."""
    assert PLUGIN_PATH in (load_config(VERSIONED_CONFIG).get("plugins") or []), (
        f"{VERSIONED_CONFIG}: add `plugins: [{PLUGIN_PATH}]`, or two trainings of it give different adapters"
    )


def test_reproduce_retrains_byte_identical(trained, home: Path) -> None:
    result, _ = trained
    report = reproduce(short_hash(result.config_hash), runs_root=home / "runs")
    text = format_report(report)
    assert report.ok, text
    assert report.run_dir is not None and report.run_dir != result.run_dir
    trained_configs = [load_config(run / "config.yml") for run in (result.run_dir, report.run_dir)]
    assert canonical_json(trained_configs[0], home) == canonical_json(trained_configs[1], home)
    adapter = "adapter_model.safetensors"
    assert sha256_file(report.run_dir / "adapter" / adapter) == sha256_file(result.adapter_dir / adapter), text
    assert not [d for d in report.mismatches if d.kind != "environment"], text
    kinds = {d.kind for d in report.differences}
    assert {"dataset", "config", "metric", "adapter", "environment"} <= kinds
    assert any(d.name == "environment.versions.torch" for d in report.differences)
    assert "REPRODUCED within tolerance" in text


def test_reproduce_stops_when_data_differs(trained, home: Path) -> None:
    result, _ = trained
    manifest = read_run_manifest(result.run_dir)
    other = _write_source(home / "other.jsonl", offset=100)
    manifest["dataset"]["sources"][0]["spec"] = f"jsonl:{other}"
    changed = home / "changed" / "manifest.json"
    changed.parent.mkdir()
    changed.write_text(json.dumps(manifest))
    report = reproduce(str(changed), runs_root=home / "runs")
    assert not report.ok and report.run_dir is None
    assert [d.name for d in report.differences if not d.ok] == ["dataset_hash"]
    assert "NOT REPRODUCED" in format_report(report)


def test_resolve_by_prefix_and_errors(trained, home: Path) -> None:
    result, _ = trained
    manifest, path = resolve(result.config_hash[:8], runs_root=home / "runs", hub_cache=home / "hub")
    assert manifest["config_hash"] == result.config_hash and path == result.run_dir / "manifest.json"
    with pytest.raises(ReproduceError, match="no run manifest or versioned config"):
        resolve("ffffff0000", runs_root=home / "runs", hub_cache=home / "hub")
    with pytest.raises(ReproduceError, match="neither a manifest path nor a config hash"):
        resolve("not-a-hash", runs_root=home / "runs", hub_cache=home / "hub")


def test_merge_trained_adapter(trained) -> None:
    from publish.merge import merge_run

    result, _ = trained
    merged = merge_run(result.run_dir, dtype="float32")
    assert merged.max_abs_diff <= merged.tolerance
    assert (merged.merged_dir / "model.safetensors").is_file() and (merged.merged_dir / "tokenizer.json").is_file()
    assert json.loads((merged.merged_dir / "merge_report.json").read_text())["dtype"] == "float32"
