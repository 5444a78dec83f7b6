"""`securecli ask`: a plain-language request becomes one guarded command, explained, optionally run.

Flow: guard the request -> generate -> extract the command -> guard the command -> explain it.
A blocked request or command is refused (with a safe alternative when one is known) and is never run.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class FindingOut(BaseModel):
    """One guard finding, as `--json` reports it."""

    model_config = ConfigDict(frozen=True)

    stage: Literal["request", "command"]
    category: str
    technique: str = Field(description="MITRE ATT&CK technique id")
    rule_id: str
    snippet: str
    message: str
    verdict: Literal["allow", "warn", "block"]


class Refusal(BaseModel):
    """Why nothing runnable is returned, and what to do instead."""

    reason: str
    alternative: str | None = Field(default=None, description="a safe command that helps with the same goal")
    alternative_reason: str | None = None


class AskResult(BaseModel):
    """The `--json` output of `securecli ask` (schema version 1; tests/data/ask_result.schema.json)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    request: str
    status: Literal["ok", "refused"]
    command: str | None = Field(description="the command to run; null when refused (never a blocked command)")
    verdict: Literal["allow", "warn", "block"] = Field(description="the guard's verdict on the whole exchange")
    risk: int = Field(ge=0, le=100)
    findings: list[FindingOut]
    explanation: str | None = Field(description="one line: what the command does")
    guard_explanation: str = Field(description="the guard's reasons in words")
    refusal: Refusal | None
    rejected_output: str | None = Field(description="the model output that was refused, for display only")
    backend: str
    latency_s: float


