"""Generation backends: BM25 retrieval, an OpenAI-compatible server on localhost, and hf on the tiny model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from eval.backends import BM25, BackendSpec, HFBackend, make_backend
from securecli.prompt import SYSTEM_PROMPT, training_row


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
    """A tiny OpenAI-compatible endpoint: echoes the request back as a command."""

    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        request = body["messages"][-1]["content"]
        status, reply = (500, {"error": "boom"}) if request == "explode" else (
            200, {"choices": [{"message": {"role": "assistant", "content": f"echo '{request}'"}}]})
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def chat_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ChatServer.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


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


def test_openai_backend_reports_http_errors(chat_server: str) -> None:
    backend = make_backend(BackendSpec(kind="openai", base_url=chat_server, model="tiny", api_key_env="UNSET_KEY_VAR"))
    with pytest.raises(RuntimeError, match="HTTP 500"):
        backend.generate(["explode"])
    assert _ChatServer.seen[0]["auth"] is None


@pytest.mark.slow
def test_hf_backend_batches_with_the_training_template_and_a_lora_adapter(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from securecli.tiny import build_tiny_model

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
