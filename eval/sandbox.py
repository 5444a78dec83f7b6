"""Run shell commands in a throwaway root: private mount, PID and network namespaces.

Each run gets a fresh copy of a file-system image (built once from a setup script). Inside the
namespaces the copy becomes `/` by `pivot_root`; the host's `/usr` and `/etc` are bind-mounted
read-only, the host root is unmounted, there is no network (only a down loopback), dangerous
capabilities are dropped and time, output and file size are limited. After the run the copy is
walked and compared with the image, giving the file-system diff.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

READ_ONLY_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
DEVICE_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9)}
KEPT_CAPABILITIES = ("chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid")
SETUP_FAILED_STATUS = 125
SETUP_FAILED_MARK = "securecli-sandbox: setup failed:"
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

# Runs as PID 1 of the new namespaces (unshare has mounted a fresh /proc): mounts, pivot_root, limits, exec.
_WRAPPER = r"""
fail() { echo "%(mark)s $*" >&2; exit %(status)d; }
root=$1; ro_dirs=$2; fsize_kb=$3; mem_kb=$4; command=$5
mount --rbind "$root" "$root" || fail "bind root"
for d in $ro_dirs; do mount -o bind,ro "/$d" "$root/$d" || fail "bind /$d"; done
for p in sys sysrq-trigger; do
  [ -e "$root/proc/$p" ] || continue
  mount -o bind,ro "$root/proc/$p" "$root/proc/$p" || fail "protect /proc/$p"
done
cd "$root" && pivot_root . . || fail "pivot_root"
umount -l . || fail "detach old root"
cd / || fail "cd /"
ulimit -f "$fsize_kb" -v "$mem_kb" || fail "ulimit"
exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,%(caps)s -- /bin/bash -c "$command"
""" % {
    "mark": SETUP_FAILED_MARK,
    "status": SETUP_FAILED_STATUS,
    "caps": ",".join(f"+{cap}" for cap in KEPT_CAPABILITIES),
}


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not a failure of the command inside it)."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits: wall time, bytes of stdout and of any one file, address space."""

    timeout_s: float = 10.0
    max_output_bytes: int = 1 << 20
    max_memory_bytes: int = 2 << 30


Entry = tuple[object, ...]
Snapshot = dict[str, Entry]


@dataclass(frozen=True)
class Image:
    """A file-system image: a root directory built once and copied for every run."""

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


def normalise_output(data: bytes, run_root: Path) -> str:
    """Decode output, remove the host path of the run root and trailing whitespace per line."""
    text = data.decode("utf-8", errors="replace").replace(str(run_root), "")
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _entry(path: Path) -> Entry:
    """Describe one path by type, permissions, owner and content hash (mtimes are ignored)."""
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return ("symlink", os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return ("dir", mode, info.st_uid, info.st_gid)
    if stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        return ("file", mode, info.st_uid, info.st_gid, digest.hexdigest())
    return ("special", stat.S_IFMT(info.st_mode), mode, info.st_rdev)


def snapshot(root: Path) -> Snapshot:
    """Map every path under `root` (relative, with a leading '/') to its entry."""
    entries: Snapshot = {}
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory)
        for name in (*dirnames, *filenames):
            path = base / name
            entries["/" + path.relative_to(root).as_posix()] = _entry(path)
    return entries


def diff_snapshots(before: Snapshot, after: Snapshot) -> dict[str, Entry | None]:
    """Return added or changed paths with their new entry, and removed paths with None."""
    changes: dict[str, Entry | None] = {path: entry for path, entry in after.items() if before.get(path) != entry}
    changes.update({path: None for path in before.keys() - after.keys()})
    return changes


def _host_system_dirs() -> tuple[list[str], dict[str, str]]:
    """Split the host's system dirs into real directories (bind-mounted) and symlinks (copied)."""
    mounts, links = [], {}
    for name in READ_ONLY_SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            links[name] = os.readlink(host)
        elif host.is_dir():
            mounts.append(name)
    return mounts, links


def _make_skeleton(root: Path, mounts: list[str], links: dict[str, str]) -> None:
    """Create the empty root: mount points, system symlinks, /dev nodes, /tmp and /root."""
    for name in (*mounts, "proc", "root"):
        (root / name).mkdir(mode=0o755)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    for name, target in links.items():
        (root / name).symlink_to(target)
    dev = root / "dev"
    dev.mkdir(mode=0o755)
    for name, (major, minor) in DEVICE_NODES.items():
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    for index, name in enumerate(("stdin", "stdout", "stderr")):
        (dev / name).symlink_to(f"/proc/self/fd/{index}")
    (dev / "fd").symlink_to("/proc/self/fd")


