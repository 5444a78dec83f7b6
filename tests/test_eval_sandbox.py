"""The execution sandbox: confinement (file system, network, capabilities), limits and file-system diffs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from eval.sandbox import Image, Limits, Sandbox, SandboxError, diff_snapshots, missing_tool, normalise_output

SETUP = """
mkdir -p /testbed/dir
echo hello > /testbed/a.txt
echo keep > /testbed/dir/b.txt
chmod 600 /testbed/dir/b.txt
"""


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    with Sandbox(Limits(timeout_s=2.0, max_output_bytes=64 * 1024)) as box:
        yield box


@pytest.fixture(scope="module")
def image(sandbox: Sandbox) -> Image:
    return sandbox.build_image("unit", SETUP)


def test_image_holds_what_the_setup_script_wrote(image: Image) -> None:
    assert image.setup_exit_code == 0
    assert image.snapshot["/testbed/a.txt"][0] == "file"
    assert image.snapshot["/testbed/dir/b.txt"][1] == 0o600
    assert (image.root / "testbed" / "a.txt").read_text() == "hello\n"


def test_runs_in_a_private_root_and_reports_output_and_status(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(image, "cat /testbed/a.txt; pwd; echo $$; exit 3")
    assert result.stdout == "hello\n/\n1"
    assert result.exit_code == 3
    assert not result.timed_out and result.fs_diff == {}


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
    result = sandbox.run(image, "mknod /tmp/disk b 8 0 && echo made; grep CapBnd /proc/self/status")
    assert "made" not in result.stdout
    bounding = int(result.stdout.split()[-1], 16)
    cap_sys_admin, cap_sys_chroot = 1 << 21, 1 << 18
    assert not bounding & cap_sys_admin and not bounding & cap_sys_chroot


def test_timeout_kills_the_whole_process_tree(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(image, "sleep 30 & sleep 30")
    assert result.timed_out
    assert result.duration_s < 10


def test_output_is_capped(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(image, "yes | head -c 1000000")
    assert result.output_limit_hit
    assert len(result.stdout) <= 64 * 1024


def test_file_system_diff_tracks_content_type_mode_and_removal_but_not_mtime(sandbox: Sandbox, image: Image) -> None:
    result = sandbox.run(
        image,
        "touch /testbed/a.txt; echo new > /testbed/new.txt; chmod 644 /testbed/dir/b.txt; "
        "rm /testbed/a.txt; mkdir /testbed/d2; ln -s a.txt /testbed/link",
    )
    assert set(result.fs_diff) == {"/testbed/a.txt", "/testbed/new.txt", "/testbed/dir/b.txt", "/testbed/d2",
                                   "/testbed/link"}
    assert result.fs_diff["/testbed/a.txt"] is None
    assert result.fs_diff["/testbed/dir/b.txt"][1] == 0o644
    assert result.fs_diff["/testbed/link"] == ("symlink", "a.txt")
    assert sandbox.run(image, "touch /testbed/a.txt").fs_diff == {}


def test_each_run_starts_from_a_fresh_copy(sandbox: Sandbox, image: Image) -> None:
    sandbox.run(image, "rm -r /testbed")
    assert sandbox.run(image, "cat /testbed/a.txt").stdout == "hello"


def test_missing_tool_is_named(sandbox: Sandbox, image: Image) -> None:
    assert missing_tool(sandbox.run(image, "no-such-tool-xyz --help")) == "no-such-tool-xyz"
    assert missing_tool(sandbox.run(image, "false")) is None


def test_a_machine_where_namespaces_fail_gets_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import eval.sandbox as module

    monkeypatch.setattr(module, "_WRAPPER", "echo 'unshare: unshare failed: Operation not permitted' >&2; exit 1")
    with pytest.raises(SandboxError, match="cannot run here .*Operation not permitted"):
        Sandbox(scratch=tmp_path)
    assert list(tmp_path.iterdir()) == [], "the scratch area is removed"


def test_helpers_normalise_and_diff() -> None:
    root = Path("/dev/shm/securecli-sandbox-x/run-1")
    assert normalise_output(f"{root}/testbed/a  \n\n\n".encode(), root) == "/testbed/a"
    before = {"/a": ("file", 0o644, 0, 0, "1"), "/b": ("dir", 0o755, 0, 0)}
    after = {"/a": ("file", 0o644, 0, 0, "2"), "/c": ("dir", 0o755, 0, 0)}
    assert diff_snapshots(before, after) == {"/a": after["/a"], "/c": after["/c"], "/b": None}
