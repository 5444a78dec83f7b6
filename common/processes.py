"""Child processes that cannot outlive us, and temp folders that a killed run does not leave behind.

`run_in_group` starts a command in a session (and process group) of its own and kills that whole
group when the command ends, times out or is interrupted, so no grandchild survives. While
`stop_children_on_signals` is active, SIGINT, SIGTERM and SIGHUP kill every live group first, then
raise, so `finally` blocks (temp folders, atomic writes) still run. Temp folders carry their
owner's pid; `sweep_stale` removes those whose owner is gone (a run killed with SIGKILL).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# After the group is killed, how long to wait for its pipes to close before giving up on the output.
DRAIN_S = 5.0
TERMINATING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_live: set[subprocess.Popen] = set()
_live_lock = threading.RLock()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL every process in the group that `process` leads (a no-op once the group is empty)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all_groups() -> None:
    """Kill the group of every child started by `run_in_group` that is still running."""
    with _live_lock:
        processes = list(_live)
    for process in processes:
        kill_group(process)


atexit.register(kill_all_groups)


def run_in_group(
    args: Sequence[str], *, timeout: float, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `args` in its own session with text pipes and kill its whole group when it returns.

    Raise `subprocess.TimeoutExpired` (carrying the output read so far) after `timeout` seconds.
    """
    process = subprocess.Popen(
        list(args), stdin=subprocess.DEVNULL if input is None else subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    with _live_lock:
        _live.add(process)
    try:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            stdout, stderr = _drain(process)
            raise subprocess.TimeoutExpired(process.args, timeout, output=stdout, stderr=stderr) from None
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        kill_group(process)
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        with _live_lock:
            _live.discard(process)


def _drain(process: subprocess.Popen) -> tuple[str, str]:
    """Collect what a killed group wrote; a process that left the group may hold the pipes, so give up after DRAIN_S."""
    try:
        return process.communicate(timeout=DRAIN_S)
    except subprocess.TimeoutExpired as expired:
        return _text(expired.stdout), _text(expired.stderr)


def _text(output: str | bytes | None) -> str:
    """Decode partial output captured before a timeout."""
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


class Terminated(SystemExit):
    """Raised in the main thread when SIGTERM or SIGHUP arrives; the exit status is 128 + the signal number."""


@contextmanager
def stop_children_on_signals() -> Iterator[None]:
    """Inside: SIGINT/SIGTERM/SIGHUP kill every live child group, then raise (KeyboardInterrupt or `Terminated`).

    Only the main thread can take signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        kill_all_groups()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(128 + signum)

    previous = {number: signal.signal(number, stop) for number in TERMINATING_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def owned_prefix(prefix: str) -> str:
    """Return `prefix` plus this process's pid, for temp folders that `sweep_stale` can attribute."""
    return f"{prefix}{os.getpid()}-"


def sweep_stale(folder: Path, prefix: str) -> list[Path]:
    """Remove the entries named `<prefix><pid>` or `<prefix><pid>-...` in `folder` whose process is gone and
    that we own; return them."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)(?:-|$)")
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or pid_alive(int(match.group(1))):
            continue
        try:
            if entry.lstat().st_uid != os.getuid():
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed
