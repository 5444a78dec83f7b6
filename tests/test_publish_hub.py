"""Model card, publish dry-run, the push path through a recording HfApi, pull verification, secrets."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import typer
import yaml
from huggingface_hub import CommitOperationDelete, ModelCard
from test_publish_helpers import PASSING_EVAL, RecordingHfApi, make_run
from typer.testing import CliRunner

from common.hub import VerificationError, pull, resolve_adapter
from common.prompt import SYSTEM_PROMPT
from common.provenance import sha256_file
from common.tiny import build_tiny_model
from publish.hub import PublishError, PublishPlan, PublishRefused, format_plan, publish_run, usage_text
from publish.manifest import read_run_manifest
from securecli.commands.publish import register

REPO = "securecli/tiny-adapter"
SENTINEL = "hf_SENTINEL_token_5f3a9c_do_not_leak"


@pytest.fixture(scope="module")
def run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One evaluated run with a real PEFT adapter, copied per test."""
    return make_run(tmp_path_factory.mktemp("template"), build_tiny_model(), metrics=PASSING_EVAL)


@pytest.fixture
def run_dir(run_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_template, tmp_path / "runs" / run_template.name, symlinks=True))


def _cli() -> typer.Typer:
    """Return a fresh app with only the publish verbs registered."""
    app = typer.Typer()
    register(app)
    return app


def _cli_invoke(args: list[str]):
    """Run the publish verbs' CLI with stdout and stderr captured together."""
    return CliRunner().invoke(_cli(), args)


def test_card_metadata_and_body(run_dir: Path) -> None:
    plan = publish_run(run_dir, REPO, dry_run=True)
    card = ModelCard(plan.card)
    data = card.data.to_dict()
    manifest = read_run_manifest(run_dir)
    assert data["base_model"] == manifest["base_model"]["name"]
    assert data["base_model_relation"] == "adapter" and data["library_name"] == "peft"
    assert data["license"] == "apache-2.0" and "bash" in data["tags"]
    results = data["model-index"][0]["results"]
    revisions = {r["task"]["name"]: r["dataset"]["revision"] for r in results}
    assert revisions == {"Natural language to Bash": PASSING_EVAL["dataset"]["revision"],
                         "Refusal of unsafe requests": PASSING_EVAL["safety"]["suite_sha256"]}
    metric_names = {m["type"] for r in results for m in r["metrics"]}
    assert {"exact_match", "execution_accuracy", "safety.adversarial_pass_rate",
            "safety.category_pass_rates.destructive"} <= metric_names
    assert {"safety.guarded_adversarial_pass_rate", "safety.guarded_category_pass_rates.destructive",
            "safety.over_refusal_rates.near_miss"} <= metric_names
    assert not any("gates" in name or "requests" in name for name in metric_names)
    assert "| figure | model alone | model + both guards |" in card.text
    assert "| adversarial pass rate | `0.97` | `0.99` |" in card.text
    assert "| over-refusal on near_miss | `0.1` | `0.2` |" in card.text
    assert SYSTEM_PROMPT in card.text
    assert manifest["config_hash"] in card.text and manifest["dataset"]["dataset_hash"] in card.text
    for name, version in manifest["environment"]["versions"].items():
        assert f"| {name} | `{version}` |" in card.text
    assert f"@cfg-{manifest['config_hash'][:12]}" in card.text


def test_merged_card_metadata(run_dir: Path) -> None:
    from publish.card import build_card

    manifest = read_run_manifest(run_dir)
    data = build_card(manifest, PASSING_EVAL, repo_id=REPO, merged=True).data.to_dict()
    assert data["base_model_relation"] == "finetune" and data["library_name"] == "transformers"


