"""Generation backends: BM25 retrieval, an OpenAI-compatible server on localhost, and hf on the tiny model."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.prompt import SYSTEM_PROMPT, training_row
from eval.backends import BM25, BackendSpec, HFBackend, make_backend


def _write_train(path: Path) -> Path:
    pairs = [
        ("list all files including hidden ones", "ls -la"),
        ("show disk usage of mounted filesystems", "df -h"),
        ("count lines in every python file", "find . -name '*.py' | xargs wc -l"),
        ("show running docker containers", "docker ps"),
    ]
    path.write_text("".join(json.dumps(training_row(nl, cmd)) + "\n" for nl, cmd in pairs))
    return path


def test_bm25_ranks_the_document_sharing_rare_terms_first() -> None:
    index = BM25(["the cat sat", "the dog ran far", "a cat and a dog"])
    assert index.best("where did the dog run far") == 1
    assert index.best("cat") in {0, 2}
    assert index.best("zebra") is None
    scores = index.scores("cat")
    assert scores[0] > scores[2] > 0


def test_retrieval_backend_answers_with_the_nearest_training_command(tmp_path: Path) -> None:
    backend = make_backend(BackendSpec(kind="retrieval", train_path=_write_train(tmp_path / "train.jsonl")))
    outputs = backend.generate(["which docker containers are running", "disk usage please", "qwertyuiop"])
    assert [output.raw for output in outputs] == ["docker ps", "df -h", "ls -la"]
    assert outputs[0].request == "which docker containers are running"
    assert all(output.latency_s >= 0 for output in outputs)


def test_retrieval_reads_nl2bash_rows_and_names_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "nl2bash.jsonl"
    good.write_text(json.dumps({"nl": "print working directory", "bash": "pwd"}) + "\n")
    assert make_backend(BackendSpec(kind="retrieval", train_path=good)).generate(["working directory"])[0].raw == "pwd"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"nl": "x", "bash": "pwd"}) + "\n" + json.dumps({"nl": "y"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: field 'bash'"):
        make_backend(BackendSpec(kind="retrieval", train_path=bad))


def test_backend_spec_names_the_missing_option() -> None:
    with pytest.raises(ValidationError, match="needs: base_url, model"):
        BackendSpec(kind="openai")
    with pytest.raises(ValidationError, match="needs: base_model"):
        BackendSpec(kind="hf")
    with pytest.raises(ValidationError):
        BackendSpec(kind="hf", base_model="m", api_key="secret")


class _ChatServer(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible endpoint on 127.0.0.1: echoes the request back as a command.

    `failures[request]` lists statuses to answer, one per attempt, before the echo; `hold_until` keeps the
    first requests open until that many are in flight at once (or 2 s pass), so the peak shows the concurrency.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    seen: list[dict] = []
    failures: dict[str, list[int]] = {}
    hold_until = 0
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    changed = threading.Condition(lock)

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        server = type(self)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = body["messages"][-1]["content"]
        with server.changed:
            server.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body,
                                "request": request})
            server.in_flight += 1
            server.peak = max(server.peak, server.in_flight)
            server.changed.notify_all()
            server.changed.wait_for(lambda: server.peak >= server.hold_until, timeout=2.0)
            pending = server.failures.get(request) or []
            status = pending.pop(0) if pending else 200
            server.in_flight -= 1
        time.sleep(0.002 * (len(request) % 7))
        reply = {"choices": [{"message": {"role": "assistant", "content": f"echo '{request}'"}}]} if status == 200 \
            else {"error": {"message": f"status {status}"}}
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status != 200:
            self.send_header("retry-after-ms", "1")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def chat_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ChatServer.seen, _ChatServer.failures, _ChatServer.hold_until, _ChatServer.peak = [], {}, 0, 0
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _openai(base_url: str, **options: object):
    return make_backend(BackendSpec(kind="openai", base_url=base_url, model="tiny", api_key_env="UNSET_KEY_VAR",
                                    **options))


def test_openai_backend_posts_chat_completions(chat_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
    spec = BackendSpec(kind="openai", base_url=chat_server, model="tiny", api_key_env="TEST_LLM_KEY", max_new_tokens=16)
    outputs = make_backend(spec).generate(["list files", "show date"])
    assert [output.raw for output in outputs] == ["echo 'list files'", "echo 'show date'"]
    first = _ChatServer.seen[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "tiny" and first["body"]["temperature"] == 0.0
    assert first["body"]["max_tokens"] == 16
    assert first["body"]["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert "sk-test" not in json.dumps(spec.model_dump(mode="json"))


def test_openai_backend_sends_no_key_when_none_is_set(chat_server: str) -> None:
    assert _openai(chat_server).generate(["pwd"])[0].raw == "echo 'pwd'"
    assert _ChatServer.seen[0]["auth"] is None


def test_openai_backend_retries_429_and_503_then_succeeds(chat_server: str) -> None:
    _ChatServer.failures = {"flaky": [429, 503]}
    outputs = _openai(chat_server, max_retries=2).generate(["steady", "flaky"])
    assert [output.raw for output in outputs] == ["echo 'steady'", "echo 'flaky'"]
    attempts = [entry["request"] for entry in _ChatServer.seen]
    assert attempts.count("flaky") == 3 and attempts.count("steady") == 1


def test_openai_backend_gives_up_after_max_retries(chat_server: str) -> None:
    _ChatServer.failures = {"flaky": [429, 503, 503]}
    with pytest.raises(RuntimeError, match=r"chat/completions returned HTTP 503 \(after up to 1 retries\)"):
        _openai(chat_server, max_retries=1).generate(["flaky"])
    assert len(_ChatServer.seen) == 2


def test_openai_backend_does_not_retry_client_errors(chat_server: str) -> None:
    _ChatServer.failures = {"bad": [400]}
    with pytest.raises(RuntimeError, match="HTTP 400"):
        _openai(chat_server, max_retries=3).generate(["bad"])
    assert len(_ChatServer.seen) == 1


def test_openai_backend_reports_http_errors(chat_server: str) -> None:
    _ChatServer.failures = {"explode": [500]}
    with pytest.raises(RuntimeError, match="HTTP 500"):
        _openai(chat_server, max_retries=0).generate(["explode"])


def test_openai_backend_names_the_server_it_cannot_reach() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(RuntimeError, match=rf"{url}/chat/completions: Connection error"):
        _openai(url, max_retries=0, timeout=5.0).generate(["pwd"])


@pytest.mark.parametrize("concurrency", [1, 4])
def test_openai_backend_keeps_at_most_concurrency_requests_in_flight(chat_server: str, concurrency: int) -> None:
    _ChatServer.hold_until = concurrency
    requests = [f"request {'x' * index}" for index in range(12)]
    outputs = _openai(chat_server, concurrency=concurrency).generate(requests)
    assert [output.request for output in outputs] == requests
    assert [output.raw for output in outputs] == [f"echo '{request}'" for request in requests]
    assert _ChatServer.peak == concurrency
    assert all(output.latency_s > 0 for output in outputs)


def test_eval_run_openai_passes_concurrency_and_retries(chat_server: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from securecli.commands.eval import register

    monkeypatch.setenv("SECURECLI_HOME", str(tmp_path))
    data = tmp_path / "prepared" / "abc"
    data.mkdir(parents=True)
    requests = [f"print number {index}" for index in range(6)]
    (data / "test.jsonl").write_text("".join(json.dumps(training_row(request, f"echo '{request}'")) + "\n"
                                              for request in requests))
    _ChatServer.hold_until, _ChatServer.failures = 3, {requests[2]: [429]}
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["eval", "run", "--backend", "openai", "--base-url", chat_server, "--model", "m",
                                      "--data", str(data), "--run", "remote", "--concurrency", "3",
                                      "--max-retries", "1", "--no-execution", "--no-safety"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "remote" / "eval"
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [row["raw"] for row in rows] == [f"echo '{request}'" for request in requests]
    spec = json.loads((out / "metrics.json").read_text())["spec"]
    assert spec["concurrency"] == 3 and spec["max_retries"] == 1
    assert _ChatServer.peak == 3 and len(_ChatServer.seen) == 7


def test_openai_backend_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="concurrency must be at least 1"):
        BackendSpec(kind="openai", base_url="http://127.0.0.1:1/v1", model="m", concurrency=0)
    with pytest.raises(ValidationError, match="max_retries must be at least 0"):
        BackendSpec(kind="openai", base_url="http://127.0.0.1:1/v1", model="m", max_retries=-1)


@pytest.mark.slow
def test_hf_backend_batches_with_the_training_template_and_a_lora_adapter(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from common.tiny import build_tiny_model

    base = build_tiny_model()
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")
    backend = make_backend(BackendSpec(kind="hf", base_model=str(base), adapter=str(tmp_path / "adapter"),
                                       batch_size=2, max_new_tokens=3, device="cpu"))
    assert isinstance(backend, HFBackend)
    assert any("lora_A" in name for name, _ in backend.model.named_parameters())
    assert backend.tokenizer.padding_side == "left"
    prompt = backend.prompt("list files")
    assert prompt.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nlist files<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")
    requests = ["list files", "show the disk usage of every mounted filesystem in a human readable form", "pwd"]
    outputs = backend.generate(requests)
    assert [output.request for output in outputs] == requests
    assert all(isinstance(output.raw, str) and output.latency_s > 0 for output in outputs)
    single = make_backend(BackendSpec(kind="hf", base_model=str(base), adapter=str(tmp_path / "adapter"),
                                      batch_size=1, max_new_tokens=3, device="cpu"))
    assert [output.raw for output in single.generate(requests)] == [output.raw for output in outputs]
