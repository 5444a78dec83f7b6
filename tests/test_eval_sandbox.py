"""The execution sandbox: confinement (file system, /etc, network, capabilities), limits, teardown, non-root."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import eval.sandbox as sandbox_module
from eval.sandbox import (
    SYNTHETIC_ETC,
    Image,
    Limits,
    Sandbox,
    diff_snapshots,
    missing_tool,
    normalise_output,
    snapshot_tree,
)

REPO = Path(__file__).resolve().parents[1]
SETUP = """
mkdir -p /testbed/dir
echo hello > /testbed/a.txt
echo keep > /testbed/dir/b.txt
chmod 600 /testbed/dir/b.txt
"""
FORK_LOOP = ("perl -e '$0 = \"securecli-fork-loop\"; my $n = 0; "
             "while (1) { my $pid = fork; die \"fork failed after $n: $!\\n\" unless defined $pid; "
             "if (!$pid) { sleep 60; exit } $n++ }'")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    with Sandbox(Limits(timeout_s=2.0, max_output_bytes=64 * 1024)) as box:
        yield box


@pytest.fixture(scope="module")
def image(sandbox: Sandbox) -> Image:
    return sandbox.build_image("unit", SETUP)


@pytest.fixture(scope="module")
def tight() -> Sandbox:
    """A sandbox with a long timeout and small process and disk limits."""
    with Sandbox(Limits(timeout_s=20.0, max_processes=32, disk_bytes=8 << 20)) as box:
        yield box


def _host_processes_named(marker: str) -> list[int]:
    """Return the host PIDs whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_image_holds_what_the_setup_script_wrote(image: Image) -> None:
    assert image.setup_exit_code == 0
    assert image.snapshot["/testbed/a.txt"][0] == "file"
    assert image.snapshot["/testbed/dir/b.txt"][1] == 0o600
    assert {"/tmp", "/root"} <= set(image.snapshot)
    assert not {"/usr", "/etc", "/proc", "/dev"} & set(image.snapshot), "system paths are not part of the image"
    assert (image.root / "testbed" / "a.txt").read_text() == "hello\n"