def default_scratch() -> Path | None:
    """Prefer a memory file system that allows device nodes (fast copies); else the temp dir."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and not os.statvfs(shm).f_flag & os.ST_NODEV:
        return shm
    return None


class Sandbox:
    """A scratch area holding file-system images and the per-run copies made from them."""

    def __init__(self, limits: Limits | None = None, scratch: Path | None = None) -> None:
        self.limits = limits or Limits()
        self._mounts, self._links = _host_system_dirs()
        self._scratch = Path(tempfile.mkdtemp(prefix="securecli-sandbox-", dir=scratch or default_scratch()))
        try:
            self._preflight()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete every image and run copy."""
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _preflight(self) -> None:
        """Fail early, with the reason, where namespaces cannot be made (not root, no unshare/pivot_root/setpriv)."""
        root = Path(tempfile.mkdtemp(prefix="preflight-", dir=self._scratch))
        needs = "it needs root, unshare, pivot_root and setpriv"
        try:
            _make_skeleton(root, self._mounts, self._links)
            probe = self._execute(root, "echo ready")
        except OSError as error:
            raise SandboxError(f"the sandbox cannot run here ({needs}): {error}") from error
        if probe.stdout != "ready":
            raise SandboxError(f"the sandbox cannot run here ({needs}): "
                               f"exit {probe.exit_code}: {probe.stderr or 'no output'}")

    def build_image(self, name: str, setup_script: str) -> Image:
        """Build an image by running `setup_script` (plain bash writing absolute paths) in a fresh root."""
        root = Path(tempfile.mkdtemp(prefix=f"image-{name}-", dir=self._scratch))
        _make_skeleton(root, self._mounts, self._links)
        outcome = self._execute(root, setup_script)
        return Image(name=name, root=root, snapshot=snapshot(root), setup_exit_code=outcome.exit_code)

    def run(self, image: Image, command: str) -> RunResult:
        """Run `command` in a fresh copy of `image` and return its output and file-system diff."""
        run_root = Path(tempfile.mkdtemp(prefix=f"run-{image.name}-", dir=self._scratch))
        try:
            subprocess.run(["cp", "-a", f"{image.root}/.", str(run_root)], check=True, capture_output=True)
            result = self._execute(run_root, command)
            return replace(result, fs_diff=diff_snapshots(image.snapshot, snapshot(run_root)))
        finally:
            shutil.rmtree(run_root, ignore_errors=True)

    def _execute(self, root: Path, command: str) -> RunResult:
        """Run `command` with `root` as `/` inside new namespaces; raise SandboxError if setup fails."""
        limits = self.limits
        argv = [
            "unshare", "--mount", "--propagation", "private", "--net", "--pid", "--ipc", "--uts", "--cgroup", "--fork",
            "--kill-child", f"--mount-proc={root}/proc",
            "--", "/bin/bash", "-c", _WRAPPER, "sandbox", str(root), " ".join(self._mounts),
            str(max(1, limits.max_output_bytes // 1024)), str(limits.max_memory_bytes // 1024), command,
        ]
        stdout_path, stderr_path = root.with_name(f"{root.name}.stdout"), root.with_name(f"{root.name}.stderr")
        started = time.monotonic()
        try:
            with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=COMMAND_ENV)
                timed_out = not _wait_exit(process.pid, limits.timeout_s)
                if timed_out:
                    process.kill()
                exit_code = process.wait()
            duration = time.monotonic() - started
            stdout = _read_capped(stdout_path, limits.max_output_bytes)
            stderr = _read_capped(stderr_path, limits.max_output_bytes)
        finally:
            stdout_path.unlink(missing_ok=True)
            stderr_path.unlink(missing_ok=True)
        stderr_text = normalise_output(stderr, root)
        if exit_code == SETUP_FAILED_STATUS and SETUP_FAILED_MARK in stderr_text:
            raise SandboxError(stderr_text)
        return RunResult(
            command=command,
            stdout=normalise_output(stdout, root),
            stderr=stderr_text,
            exit_code=exit_code,
            timed_out=timed_out,
            output_limit_hit=len(stdout) >= limits.max_output_bytes,
            duration_s=duration,
        )


def _wait_exit(pid: int, timeout_s: float) -> bool:
    """Block until the process exits or the timeout passes; return whether it exited."""
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(timeout_s * 1000))
    finally:
        os.close(pidfd)


def _read_capped(path: Path, limit: int) -> bytes:
    """Read at most `limit` bytes of a file."""
    with path.open("rb") as handle:
        return handle.read(limit)



def missing_tool(result: RunResult) -> str | None:
    """Return the name of a tool the command needed but the sandbox lacks, if any."""
    if result.exit_code != 127:
        return None
    match = MISSING_TOOL.search(result.stderr)
    return match.group(1) if match else "unknown"