class RunOutcome(BaseModel):
    """What a confirmed run did."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float


# Safe alternatives, keyed by the guard's rule id (most specific) or category.
ALTERNATIVES: dict[str, tuple[str, str]] = {
    "destructive_filesystem": ("du -sh ~/* | sort -h", "see what takes space before deleting anything by hand"),
    "fs.find_delete_filtered": ("find . -type f -mtime +30 -print", "list the matching files first; delete them one by one"),
    "disk_device_write": ("lsblk -f", "inspect disks and filesystems without writing to them"),
    "permissions_ownership": ("ls -la", "inspect permissions before changing them"),
    "perm.world_writable": ("chmod u+rw,go-w FILE", "grant the owner access without opening it to everyone"),
    "privilege_escalation": ("id", "check which user and groups you have"),
    "remote_code_execution": ("curl -fsSLO URL && less \"$(basename URL)\"", "download the script and read it before running"),
    "credential_access_exfiltration": ("ls -la ~/.ssh", "list key files without reading or sending their contents"),
    "persistence": ("crontab -l", "review the scheduled jobs that already exist"),
    "defense_evasion": ("history | tail -n 20", "review recent history instead of erasing it"),
    "dos.kill_all": ("ps aux --sort=-%cpu | head -n 15", "find the process that misbehaves, then stop only that one"),
    "dos.fill_disk": ("df -h", "check free space"),
    "dos.fork_bomb": ("ulimit -u", "check the process limit"),
    "denial_of_service": ("uptime", "check the load instead of stressing the machine"),
    "system_tampering": ("systemctl --failed", "inspect the system state without changing it"),
    "destructive_container_cloud_vcs": ("git status && docker ps -a", "inspect repository and container state first"),
}

# One-line descriptions of common utilities and of their most telling flags.
UTILITIES: dict[str, str] = {
    "ls": "list directory contents", "cd": "change directory", "pwd": "print the working directory",
    "cat": "print files", "less": "page through text", "more": "page through text", "head": "print the first lines",
    "tail": "print the last lines", "find": "search for files", "locate": "find files by name from an index",
    "grep": "search text for a pattern", "egrep": "search text for an extended regex", "rg": "search text recursively",
    "sed": "edit a text stream", "awk": "process text by fields", "cut": "cut fields from lines",
    "sort": "sort lines", "uniq": "collapse repeated lines", "wc": "count lines, words or bytes",
    "tr": "translate characters", "tee": "copy input to files and output", "xargs": "run a command on input items",
    "du": "measure disk usage", "df": "show free space per filesystem", "free": "show memory use",
    "top": "show running processes live", "htop": "show running processes live", "ps": "list processes",
    "pgrep": "find processes by name", "pkill": "signal processes by name", "kill": "signal a process",
    "killall": "signal processes by name", "uptime": "show load and uptime", "uname": "show system information",
    "hostname": "show the host name", "whoami": "print the current user", "id": "print user and group ids",
    "date": "print the date", "cal": "print a calendar", "echo": "print text", "printf": "print formatted text",
    "touch": "create files or update timestamps", "mkdir": "create directories", "rmdir": "remove empty directories",
    "rm": "remove files", "cp": "copy files", "mv": "move or rename files", "ln": "create links",
    "chmod": "change permissions", "chown": "change owner", "chgrp": "change group", "stat": "show file metadata",
    "file": "detect file types", "tar": "create or extract archives", "gzip": "compress files",
    "gunzip": "decompress files", "zip": "create zip archives", "unzip": "extract zip archives",
    "curl": "transfer data from URLs", "wget": "download files", "ssh": "open a remote shell",
    "scp": "copy files over SSH", "rsync": "synchronize files", "ping": "check that a host answers",
    "dig": "query DNS", "nslookup": "query DNS", "ip": "show or change network settings",
    "ifconfig": "show network interfaces", "netstat": "show network connections", "ss": "show sockets",
    "lsof": "list open files", "mount": "mount filesystems or list mounts", "umount": "unmount filesystems",
    "lsblk": "list block devices", "fdisk": "edit partition tables", "dd": "copy raw data",
    "git": "version control", "docker": "manage containers", "kubectl": "manage Kubernetes",
    "systemctl": "manage services", "journalctl": "read the system journal", "service": "manage services",
    "apt": "manage Debian packages", "apt-get": "manage Debian packages", "yum": "manage RPM packages",
    "dnf": "manage RPM packages", "pip": "manage Python packages", "npm": "manage Node packages",
    "python": "run Python", "python3": "run Python", "node": "run JavaScript", "bash": "run a shell",
    "sh": "run a shell", "env": "show or set the environment", "export": "set environment variables",
    "which": "locate a command", "whereis": "locate a command and its docs", "man": "show a manual page",
    "history": "show shell history", "alias": "define command aliases", "crontab": "manage scheduled jobs",
    "sudo": "run as another user", "su": "switch user", "passwd": "change a password", "useradd": "add a user",
    "usermod": "modify a user", "groups": "print group membership", "diff": "compare files",
    "cmp": "compare files byte by byte", "md5sum": "print MD5 checksums", "sha256sum": "print SHA-256 checksums",
    "basename": "strip directories from a path", "dirname": "strip the last path part", "realpath": "resolve a path",
    "readlink": "resolve a link", "seq": "print a number sequence", "sleep": "wait", "watch": "rerun a command",
    "time": "time a command", "nohup": "run immune to hangups", "jobs": "list shell jobs", "nl": "number lines",
    "paste": "merge lines of files", "join": "join lines on a field", "split": "split a file", "rev": "reverse lines",
    "column": "format into columns", "jq": "query JSON", "base64": "encode or decode base64", "nc": "open raw sockets",
    "openssl": "run crypto tools", "shred": "overwrite files", "mkfs": "create a filesystem", "chattr": "change file attributes",
    "tree": "show a directory tree", "zcat": "print compressed files", "xz": "compress files", "bzip2": "compress files",
    "iptables": "edit firewall rules", "ufw": "manage the firewall", "nproc": "print the number of CPUs",
    "lscpu": "show CPU details", "vmstat": "show system statistics", "iostat": "show I/O statistics",
}

FLAGS: dict[str, dict[str, str]] = {
    "ls": {"-l": "long format", "-a": "including hidden", "-h": "human sizes", "-t": "by time", "-R": "recursively", "-S": "by size"},
    "find": {"-name": "by name", "-iname": "by name, any case", "-type": "by type", "-size": "by size", "-mtime": "by age",
             "-mmin": "by age in minutes", "-user": "by owner", "-perm": "by permissions", "-delete": "and delete them",
             "-exec": "and run a command on each", "-maxdepth": "limited depth", "-empty": "empty ones"},
    "grep": {"-r": "recursively", "-R": "recursively", "-i": "ignoring case", "-n": "with line numbers", "-v": "inverted",
             "-l": "listing file names", "-c": "counting matches", "-E": "extended regex", "-w": "whole words"},
    "du": {"-s": "summarized", "-h": "human sizes", "-a": "all files", "-c": "with a total", "--max-depth": "limited depth"},
    "df": {"-h": "human sizes", "-T": "with types", "-i": "inodes"},
    "sort": {"-n": "numerically", "-h": "by human sizes", "-r": "in reverse", "-k": "by key", "-u": "unique"},
    "head": {"-n": "count lines"}, "tail": {"-n": "count lines", "-f": "following new lines"},
    "tar": {"-c": "create", "-x": "extract", "-t": "list", "-z": "gzip", "-j": "bzip2", "-f": "archive file", "-v": "verbose"},
    "ps": {"aux": "all processes with owners", "-e": "all processes", "-f": "full format"},
    "rm": {"-r": "recursively", "-f": "without asking", "-i": "asking first"},
    "cp": {"-r": "recursively", "-a": "preserving attributes", "-i": "asking before overwrite"},
    "chmod": {"-R": "recursively"}, "chown": {"-R": "recursively"},
    "wc": {"-l": "lines", "-w": "words", "-c": "bytes"},
    "curl": {"-O": "saving to a file", "-L": "following redirects", "-s": "silently", "-I": "headers only"},
}

_OPERATORS = {"|": "piped to", "|&": "piped to", "&&": "then if it succeeds", "||": "else", ";": "then", "&": "in the background, then"}


def _flag_words(utility: str, arguments: list[str]) -> list[str]:
    """Describe the known flags among a utility's arguments, including bundled short flags like -la."""
    table = FLAGS.get(utility, {})
    described: list[str] = []
    for argument in arguments:
        if argument in table:
            described.append(table[argument])
        elif argument.startswith("-") and not argument.startswith("--") and len(argument) > 2:
            described += [table[f"-{letter}"] for letter in argument[1:] if f"-{letter}" in table]
        elif argument.split("=", 1)[0] in table:
            described.append(table[argument.split("=", 1)[0]])
    return list(dict.fromkeys(described))