def test_runs_in_a_private_root_and_reports_output_and_status(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(image, "cat /testbed/a.txt; pwd; echo $$; id -un; hostname; exit 3")
    assert result.stdout == "hello\n/\n2\nroot\nsandbox"
    assert result.exit_code == 3
    assert not result.timed_out and result.fs_diff == {}


def test_the_hosts_etc_and_its_secrets_are_not_visible(sandbox: Sandbox, image: Image) -> None:
    listing = sandbox.run(image, "ls -A /etc").stdout.split("\n")
    assert sorted(listing) == sorted([*SYNTHETIC_ETC, "alternatives"])
    result = sandbox.run(image, "cat /etc/shadow /proc/1/root/etc/shadow; getent shadow root; cat /etc/passwd")
    assert result.stderr.count("/etc/shadow: No such file or directory") == 2
    assert all(line.split(":")[1] == "x" for line in result.stdout.splitlines()), "passwd holds no hashes"
    host_shadow = Path("/etc/shadow")
    if os.access(host_shadow, os.R_OK):
        secrets = [line for line in host_shadow.read_text().splitlines() if line.strip()]
        assert secrets and not any(line in result.stdout for line in secrets)
    assert sandbox.run(image, "awk 'BEGIN { print 1 + 1 }'").stdout == "2", "task tools work with the synthetic /etc"


def test_cannot_write_outside_its_root(sandbox: Sandbox, image: Image, tmp_path: Path) -> None:
    outside = tmp_path / "escaped.txt"
    command = (
        "echo ran > /tmp/inside.txt; "
        f"mkdir -p {tmp_path}; echo x > {outside}; "
        "touch /usr/escaped /etc/escaped; "
        "mount -o remount,rw /usr; mount -t tmpfs none /mnt; "
        "echo 1 > /proc/sys/vm/drop_caches; "
        f"test -e {Path(__file__).resolve()} && echo host-root-visible"
    )
    result = sandbox.run(image, command)
    assert not outside.exists()
    assert not Path("/usr/escaped").exists() and not Path("/etc/escaped").exists()
    assert "/tmp/inside.txt" in result.fs_diff, "the command did run inside the sandbox"
    assert f"{tmp_path}/escaped.txt" in result.fs_diff, "the write landed in the sandbox's own copy"
    assert "Read-only file system" in result.stderr
    assert "host-root-visible" not in result.stdout
    assert "/mnt" not in result.fs_diff


def test_cannot_reach_the_network(sandbox: Sandbox, image: Image) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            accepted, _ = server.accept()
            accepted.close()
        server.settimeout(0.5)
        result = sandbox.run(image, f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")
        assert "connected" not in result.stdout
        assert result.exit_code != 0
        with pytest.raises(TimeoutError):
            server.accept()


def test_dangerous_capabilities_are_dropped(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(image, "mknod /tmp/disk b 8 0 && echo made; unshare -U true && echo nested; "
                                "grep CapBnd /proc/self/status")
    assert "made" not in result.stdout and "nested" not in result.stdout
    bounding = int(result.stdout.split()[-1], 16)
    cap_sys_admin, cap_sys_chroot = 1 << 21, 1 << 18
    assert not bounding & cap_sys_admin and not bounding & cap_sys_chroot


def test_timeout_kills_the_whole_process_tree(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(image, "sleep 30 & sleep 30")
    assert result.timed_out
    assert result.duration_s < 10


def test_a_fork_loop_is_stopped_by_the_process_limit_well_before_the_timeout(tight: Sandbox) -> None:
    image = tight.build_image("forks", "mkdir /testbed")
    result = tight.run(image, FORK_LOOP)
    assert not result.timed_out and result.duration_s < 5, "the limit stopped it, not the 20 s timeout"
    assert "Resource temporarily unavailable" in result.stderr
    forked = int(result.stderr.split("fork failed after ")[1].split(":")[0])
    assert 0 < forked < 32
    leftovers = _host_processes_named("securecli-fork-loop")
    assert leftovers == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in leftovers]


def test_writing_past_the_disk_cap_fails_inside_without_touching_the_host(tight: Sandbox) -> None:
    image = tight.build_image("disk", "mkdir /testbed")
    result = tight.run(image, "for i in $(seq 64); do head -c 524288 /dev/zero > /testbed/f$i || "
                              "{ echo full at $i; break; }; done; du -sk /testbed")
    assert "No space left on device" in result.stderr
    full_at = int(result.stdout.split("full at ")[1].split()[0])
    assert full_at <= 17, "8 MiB holds at most 16 files of 512 KiB"
    assert int(result.stdout.split()[-2]) <= 8 * 1024
    assert "/testbed/f1" in result.fs_diff
    host_bytes = sum(path.lstat().st_size for path in tight._scratch.rglob("*") if not path.is_symlink())
    assert host_bytes < 1 << 20, "the data lived in the capped tmpfs, not in the host's scratch area"


def test_output_is_capped(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(image, "yes | head -c 1000000")
    assert result.output_limit_hit
    assert len(result.stdout) <= 64 * 1024


def test_teardown_leaves_no_process_and_no_run_copy(sandbox: Sandbox, image: Image) -> None:
    before = sorted(path.name for path in sandbox._scratch.iterdir())
    result = sandbox.run(image, "(exec -a securecli-leftover-probe sleep 30) & echo started")
    assert result.stdout == "started" and not result.timed_out
    assert _host_processes_named("securecli-leftover-probe") == []
    assert sorted(path.name for path in sandbox._scratch.iterdir()) == before


def test_the_deadline_covers_the_snapshot(sandbox: Sandbox, image: Image, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_snapshot(root_fd: int, skip: frozenset[str], deadline: float) -> dict:
        time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)
        return snapshot_tree(root_fd, skip, deadline)

    monkeypatch.setattr(sandbox_module, "snapshot_tree", slow_snapshot)
    result = sandbox.run(image, "echo quick")
    assert result.timed_out and result.fs_diff == {}
    assert result.duration_s < 3


def test_file_system_diff_tracks_content_type_mode_and_removal_but_not_mtime(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(
        image,
        "touch /testbed/a.txt; echo new > /testbed/new.txt; chmod 644 /testbed/dir/b.txt; "
        "rm /testbed/a.txt; mkdir /testbed/d2; ln -s a.txt /testbed/link; mkdir -m 000 /testbed/locked",
    )
    assert set(result.fs_diff) == {"/testbed/a.txt", "/testbed/new.txt", "/testbed/dir/b.txt", "/testbed/d2",
                                   "/testbed/link", "/testbed/locked"}
    assert result.fs_diff["/testbed/a.txt"] is None
    assert result.fs_diff["/testbed/dir/b.txt"][1] == 0o644
    assert result.fs_diff["/testbed/link"] == ("symlink", "a.txt")
    assert result.fs_diff["/testbed/locked"][:2] == ("dir", 0)
    assert sandbox.run(image, "touch /testbed/a.txt").fs_diff == {}


def test_each_run_starts_from_a_fresh_copy(sandbox: Sandbox, image: Image) -> None:
    sandbox.run(image, "rm -r /testbed")
    assert sandbox.run(image, "cat /testbed/a.txt").stdout == "hello"


def test_missing_tool_is_named(sandbox: Sandbox, image: Image) -> None:
    assert missing_tool(sandbox.run(image, "no-such-tool-xyz --help")) == "no-such-tool-xyz"
    assert missing_tool(sandbox.run(image, "false")) is None


def _sandbox_as_unprivileged_user(scratch: Path) -> dict:
    """Build an image and run a command with the real uid and gid of `nobody` (from root) or as we are."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    with Sandbox(Limits(timeout_s=10.0), scratch=scratch) as box:
        image = box.build_image("nonroot", "mkdir /testbed && echo hi > /testbed/a.txt")
        result = box.run(image, "id -u; cat /testbed/a.txt; touch /testbed/b.txt")
    return {"euid": os.geteuid(), "stdout": result.stdout, "diff": sorted(result.fs_diff)}


def test_runs_when_the_caller_is_not_root() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="securecli-nonroot-"))
    try:
        outcome = _outcome_as_unprivileged_user(scratch)
        assert "error" not in outcome, outcome
        assert list(scratch.iterdir()) == [], "the scratch area is removed"
    finally:
        shutil.rmtree(scratch)
    assert outcome["euid"] != 0
    assert outcome["stdout"] == "0\nhi", "uid 0 inside its own user namespace only"
    assert outcome["diff"] == ["/testbed/b.txt"]


def _outcome_as_unprivileged_user(scratch: Path) -> dict:
    """Run `_sandbox_as_unprivileged_user` here when we are not root, else in a forked child that drops root."""
    if os.geteuid() != 0:
        outcome = _sandbox_as_unprivileged_user(scratch)
    else:
        scratch.chmod(0o777)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                payload = json.dumps(_sandbox_as_unprivileged_user(scratch))
            except BaseException as error:  # noqa: BLE001 - the child reports every failure to the parent
                payload = json.dumps({"error": repr(error)})
            os.write(write_end, payload.encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as handle:
            outcome = json.loads(handle.read() or b'{"error": "no answer"}')
        os.waitpid(pid, 0)
    return outcome


def test_a_runtime_without_user_namespaces_gets_one_clear_line(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from eval.sandbox import Sandbox, SandboxError\n"
            "try:\n    Sandbox(scratch=Path(sys.argv[1]))\nexcept SandboxError as error:\n    print(error)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # An unprivileged user namespace with no uid map: bubblewrap cannot make its namespaces inside it.
    result = subprocess.run(["unshare", "--user", sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("the sandbox cannot start here (bubblewrap needs unprivileged user namespaces)")
    assert list(tmp_path.iterdir()) == [], "the scratch area is removed"


def test_helpers_normalise_snapshot_and_diff(tmp_path: Path) -> None:
    assert normalise_output(b"/testbed/a  \n\n\n") == "/testbed/a"
    before = {"/a": ("file", 0o644, 0, 0, "1"), "/b": ("dir", 0o755, 0, 0)}
    after = {"/a": ("file", 0o644, 0, 0, "2"), "/c": ("dir", 0o755, 0, 0)}
    assert diff_snapshots(before, after) == {"/a": after["/a"], "/c": after["/c"], "/b": None}
    (tmp_path / "skipped").mkdir()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "link").symlink_to("/etc/passwd")
    root_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert set(snapshot_tree(root_fd, frozenset({"skipped"}))) == {"/kept", "/kept/link"}
        with pytest.raises(TimeoutError):
            snapshot_tree(root_fd, deadline=time.monotonic() - 1)
    finally:
        os.close(root_fd)
