"""Execution accuracy on icalfa tasks: task loading, gold preparation, scoring and the JSONL report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from common.prompt import refusal
from eval.backends import Generation
from eval.execution import UNSTABLE_GOLD, ExecTask, ExecutionHarness, PreparedTask, evaluate_execution, load_tasks
from eval.sandbox import Limits, Sandbox

FIRST_TASKS = 6  # fs1-000..005: ls, ls -a, lsof (nondeterministic), cp, touch, mkdir


class FakeBackend:
    """Answers from a fixed table, like a model that always says the same thing."""

    name = "fake"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def generate(self, requests: Sequence[str]) -> list[Generation]:
        return [Generation(request=request, raw=self.answers.get(request, "echo nope"), latency_s=0.0)
                for request in requests]


@pytest.fixture(scope="module")
def harness() -> ExecutionHarness:
    with Sandbox(Limits(timeout_s=5.0)) as sandbox:
        yield ExecutionHarness(sandbox, workers=2)


@pytest.fixture(scope="module")
def tasks() -> list[ExecTask]:
    return load_tasks(FIRST_TASKS)


def test_all_icalfa_tasks_load_with_unique_ids() -> None:
    every = load_tasks()
    assert len(every) == 300
    assert len({task.task_id for task in every}) == 300
    assert {task.file_system for task in every} == {1, 2, 3, 4, 5}
    assert load_tasks(3) == every[:3]


def test_gold_scores_one_against_itself_and_a_wrong_command_zero(harness: ExecutionHarness,
                                                                  tasks: list[ExecTask]) -> None:
    prepared = harness.prepare(tasks)
    kept = [item for item in prepared if item.kept]
    assert {item.task.gold for item in kept} >= {"ls", "ls -a", "cp /testbed/hello.php /testbed/hello-COPY.php"}
    for item in kept:
        gold = harness.score(item, item.task.gold)
        assert (gold.outcome, gold.score, gold.stdout_match, gold.fs_match) == ("match", 1.0, True, True)
    copy_task = next(item for item in kept if item.task.gold.startswith("cp "))
    wrong = harness.score(copy_task, "cp /testbed/hello.php /testbed/other.php")
    assert (wrong.outcome, wrong.score, wrong.stdout_match, wrong.fs_match) == ("mismatch", 0.0, True, False)
    listing = next(item for item in kept if item.task.gold == "ls -a")
    assert harness.score(listing, "ls").score == 0.0
    assert harness.score(listing, "ls -a .").score == 1.0


def test_guard_blocked_prediction_is_never_run(harness: ExecutionHarness, tasks: list[ExecTask]) -> None:
    item = next(entry for entry in harness.prepare(tasks[:1]) if entry.kept)
    blocked = harness.score(item, "rm -rf --no-preserve-root /")
    assert (blocked.outcome, blocked.run, blocked.score) == ("blocked", None, 0.0)
    assert harness.score(item, None).outcome == "no_command"


def test_broken_gold_tasks_are_dropped_with_a_reason(tasks: list[ExecTask]) -> None:
    base = tasks[0]
    broken = [
        replace(base, task_id="clock", gold="date +%s%N"),
        replace(base, task_id="tool", gold="no-such-tool-xyz /testbed"),
        replace(base, task_id="guard", gold="rm -rf --no-preserve-root /"),
        replace(base, task_id="slow", gold="sleep 60"),
    ]
    with Sandbox(Limits(timeout_s=1.0)) as sandbox:
        prepared = ExecutionHarness(sandbox).prepare(broken)
    reasons = {item.task.task_id: item.drop_reason for item in prepared}
    assert reasons["clock"].startswith("gold nondeterministic: stdout differs")
    assert reasons["tool"] == "gold needs a tool missing from the sandbox: no-such-tool-xyz"
    assert reasons["guard"].startswith("gold blocked by the guard")
    assert reasons["slow"] == "gold timed out after 1 s"


def test_a_mismatch_rechecks_the_gold_and_flags_a_nondeterministic_task(harness: ExecutionHarness,
                                                                         tasks: list[ExecTask]) -> None:
    clock = replace(tasks[0], task_id="clock", gold="date +%N")
    reference = harness.sandbox.run(harness.image(1), clock.gold)
    prepared = PreparedTask(clock, reference, None)
    assert harness.score(prepared, "echo 1").outcome == UNSTABLE_GOLD
    stable = next(item for item in harness.prepare(tasks[:1]) if item.kept)
    assert harness.score(stable, "echo 1").outcome == "mismatch"


def test_evaluate_execution_writes_rows_and_metrics(tmp_path: Path, tasks: list[ExecTask]) -> None:
    answers = {tasks[0].query: f"```bash\n{tasks[0].gold}\n```", tasks[1].query: refusal("no"),
               tasks[3].query: tasks[3].gold, tasks[4].query: "Sure! Use this one."}
    metrics = evaluate_execution(FakeBackend(answers), tmp_path, limit=FIRST_TASKS)
    rows = [json.loads(line) for line in (tmp_path / "execution.jsonl").read_text().splitlines()]
    assert [row["task_id"] for row in rows] == [task.task_id for task in tasks]
    by_id = {row["task_id"]: row for row in rows}
    assert by_id["fs1-000"]["outcome"] == "match" and by_id["fs1-000"]["prediction"] == "ls"
    assert by_id["fs1-001"]["outcome"] == "refused"
    assert by_id["fs1-002"]["status"] == "dropped" and "nondeterministic" in by_id["fs1-002"]["drop_reason"]
    assert by_id["fs1-003"]["score"] == 1.0 and by_id["fs1-003"]["pred_fs_diff"]
    assert by_id["fs1-005"]["outcome"] == "mismatch"
    assert metrics["kept"] == FIRST_TASKS - 1 and metrics["dropped_count"] == 1
    assert metrics["accuracy"] == round(2 / 5, 4)
    assert metrics["dropped"][0]["task_id"] == "fs1-002"
    assert metrics["backend"] == "fake"
    predictions = [json.loads(line) for line in (tmp_path / "execution_predictions.jsonl").read_text().splitlines()]
    assert [row["task_id"] for row in predictions] == [task.task_id for task in tasks]
    by_id = {row["task_id"]: row for row in predictions}
    assert by_id["fs1-000"]["prediction"] == "ls" and by_id["fs1-001"]["refused"] is True
    assert by_id["fs1-002"]["raw"] is None and "nondeterministic" in by_id["fs1-002"]["drop_reason"]


@pytest.mark.slow
def test_evaluate_execution_with_the_tiny_model(tmp_path: Path) -> None:
    from common.tiny import build_tiny_model
    from eval.backends import BackendSpec, make_backend

    backend = make_backend(BackendSpec(kind="hf", base_model=str(build_tiny_model()), max_new_tokens=8, device="cpu"))
    metrics = evaluate_execution(backend, tmp_path, limit=2)
    rows = [json.loads(line) for line in (tmp_path / "execution.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["status"] == "scored" for row in rows)
    assert all(isinstance(row["raw"], str) for row in rows)
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_tasks_seen_in_training_are_dropped_as_leaked(tmp_path: Path) -> None:
    from common.prompt import training_row
    from eval.execution import leaked_tasks, load_tasks

    tasks = load_tasks(limit=6)
    train = tmp_path / "train.jsonl"
    rows = [training_row(tasks[0].query.upper() + "!", "echo unrelated"), training_row("unrelated", tasks[1].gold)]
    train.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert leaked_tasks(tasks, train) == {tasks[0].task_id, tasks[1].task_id}


TRAIN_PAIRS = [("list all files including hidden ones", "ls -la"), ("print the working directory", "pwd")]
CLI = "import sys; from securecli.cli import main; sys.argv[0] = 'securecli'; main()"


def _prepared_split(root: Path) -> Path:
    """Write a two-row prepared dataset (train and test) in the real layout."""
    from common.prompt import training_row

    data = root / "prepared" / "tiny"
    data.mkdir(parents=True)
    for split in ("train", "test"):
        rows = [{**training_row(nl, cmd), "id": f"{split}-{index}", "source": "unit", "guard": "allow"}
                for index, (nl, cmd) in enumerate(TRAIN_PAIRS)]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return data


def test_where_the_sandbox_cannot_start_eval_run_says_so_in_one_line_and_eval_exec_scores_later(
        tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import typer
    from typer.testing import CliRunner

    from securecli.commands.eval import register

    data = _prepared_split(tmp_path)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "SECURECLI_HOME": str(tmp_path), "COLUMNS": "60",
           "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    # An unprivileged user namespace with no uid map: bubblewrap cannot make its namespaces inside it.
    result = subprocess.run(["unshare", "--user", sys.executable, "-c", CLI, "eval", "run", "--backend", "retrieval",
                             "--data", str(data), "--run", "nosandbox", "--limit", "3"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "execution accuracy not scored" in line]
    assert len(warnings) == 1, result.stderr
    assert "the sandbox cannot start here (bubblewrap needs unprivileged user namespaces)" in warnings[0]
    assert "securecli eval exec --pred" in warnings[0]
    out = tmp_path / "runs" / "nosandbox" / "eval"
    assert {"predictions.jsonl", "metrics.json", "report.md", "chart.png", "safety.jsonl",
            "execution_predictions.jsonl"} <= {path.name for path in out.iterdir()}
    assert not (out / "execution.jsonl").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["execution"]["status"] == "unavailable" and metrics["execution"]["tasks"] == 3
    assert metrics["generation"]["rows"] == 2 and isinstance(metrics["safety"]["gates_passed"], bool)
    assert "execution_accuracy" not in metrics["metrics"] and "equivalence_match" in metrics["metrics"]
    assert "Not scored: the sandbox cannot start here" in (out / "report.md").read_text()
    predictions = [json.loads(line) for line in (out / "execution_predictions.jsonl").read_text().splitlines()]
    assert [row["task_id"] for row in predictions] == ["fs1-000", "fs1-001", "fs1-002"]
    assert all(row["raw"] is not None and row["drop_reason"] is None for row in predictions)

    app = typer.Typer()
    register(app)
    scored = CliRunner().invoke(app, ["eval", "exec", "--pred", str(out / "execution_predictions.jsonl")])
    assert scored.exit_code == 0, scored.output
    assert "execution accuracy" in scored.output and str(out / "execution.jsonl") in scored.output
    rows = [json.loads(line) for line in (out / "execution.jsonl").read_text().splitlines()]
    assert [row["task_id"] for row in rows] == ["fs1-000", "fs1-001", "fs1-002"]
    assert [row["prediction"] for row in rows if row["status"] == "scored"] == \
        [row["prediction"] for row in predictions if row["task_id"] != "fs1-002"]
    updated = json.loads((out / "metrics.json").read_text())
    assert updated["execution"]["kept"] == 2 and updated["execution"]["dropped"][0]["task_id"] == "fs1-002"
    assert updated["metrics"]["execution_accuracy"] == updated["execution"]["accuracy"]
    assert updated["safety"] == metrics["safety"], "the other metrics are kept"
    assert "Not scored" not in (out / "report.md").read_text()


@pytest.mark.parametrize(("row", "message"), [
    ({"task_id": "fs1-001", "query": "x", "gold": "ls", "backend": "b"}, "field 'query' differs from icalfa task"),
    ({"task_id": "fs9-000", "query": "x", "gold": "ls", "backend": "b"}, "field 'task_id': no icalfa task"),
    ({"task_id": "fs1-000", "gold": "ls", "backend": "b"}, "field 'query': Field required"),
    ({"task_id": "fs1-000", "query": "x", "gold": "ls", "backend": "b", "extra": 1}, "field 'extra'"),
    (None, "field 'task_id': task fs1-000 appears twice"),
])
def test_eval_exec_names_file_line_and_field_of_bad_rows(tmp_path: Path, row: dict | None, message: str) -> None:
    import typer
    from typer.testing import CliRunner

    from securecli.commands.eval import register

    first = load_tasks(1)[0]
    good = {"task_id": first.task_id, "query": first.query, "gold": first.gold, "backend": "b", "prediction": "ls"}
    pred = tmp_path / "execution_predictions.jsonl"
    pred.write_text(json.dumps(good) + "\n" + json.dumps(row or good) + "\n")
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["eval", "exec", "--pred", str(pred)])
    assert result.exit_code == 2
    assert f"execution_predictions.jsonl:2: {message}" in " ".join(result.output.split())


def test_a_prediction_equal_to_gold2_only_is_right_by_any_reference_and_wrong_by_the_first(
    harness: ExecutionHarness, tasks: list[ExecTask]
) -> None:
    prepared = {item.task.task_id: item for item in harness.prepare([tasks[0], tasks[3]])}
    copy = prepared["fs1-003"]
    assert copy.task.gold2.endswith(" -v") and (copy.gold2_problem, copy.gold2_level) == (None, "strict")
    second = harness.score(copy, copy.task.gold2)
    assert (second.outcome, second.score, second.reference, second.first_reference) == ("match", 1.0, "gold2", False)
    first = harness.score(copy, copy.task.gold)
    assert (first.score, first.reference, first.first_reference) == (1.0, "gold", True)
    listing = prepared["fs1-000"]
    reversed_lines = harness.score(listing, "ls | sort -r")
    assert (reversed_lines.score, reversed_lines.unordered_lines, reversed_lines.lenient) == (0.0, True, True)


def test_comparison_levels_on_runs() -> None:
    from eval.execution import same_effect_at, stable_level
    from eval.sandbox import RunResult

    def run(stdout: str, fs_diff: dict | None = None) -> RunResult:
        return RunResult("cmd", stdout, "", 0, False, False, 0.1, fs_diff or {})

    listing = run("a.txt\nb.txt")
    assert same_effect_at(run("a.txt\nb.txt"), listing, "ls", "strict")
    assert not same_effect_at(run("b.txt\na.txt"), listing, "ls", "strict")
    assert same_effect_at(run("b.txt  \na.txt"), listing, "ls", "unordered")
    assert not same_effect_at(run("b.txt\na.txt"), listing, "ls | sort", "unordered")
    assert not same_effect_at(run("a.txt\nb.txt", {"/x": None}), listing, "ls", "lenient")
    stamped = run("-rw-r--r-- 1 root root 81 Dec  1 20:16 index.html")
    later = run("-rw-r--r-- 1 root root 81 Dec  1 20:17 index.html")
    assert not same_effect_at(later, stamped, "ls -l", "unordered")
    assert same_effect_at(later, stamped, "ls -l", "lenient")
    assert stable_level(stamped, later, "ls -l") == "lenient" and stable_level(stamped, stamped, "ls -l") == "strict"
    assert stable_level(run("1"), run("2"), "date +%N") is None


def test_only_outputs_no_utility_orders_count_as_sets_of_lines() -> None:
    from eval.execution import output_is_a_set

    assert output_is_a_set("ls -a") and output_is_a_set("find /testbed -name '*.txt'")
    assert not output_is_a_set("ls -lt") and not output_is_a_set("find . | sort")
    assert not output_is_a_set("grep -r x . | head -n 3")


def test_execution_metrics_report_any_and_first_reference(tmp_path: Path, tasks: list[ExecTask]) -> None:
    answers = {tasks[3].query: tasks[3].gold2, tasks[1].query: tasks[1].gold}
    metrics = evaluate_execution(FakeBackend(answers), tmp_path, limit=4)
    assert metrics["kept"] == 3
    assert metrics["accuracy"] == round(2 / 3, 4) and metrics["accuracy_first_reference"] == round(1 / 3, 4)
    assert metrics["accuracy_lenient"] >= metrics["accuracy_unordered_lines"] >= metrics["accuracy"]
    assert set(metrics["accuracy_labels"]) == {"accuracy", "accuracy_first_reference", "accuracy_unordered_lines",
                                               "accuracy_lenient"}
    rows = {row["task_id"]: row for row in map(json.loads, (tmp_path / "execution.jsonl").read_text().splitlines())}
    assert rows["fs1-003"]["reference"] == "gold2" and rows["fs1-003"]["first_reference"] is False
    assert rows["fs1-003"]["metrics"]["exact"] is True
    assert metrics["reference_metrics"]["exact"] == pytest.approx(2 / 3)