def explain_command(command: str) -> str:
    """Return one line saying what each utility in the command does (from a local table; no network)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as error:
        return f"could not parse the command ({error})"
    line = ""
    segment: list[str] = []
    connector = ""
    for token in [*tokens, ";"]:
        if token not in _OPERATORS and not set(token) <= set("|&;<>()"):
            segment.append(token)
            continue
        if segment:
            described = _describe_segment(segment)
            line = f"{line}, {connector} {described}" if line else described
            segment = []
        connector = _OPERATORS.get(token, connector or "then")
    return line or "empty command"


def _describe_segment(words: list[str]) -> str:
    """Describe one simple command: skip env assignments and `sudo`, then utility plus flags."""
    prefix = ""
    index = 0
    while index < len(words):
        word = words[index]
        if word == "sudo":
            prefix = "as root: "
        elif not ("=" in word and not word.startswith("-")):
            break
        index += 1
    if index >= len(words):
        return "set variables"
    utility = words[index].rsplit("/", 1)[-1]
    summary = UTILITIES.get(utility, "run a program not in the local table")
    flags = _flag_words(utility, words[index + 1:])
    detail = f" ({', '.join(flags)})" if flags else ""
    return f"{prefix}{utility}: {summary}{detail}"


def _findings(assessment, stage: str) -> list[FindingOut]:
    """Convert the guard's findings for one stage."""
    return [
        FindingOut(stage=stage, category=finding.category.value, technique=finding.technique, rule_id=finding.rule_id,
                   snippet=finding.snippet, message=finding.message, verdict=finding.verdict.value)
        for finding in assessment.findings
    ]


def safe_alternative(assessment) -> tuple[str, str] | None:
    """Return a safe (command, why) for the first blocking finding with a known alternative."""
    for finding in assessment.findings:
        if finding.verdict.value != "block":
            continue
        for key in (finding.rule_id, finding.category.value):
            if key in ALTERNATIVES:
                return ALTERNATIVES[key]
    return None


def _refusal(assessment, reason: str) -> Refusal:
    """Build a refusal with the guard's reason and a safe alternative when one is known."""
    alternative = safe_alternative(assessment)
    return Refusal(reason=reason, alternative=alternative[0] if alternative else None,
                   alternative_reason=alternative[1] if alternative else None)


def _reasons(assessment) -> str:
    """Summarize the blocking findings of an assessment in one line."""
    blocking = [f"{finding.message} [{finding.technique}, {finding.rule_id}]"
                for finding in assessment.findings if finding.verdict.value == "block"]
    return "; ".join(blocking) or assessment.explanation


