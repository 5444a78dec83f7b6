"""runpod.yaml validates; the dry run is a valid RunPod v2 CreatePodRequest; no secret ever appears."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jsonschema
import pytest
import typer
import yaml
from typer.testing import CliRunner

from securecli import launch
from securecli.commands.launch import register
from preprocessing.sources import DEFAULT_TRAINING_SOURCES

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "runpod.yaml"
SCHEMA = json.loads((Path(__file__).parent / "data" / "runpod_v2_create_pod.schema.json").read_text())
SENTINELS = {
    "HF_TOKEN": "hf_SENTINEL_hf_token_value_1234",
    "WANDB_API_KEY": "SENTINEL_wandb_key_5678",
    "RUNPOD_API_KEY": "rpa_SENTINEL_runpod_key_9012",
}


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _invoke(*args: str):
    return CliRunner().invoke(_cli(), list(args))


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SENTINELS.items():
        monkeypatch.setenv(name, value)


def _assert_no_secret(text: str) -> None:
    for value in SENTINELS.values():
        assert value not in text


def test_checked_in_spec_validates() -> None:
    spec = launch.load_spec(SPEC)
    assert spec.gpu.type_id == "NVIDIA A100-PCIE-40GB" and spec.gpu.count == 1
    assert {secret.name for secret in spec.secrets} == {"HF_TOKEN", "WANDB_API_KEY"}
    assert spec.start.args()[:2] == ["pipeline", "/opt/securecli/axolotl/qwen25-coder-7b-qlora.yml"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": "ghcr.io/x/y:latest"}, "image"),
        ({"env": {"HF_TOKEN": "abc"}}, "HF_TOKEN"),
        ({"ports": ["8888"]}, "ports"),
        ({"volume": {"size_gb": 5}}, "volume.size_gb"),
        ({"gpu": {"count": 0}}, "gpu.count"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_spec_names_file_and_field(tmp_path: Path, change: dict, field: str) -> None:
    raw = yaml.safe_load(SPEC.read_text())
    raw.update(change)
    bad = tmp_path / "runpod.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(launch.LaunchError) as error:
        launch.load_spec(bad)
    assert str(bad) in str(error.value) and field in str(error.value)


def test_dry_run_prints_a_valid_create_pod_request_without_secrets(secrets_in_env: None) -> None:
    result = _invoke("launch", str(SPEC), "--dry-run")
    assert result.exit_code == 0, result.output
    _assert_no_secret(result.output)
    body = result.output[result.output.index("{"): result.output.rindex("}") + 1]
    payload = json.loads(body)
    jsonschema.validate(payload, SCHEMA)
    assert payload["gpu"] == {"id": "NVIDIA A100-PCIE-40GB", "count": 1, "minCudaVersion": "13.0"}
    assert payload["env"]["HF_TOKEN"] == launch.REDACTED
    assert "POST https://api.runpod.io/v2/pods" in result.output
    assert "$1.19/hour" in result.output


def test_runpodctl_command_expands_secrets_in_the_callers_shell(secrets_in_env: None) -> None:
    result = _invoke("launch", str(SPEC), "--runpodctl")
    assert result.exit_code == 0, result.output
    _assert_no_secret(result.output)
    assert '"HF_TOKEN=${HF_TOKEN}"' in result.output and "--gpuType 'NVIDIA A100-PCIE-40GB'" in result.output


def test_runpod_secret_source_sends_a_reference_not_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = yaml.safe_load(SPEC.read_text())
    raw["secrets"] = [{"name": "HF_TOKEN", "source": "runpod_secret"}]
    spec_file = tmp_path / "runpod.yaml"
    spec_file.write_text(yaml.safe_dump(raw))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    spec = launch.load_spec(spec_file)
    assert launch.secret_values(spec)["HF_TOKEN"] == "{{ RUNPOD_SECRET_HF_TOKEN }}"


class _Recorder(BaseHTTPRequestHandler):
    requests: list[dict] = []
    status = 201

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.requests.append({"path": self.path, "auth": self.headers["Authorization"], "body": json.loads(body)})
        reply = {"id": "pod_test123", "status": "PROVISIONING"} if _Recorder.status < 400 else {
            "title": "Bad Request", "status": 400, "detail": f"echo {body.decode()}"}
        data = json.dumps(reply).encode()
        self.send_response(_Recorder.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def local_api():
    _Recorder.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_launch_posts_the_payload_and_prints_no_secret(secrets_in_env: None, local_api: str) -> None:
    _Recorder.status = 201
    result = _invoke("launch", str(SPEC), "--api-url", local_api)
    assert result.exit_code == 0, result.output
    assert "pod_test123" in result.output
    _assert_no_secret(result.output)
    [request] = _Recorder.requests
    assert request["path"] == "/v2/pods"
    assert request["auth"] == f"Bearer {SENTINELS['RUNPOD_API_KEY']}"
    jsonschema.validate(request["body"], SCHEMA)
    assert request["body"]["env"]["HF_TOKEN"] == SENTINELS["HF_TOKEN"]


def test_server_errors_are_shown_scrubbed(secrets_in_env: None, local_api: str) -> None:
    _Recorder.status = 400
    result = _invoke("launch", str(SPEC), "--api-url", local_api)
    assert result.exit_code == 2
    assert "400" in result.output and launch.REDACTED in result.output
    _assert_no_secret(result.output)


def test_launch_without_api_key_refuses(monkeypatch: pytest.MonkeyPatch, secrets_in_env: None) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY")
    result = _invoke("launch", str(SPEC))
    assert result.exit_code == 2 and "RUNPOD_API_KEY" in result.output


def test_missing_required_secret_is_named(monkeypatch: pytest.MonkeyPatch, secrets_in_env: None) -> None:
    monkeypatch.delenv("HF_TOKEN")
    result = _invoke("launch", str(SPEC))
    assert result.exit_code == 2 and "HF_TOKEN" in result.output


def test_estimate_math_on_known_lengths() -> None:
    spec = launch.load_spec(SPEC)
    config = {"sequence_len": 100, "sample_packing": True, "pad_to_sequence_len": True,
              "micro_batch_size": 2, "gradient_accumulation_steps": 2, "num_epochs": 3}
    result = launch.estimate_run([60, 50, 40, 30, 20, 10] * 10, config, spec)
    assert result.tokens_per_epoch == 2100 and result.packed_bins_per_epoch == 21
    assert result.steps_per_epoch == 6 and result.total_steps == 18
    seconds = 21 * 100 * 3 / 3000
    assert result.hours == round(seconds / 3600, 2)
    assert result.usd == round(seconds / 3600 * 1.19, 2)


def test_estimate_from_prepared_data_with_the_real_tokenizer(tmp_path: Path) -> None:
    from common.prompt import training_row

    rows = [training_row("list files", "ls -la"), training_row("show disk usage", "df -h")] * 5
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "report.json").write_text("{}")
    result = _invoke("launch", str(SPEC), "--dry-run", "--estimate", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.output[result.output.index("{"): result.output.index("}") + 1])
    assert estimate["train_rows"] == 10 and 40 < estimate["mean_tokens_per_row"] < 120
    assert estimate["packed_bins_per_epoch"] == 1 and estimate["total_steps"] == 3


def test_pipeline_runs_the_four_stages_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from types import SimpleNamespace

    calls: list[tuple] = []
    prepared = tmp_path / "data" / "prepared" / "abc"
    run_dir = tmp_path / "runs" / "r1"
    monkeypatch.setenv("SECURECLI_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("preprocessing.pipeline.prepare",
                        lambda sources, out_root, params, **kw: calls.append(("prepare", sources)) or SimpleNamespace(out_dir=prepared))
    monkeypatch.setattr("securecli.train.train", lambda config, data_dir=None: calls.append(("train", data_dir))
                        or SimpleNamespace(run_dir=run_dir, adapter_dir=run_dir / "adapter"))
    monkeypatch.setattr("eval.run.plan_from_options", lambda kind, **kw: (kind, kw))
    unscored = {"execution": {"status": "unavailable", "reason": "the sandbox cannot start here",
                              "predictions": "execution_predictions.jsonl"}}
    monkeypatch.setattr("eval.run.run_eval", lambda plan, where: calls.append(("eval", plan, where)) or unscored)
    monkeypatch.setattr("publish.hub.publish_run", lambda where, repo, merged, dry_run: calls.append(("publish", where, repo, dry_run)))
    config = ROOT / "axolotl" / "qwen25-coder-7b-qlora.yml"
    logged: list[str] = []
    assert launch.run_pipeline(config, "org/name", dry_run_publish=True, log=logged.append) == run_dir
    notes = [line for line in logged if line.startswith("execution accuracy not scored: the sandbox cannot start")]
    assert len(notes) == 1 and "\n" not in notes[0]
    assert f"securecli eval exec --pred {run_dir / 'eval' / 'execution_predictions.jsonl'}" in notes[0]
    assert [call[0] for call in calls] == ["prepare", "train", "eval", "publish"]
    assert calls[0][1] == list(DEFAULT_TRAINING_SOURCES) and calls[1][1] == prepared
    kind, options = calls[2][1]
    assert kind == "hf" and options["adapter"] == str(run_dir / "adapter") and options["data"] == prepared
    assert options["base_model"] == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert calls[3] == ("publish", run_dir, "org/name", True)


def test_pipeline_names_an_unwritable_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    volume = tmp_path / "volume"
    monkeypatch.setattr(launch.os, "access", lambda path, mode: Path(path) != volume / "data")
    with pytest.raises(launch.LaunchError, match=f"{volume / 'data'}: not writable"):
        launch.check_writable(volume / "data")