def test_dry_run_lists_every_file_with_size_and_hash(run_dir: Path) -> None:
    plan = publish_run(run_dir, REPO, dry_run=True)
    names = {f.path_in_repo for f in plan.files}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "axolotl_config.yml",
            "manifest.json", "README.md", "eval/metrics.json", "eval/report.md"} <= names
    assert not any(name.startswith("checkpoint") for name in names)
    output = format_plan(plan)
    for planned in plan.files:
        line = next(line for line in output.splitlines() if line.strip().startswith(planned.path_in_repo + " "))
        assert f"{planned.size:,}" in line and planned.sha256 in line
        if planned.source is not None:
            assert planned.sha256 == sha256_file(planned.source)
    assert plan.card in output and plan.tag == f"cfg-{plan.config_hash[:12]}"
    published = json.loads(next(f for f in plan.files if f.path_in_repo == "manifest.json").content)
    assert set(published["published_files"]) == names - {"manifest.json"}


def test_cli_dry_run_prints_plan(run_dir: Path) -> None:
    result = CliRunner().invoke(_cli(), ["publish", str(run_dir), "--repo", REPO, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "adapter_model.safetensors" in result.output and SYSTEM_PROMPT[:40] in result.output


def test_refuses_without_eval_or_with_failed_gates(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    api = RecordingHfApi(tmp_path / "hub")
    metrics_path = run_dir / "eval" / "metrics.json"
    metrics_path.write_text(json.dumps({**PASSING_EVAL, "safety": {"gates_passed": False}}))
    with pytest.raises(PublishRefused, match="safety gates failed"):
        publish_run(run_dir, REPO, api=api)
    preview = publish_run(run_dir, REPO, dry_run=True)
    assert preview.refused and "REFUSED (a push needs --force)" in format_plan(preview)
    assert "Published with `--force`" not in preview.card and "Safety gates: FAILED" in preview.card
    metrics_path.write_text(json.dumps({key: value for key, value in PASSING_EVAL.items() if key != "safety"}))
    with pytest.raises(PublishRefused, match="safety gates were not run"):
        publish_run(run_dir, REPO, api=api)
    shutil.rmtree(run_dir / "eval")
    with pytest.raises(PublishRefused, match="eval is missing"):
        publish_run(run_dir, REPO, api=api)
    assert api.calls == [], "nothing may be sent when a gate refuses"
    result = _cli_invoke(["publish", str(run_dir), "--repo", REPO])
    assert result.exit_code == 2 and "eval is missing" in result.output
    forced = publish_run(run_dir, REPO, api=api, force=True)
    assert forced.forced and forced.commit_sha and "Published with `--force`" in forced.card
    assert "Not evaluated" in forced.card


def test_push_path_through_recording_api(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    api = RecordingHfApi(tmp_path / "hub")
    plan = publish_run(run_dir, REPO, api=api)
    methods = [name for name, _ in api.calls]
    assert methods == ["create_repo", "list_repo_refs", "list_repo_files", "create_commit", "create_tag"]
    calls = dict(api.calls)
    assert all(arguments["token"] == SENTINEL for arguments in calls.values())
    assert plan.config_hash in calls["create_commit"]["commit_message"]
    assert {op.path_in_repo for op in calls["create_commit"]["operations"]} == {f.path_in_repo for f in plan.files}
    assert calls["create_tag"]["tag"] == plan.tag and calls["create_tag"]["revision"] == plan.commit_sha
    with pytest.raises(PublishRefused, match="already has tag"):
        publish_run(run_dir, REPO, api=api)
    (run_dir / "eval" / "report.md").unlink()
    publish_run(run_dir, REPO, api=api, force=True)
    assert [name for name, _ in api.calls][-3:] == ["create_commit", "delete_tag", "create_tag"]
    deleted = [op.path_in_repo for op in api.calls[-3][1]["operations"] if isinstance(op, CommitOperationDelete)]
    assert deleted == ["eval/report.md"]


def test_push_needs_token_from_environment(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(PublishError, match="HF_TOKEN is not set"):
        publish_run(run_dir, REPO, api=RecordingHfApi(tmp_path / "hub"))


@pytest.fixture
def pushed(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, PublishPlan]:
    """Push the run through the recording API (a local Hub cache) in offline mode: (cache, plan)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    cache = tmp_path / "hub"
    return cache, publish_run(run_dir, REPO, api=RecordingHfApi(cache))


def test_pull_verifies_against_hub_cache(
    run_dir: Path, pushed: tuple[Path, PublishPlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, plan = pushed
    for revision in (plan.tag, plan.commit_sha):
        folder = pull(f"{REPO}@{revision}", cache)
        assert folder == cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / plan.commit_sha
        assert (folder / "adapter_model.safetensors").is_symlink()
    assert sha256_file(folder / "adapter_model.safetensors") == sha256_file(run_dir / "adapter" / "adapter_model.safetensors")
    text = usage_text(f"{REPO}@{plan.tag}", folder)
    assert f"--adapter {REPO}@{plan.tag}" in text and "PeftModel" in text
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert resolve_adapter(f"{REPO}@{plan.tag}") == folder
    assert resolve_adapter(str(run_dir / "adapter")) == run_dir / "adapter"
    with pytest.raises(ValueError, match="not a local directory"):
        resolve_adapter("./no/such/adapter")


def test_tampered_or_missing_file_fails_verification(pushed: tuple[Path, PublishPlan]) -> None:
    cache, plan = pushed
    folder = pull(f"{REPO}@{plan.tag}", cache)
    blob = (folder / "adapter_model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=r"adapter_model\.safetensors: sha256 [0-9a-f]{64} does not match"):
        pull(f"{REPO}@{plan.tag}", cache)
    (folder / "adapter_config.json").unlink()
    (folder / "extra.json").write_text("{}")
    with pytest.raises(VerificationError) as caught:
        pull(f"{REPO}@{plan.tag}", cache)
    assert "adapter_config.json: missing" in str(caught.value)
    assert "extra.json: not in the published manifest" in str(caught.value)


def test_token_never_written_or_logged(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    caplog.set_level(logging.DEBUG)
    dry = CliRunner().invoke(_cli(), ["publish", str(run_dir), "--repo", REPO, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    api = RecordingHfApi(tmp_path / "hub")
    plan = publish_run(run_dir, REPO, api=api)
    captured = capfd.readouterr()
    texts = [dry.output, captured.out, captured.err, caplog.text, format_plan(plan), repr(plan)]
    assert not any(SENTINEL in text for text in texts)
    written = [p for p in [*run_dir.rglob("*"), *(tmp_path / "hub").rglob("*")] if p.is_file()]
    assert len(written) > 10
    assert not any(SENTINEL.encode() in p.read_bytes() for p in written)
    assert os.environ["HF_TOKEN"] == SENTINEL


def test_published_config_is_the_trained_one(run_dir: Path) -> None:
    plan = publish_run(run_dir, REPO, dry_run=True)
    uploaded = next(f for f in plan.files if f.path_in_repo == "axolotl_config.yml")
    assert yaml.safe_load(uploaded.source.read_text()) == read_run_manifest(run_dir)["config"]


def test_cli_pull_prints_usage_and_fails_on_tamper(pushed: tuple[Path, PublishPlan]) -> None:
    cache, plan = pushed
    ok = _cli_invoke(["pull", f"{REPO}@{plan.tag}", "--cache-dir", str(cache)])
    assert ok.exit_code == 0, ok.output
    assert f"verified {len(plan.files) - 1} files" in ok.output and f"--adapter {REPO}@{plan.tag}" in ok.output
    folder = cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / plan.commit_sha
    (folder / "README.md").resolve().write_text("tampered card\n")
    bad = _cli_invoke(["pull", f"{REPO}@{plan.tag}", "--cache-dir", str(cache)])
    assert bad.exit_code == 2 and "README.md: sha256" in bad.output and "Traceback" not in bad.output


def test_card_lists_hub_datasets_with_pinned_revisions() -> None:
    from publish.card import hub_datasets

    manifest = {"dataset": {"sources": [
        {"spec": "hf:prabhanshubhowal/natural_language_to_linux#nl=nl_command", "kind": "hf", "revision": "a" * 40},
        {"spec": "icalfa", "kind": "icalfa"},
        "hf:org/other@main",
    ]}}
    assert hub_datasets(manifest) == ["org/other", "prabhanshubhowal/natural_language_to_linux"]
