"""`securecli ask`: guarded answers end to end, refusals with alternatives, and runs only when allowed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from common.prompt import training_row
from eval.backends import Generation
from securecli import ask
from securecli.commands.ask import register
from securecli.userconfig import AskDefaults, UserConfigError, config_path, load_defaults

SCHEMA_FILE = Path(__file__).parent / "data" / "ask_result.schema.json"
PAIRS = [
    ("list files in the current directory", "ls -la"),
    ("show free disk space", "df -h"),
    ("find files over 100MB in /var/log", "find /var/log -type f -size +100M"),
    ("print hello", "echo hello"),
]


class FakeBackend:
    """A backend that always answers with the same raw text."""

    def __init__(self, raw: str) -> None:
        self.name = "fake"
        self.raw = raw

    def generate(self, requests):
        return [Generation(request=request, raw=self.raw, latency_s=0.0) for request in requests]


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(training_row(nl, command)) + "\n" for nl, command in PAIRS))
    return path


@pytest.fixture
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError(f"a subprocess was spawned: {args}")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)


@pytest.fixture(autouse=True)
def isolated_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for variable in ("SECURECLI_BACKEND", "SECURECLI_TRAIN_PATH", "SECURECLI_RUN_TIMEOUT", "SECURECLI_CONCURRENCY",
                     "SECURECLI_MAX_RETRIES"):
        monkeypatch.delenv(variable, raising=False)


def _cli(monkeypatch: pytest.MonkeyPatch | None = None, raw: str | None = None) -> typer.Typer:
    if raw is not None:
        monkeypatch.setattr("securecli.commands.ask._backend", lambda defaults: FakeBackend(raw))
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"): output.rindex("}") + 1])


def test_retrieval_backend_gives_a_guarded_explained_answer(train_file: Path) -> None:
    result = CliRunner().invoke(_cli(), ["ask", "find files over 100MB in /var/log", "--backend", "retrieval",
                                         "--train-path", str(train_file), "--json"])
    assert result.exit_code == 0, result.output
    answer = _json(result.output)
    assert answer["command"] == "find /var/log -type f -size +100M" and answer["verdict"] == "allow"
    assert answer["explanation"] == "find: search for files (by type, by size)"


def test_hf_backend_with_the_tiny_model_gives_a_guarded_answer() -> None:
    from common.tiny import build_tiny_model
    from eval.backends import BackendSpec, make_backend

    backend = make_backend(BackendSpec(kind="hf", base_model=str(build_tiny_model()), max_new_tokens=8,
                                       batch_size=1, device="cpu"))
    result = ask.ask("list files in the current directory", backend)
    AskResult = ask.AskResult
    assert AskResult.model_validate_json(result.model_dump_json()) == result
    assert result.backend == backend.name
    assert (result.status == "ok") == (result.command is not None)
    if result.command is None:
        assert result.refusal is not None
    else:
        assert result.verdict != "block"


def test_blocked_output_is_refused_with_a_safe_alternative(monkeypatch: pytest.MonkeyPatch, no_subprocess: None) -> None:
    result = CliRunner().invoke(_cli(monkeypatch, "rm -rf ~/*"), ["ask", "delete everything in my home folder"])
    assert result.exit_code == 2
    assert "refused" in result.output and "T1485" in result.output
    assert "du -sh ~/* | sort -h" in result.output


@pytest.mark.parametrize("flags", [["--run"], ["--run", "--yes"], ["--run", "--yes", "--json"]])
def test_blocked_output_never_runs_whatever_the_flags(monkeypatch: pytest.MonkeyPatch, no_subprocess: None,
                                                      flags: list[str]) -> None:
    result = CliRunner().invoke(_cli(monkeypatch, "rm -rf /"), ["ask", "clean up", *flags], input="rm -rf /\ny\n")
    assert result.exit_code == 2
    assert "never run" in result.output


def test_blocked_output_never_runs_even_on_a_terminal(no_subprocess: None) -> None:
    result = ask.ask("clean up", FakeBackend("rm -rf /"))
    assert result.command is None and result.rejected_output == "rm -rf /"
    with pytest.raises(ask.RunRefused):
        ask.authorize_run(result, interactive=True, assume_yes=True, prompt=lambda text: "rm -rf /")


def test_no_terminal_run_refuses_without_yes(monkeypatch: pytest.MonkeyPatch, no_subprocess: None) -> None:
    result = CliRunner().invoke(_cli(monkeypatch, "echo hello"), ["ask", "print hello", "--run"])
    assert result.exit_code == 2 and "--yes" in result.output


def test_no_terminal_run_with_yes_executes_an_allowed_command(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(_cli(monkeypatch, "echo hello"), ["ask", "print hello", "--run", "--yes"])
    assert result.exit_code == 0, result.output
    assert "hello" in result.output and "exit code 0" in result.output


def test_warn_never_runs_without_a_terminal(monkeypatch: pytest.MonkeyPatch, no_subprocess: None) -> None:
    result = CliRunner().invoke(_cli(monkeypatch, "git reset --hard"), ["ask", "discard my changes", "--run", "--yes"])
    assert result.exit_code == 2 and "type the command back" in result.output


def test_warn_on_a_terminal_needs_the_command_typed_back() -> None:
    result = ask.ask("discard my changes", FakeBackend("git reset --hard"))
    assert result.verdict == "warn"
    with pytest.raises(ask.RunRefused):
        ask.authorize_run(result, interactive=True, assume_yes=True, prompt=lambda text: "y")
    ask.authorize_run(result, interactive=True, assume_yes=False, prompt=lambda text: "git reset --hard")


def test_allow_on_a_terminal_needs_confirmation() -> None:
    result = ask.ask("print hello", FakeBackend("echo hello"))
    with pytest.raises(ask.RunRefused):
        ask.authorize_run(result, interactive=True, assume_yes=False, prompt=lambda text: "n")
    ask.authorize_run(result, interactive=True, assume_yes=False, prompt=lambda text: "y")


def test_run_is_killed_at_the_timeout() -> None:
    outcome = ask.execute("sleep 5", timeout_s=0.3)
    assert outcome.timed_out and outcome.exit_code is None and outcome.duration_s < 4


def _ends_soon(pid: int, within_s: float = 2.0) -> bool:
    """Tell whether a SIGKILLed process is gone within a moment (the kernel delivers the signal asynchronously)."""
    from common.processes import pid_alive

    deadline = time.monotonic() + within_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_timeout_kills_every_process_the_command_started(tmp_path: Path) -> None:
    marker, pid_file = tmp_path / "marker", tmp_path / "pid"
    command = f"sleep 30 >/dev/null 2>&1 & echo $! > {pid_file}; (sleep 1; touch {marker}) | cat"
    outcome = ask.execute(command, timeout_s=0.5)
    assert outcome.timed_out and outcome.exit_code is None and outcome.duration_s < 1
    assert _ends_soon(int(pid_file.read_text()))
    time.sleep(1.5)
    assert not marker.exists(), "a child of the timed-out command ran on"


def test_background_children_end_with_the_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    outcome = ask.execute(f"sleep 30 >/dev/null 2>&1 & echo $! > {pid_file}; echo started", timeout_s=10)
    assert outcome.exit_code == 0 and outcome.stdout == "started\n" and not outcome.timed_out
    assert _ends_soon(int(pid_file.read_text()))


def test_a_command_with_a_nul_byte_is_refused_not_run(monkeypatch: pytest.MonkeyPatch, no_subprocess: None) -> None:
    with pytest.raises(ask.RunRefused, match="NUL byte at position 4"):
        ask.execute("echo\x00rm -rf ~", timeout_s=5)
    with pytest.raises(ask.RunRefused, match="lone surrogate at position 5"):
        ask.execute("echo \ud800", timeout_s=5)
    allowed = ask.ask("print hello", FakeBackend("echo hello")).model_copy(update={"command": "echo\x00hello"})
    monkeypatch.setattr(ask, "ask", lambda request, backend: allowed)
    result = CliRunner().invoke(_cli(monkeypatch, "echo hello"), ["ask", "print hello", "--run", "--yes"])
    assert result.exit_code == 2 and "not run" in result.output and "NUL byte" in result.output
    assert isinstance(result.exception, SystemExit), result.exception


def test_model_refusal_is_passed_on(no_subprocess: None) -> None:
    result = ask.ask("tidy up the server", FakeBackend("# refused: destroys all data"))
    assert result.status == "refused" and "destroys all data" in result.refusal.reason


class NeverCalledBackend(FakeBackend):
    """A backend that fails the test if the model is ever asked."""

    def generate(self, requests):
        raise AssertionError("a blocked request must not reach the model")


def test_destructive_request_is_refused_before_generation(no_subprocess: None) -> None:
    result = ask.ask("wipe the disk", NeverCalledBackend("dd if=/dev/zero of=/dev/sda"))
    assert result.status == "refused" and result.verdict == "block" and result.command is None
    assert "unsafe" in result.refusal.reason


def test_json_schema_is_stable() -> None:
    checked_in = json.loads(SCHEMA_FILE.read_text())
    assert checked_in == {"AskResult": ask.AskResult.model_json_schema(),
                          "RunOutcome": ask.RunOutcome.model_json_schema()}


def test_user_config_file_then_env_then_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[ask]\nbackend = "openai"\nbase_url = "http://localhost:11434/v1"\nmodel = "m"\n')
    assert load_defaults().backend == "openai"
    monkeypatch.setenv("SECURECLI_BACKEND", "retrieval")
    assert load_defaults().backend == "retrieval"
    assert load_defaults({"backend": "hf", "base_model": "x"}).backend == "hf"
    assert load_defaults().run_timeout_s == AskDefaults().run_timeout_s


def test_bad_user_config_names_the_file() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[ask]\nbackend = 'telepathy'\n")
    with pytest.raises(UserConfigError, match=str(path)):
        load_defaults()


def test_user_config_lives_in_the_platform_config_folder(tmp_path: Path) -> None:
    assert config_path() == tmp_path / "xdg" / "securecli" / "config.toml"


def test_user_config_errors_name_file_line_variable_and_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('# defaults\n[other]\nmax_new_tokens = 5\n[ask]\nbackend = "openai"\n\nmax_new_tokens = 0\nbogus = 1\n')
    with pytest.raises(UserConfigError) as caught:
        load_defaults()
    assert f"{path}:7: max_new_tokens: Input should be greater than or equal to 1" in str(caught.value)
    assert f"{path}:8: bogus: Extra inputs are not permitted" in str(caught.value)
    path.write_text("[ask]\nrun_timeout_s = 5\n")
    monkeypatch.setenv("SECURECLI_RUN_TIMEOUT", "-1")
    with pytest.raises(UserConfigError, match="SECURECLI_RUN_TIMEOUT: run_timeout_s: Input should be greater than 0"):
        load_defaults()
    with pytest.raises(UserConfigError, match="--timeout: run_timeout_s: Input should be greater than 0"):
        load_defaults({"run_timeout_s": 0})
    path.write_text('[ask]\nbackend = "openai\n')
    with pytest.raises(UserConfigError, match=rf"{path}: invalid TOML: .*line 2"):
        load_defaults()
    path.write_text("ask = 3\n")
    with pytest.raises(UserConfigError, match="`ask` must be a table"):
        load_defaults()


def test_user_config_env_names_and_empty_values(monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[ask]\nrun_timeout_s = 5\nmax_retries = 1\n")
    monkeypatch.setenv("RUN_TIMEOUT_S", "9")
    monkeypatch.setenv("SECURECLI_MAX_RETRIES", "")
    monkeypatch.setenv("SECURECLI_CONCURRENCY", "2")
    defaults = load_defaults()
    assert (defaults.run_timeout_s, defaults.max_retries, defaults.concurrency) == (5.0, 1, 2)
    monkeypatch.setenv("SECURECLI_RUN_TIMEOUT", "7")
    assert load_defaults().run_timeout_s == 7.0


def test_ask_builds_the_openai_backend_from_user_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from eval.backends import OpenAIBackend
    from securecli.commands.ask import _backend

    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[ask]\nbackend = "openai"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\nconcurrency = 2\n')
    monkeypatch.setenv("SECURECLI_MAX_RETRIES", "5")
    backend = _backend(load_defaults())
    assert isinstance(backend, OpenAIBackend)
    assert (backend.spec.concurrency, backend.spec.max_retries, backend.client.max_retries) == (2, 5, 5)
    assert _backend(load_defaults({"max_retries": 0})).client.max_retries == 0


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("du -sh ~/* | sort -h", "du: measure disk usage (summarized, human sizes), piped to sort: sort lines (by human sizes)"),
        ("sudo FOO=1 apt-get update", "as root: apt-get: manage Debian packages"),
        ("ls -la && echo done", "ls: list directory contents (long format, including hidden), then if it succeeds echo: print text"),
    ],
)
def test_explanations(command: str, expected: str) -> None:
    assert ask.explain_command(command) == expected