def ask(request: str, backend) -> AskResult:
    """Guard, generate, extract, guard and explain one request."""
    from commandrisk import assess, assess_prompt, default_context
    from common.prompt import REFUSAL_PREFIX, is_refusal
    from eval.extract import extract_lenient

    began = time.perf_counter()
    before = assess_prompt(request)
    request_findings = _findings(before, "request")
    if before.verdict.value == "block":
        return AskResult(
            request=request, status="refused", command=None, verdict="block", risk=before.risk,
            findings=request_findings, explanation=None, guard_explanation=before.explanation,
            refusal=_refusal(before, f"the request asks for something unsafe: {_reasons(before)}"),
            rejected_output=None, backend=backend.name, latency_s=round(time.perf_counter() - began, 4),
        )
    generation = backend.generate([request])[0]
    command = extract_lenient(generation.raw)
    common = {"request": request, "backend": backend.name, "rejected_output": None}
    if command is None or is_refusal(command):
        reason = command[len(REFUSAL_PREFIX):].strip() if command else "the model gave no command"
        alternative = safe_alternative(before)
        return AskResult(
            **common, status="refused", command=None, verdict=before.verdict.value, risk=before.risk,
            findings=request_findings, explanation=None, guard_explanation=before.explanation,
            refusal=Refusal(reason=f"the model refused: {reason}" if command else reason,
                            alternative=alternative[0] if alternative else None,
                            alternative_reason=alternative[1] if alternative else None),
            latency_s=round(time.perf_counter() - began, 4),
        )
    after = assess(command, default_context())
    findings = request_findings + _findings(after, "command")
    verdict = max((before.verdict, after.verdict), key=lambda item: item.severity).value
    latency = round(time.perf_counter() - began, 4)
    if after.verdict.value == "block":
        return AskResult(
            **{**common, "rejected_output": command}, status="refused", command=None, verdict="block",
            risk=max(before.risk, after.risk), findings=findings, explanation=explain_command(command),
            guard_explanation=after.explanation,
            refusal=_refusal(after, f"the generated command is unsafe: {_reasons(after)}"), latency_s=latency,
        )
    return AskResult(
        **common, status="ok", command=command, verdict=verdict, risk=max(before.risk, after.risk),
        findings=findings, explanation=explain_command(command), guard_explanation=after.explanation,
        refusal=None, latency_s=latency,
    )


class RunRefused(Exception):
    """`--run` did not execute the command; the message says why."""


def authorize_run(result: AskResult, *, interactive: bool, assume_yes: bool, prompt: Callable[[str], str]) -> None:
    """Raise RunRefused unless this result may run: never block; warn only after the user types the
    command back on a terminal; allow after a y/N confirmation, or `--yes`."""
    if result.status != "ok" or result.command is None or result.verdict == "block":
        raise RunRefused("blocked commands are never run")
    if result.verdict == "warn":
        if not interactive:
            raise RunRefused("a warn verdict needs a terminal to type the command back; --yes does not apply")
        typed = prompt("This command needs care. Type it exactly to run it")
        if typed.strip() != result.command.strip():
            raise RunRefused("the typed command did not match; nothing was run")
        return
    if assume_yes:
        return
    if not interactive:
        raise RunRefused("no terminal to confirm on: pass --yes to run an allowed command")
    if prompt("Run it? [y/N]").strip().lower() not in {"y", "yes"}:
        raise RunRefused("not confirmed; nothing was run")


def execute(command: str, timeout_s: float) -> RunOutcome:
    """Run a command with bash in a session of its own, capturing its output; at `timeout_s` seconds, or when
    the command ends, its whole process group is killed, so nothing it started outlives it.

    Raise RunRefused for a command that bash cannot be handed: a NUL byte (it would cut the command short)
    or a lone surrogate (not UTF-8).
    """
    from common.processes import run_in_group, stop_children_on_signals

    if "\x00" in command:
        raise RunRefused(f"the command contains a NUL byte at position {command.index(chr(0))}; nothing was run")
    try:
        command.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RunRefused(f"the command is not valid UTF-8 (lone surrogate at position {error.start}); "
                         "nothing was run") from None
    began = time.perf_counter()
    try:
        with stop_children_on_signals():
            completed = run_in_group(["bash", "-c", command], timeout=timeout_s)
    except subprocess.TimeoutExpired as expired:
        return RunOutcome(exit_code=None, stdout=expired.stdout or "", stderr=expired.stderr or "", timed_out=True,
                          duration_s=round(time.perf_counter() - began, 3))
    return RunOutcome(exit_code=completed.returncode, stdout=completed.stdout, stderr=completed.stderr,
                      timed_out=False, duration_s=round(time.perf_counter() - began, 3))
