"""Permission and ownership changes, setuid bits and capabilities."""

from __future__ import annotations

import re
from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category
from commandrisk.paths import DYN, Place
from commandrisk.rules.base import BLOCK, WARN, hit, on, parse_args, place
from commandrisk.walker import Scan, SimpleCommand

PERM, PRIV = Category.PERMISSIONS, Category.PRIVILEGE_ESCALATION
SECRET_FILES = frozenset({"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/passwd", "/etc/group",
                          "/etc/master.passwd", "/etc/security/opasswd"})
SETUID_TARGETS = re.compile(
    r"(^|/)(ba|da|z|k|c|tc|fi|a)?sh$|(^|/)(python[\d.]*|perl|ruby|node|php|lua|env|find|vim?|nano|less|more|cp|mv|"
    r"awk|gawk|nmap|tar|zip|bash|busybox|docker|nice|timeout|tee|dd|socat|nc|ncat)$|^/tmp/|^/dev/shm/|^/var/tmp/"
)
_OCTAL = re.compile(r"^[0-7]{3,4}$")


def _mode_effects(mode: str) -> set[str]:
    """What a chmod mode does: 'world_writable', 'setuid', 'no_access'."""
    effects: set[str] = set()
    if _OCTAL.match(mode):
        digits = mode.zfill(4)
        if int(digits[0]) & 4:
            effects.add("setuid")
        if int(digits[3]) & 2:
            effects.add("world_writable")
        if digits[1:] == "000":
            effects.add("no_access")
        return effects
    for clause in mode.split(","):
        who, _, perms = re.match(r"([ugoa]*)([-+=]?)(.*)", clause).groups()
        op = clause[len(who): len(who) + 1]
        if op in "+=" and "s" in perms and (not who or "u" in who or "a" in who):
            effects.add("setuid")
        if op in "+=" and "w" in perms and (not who or "o" in who or "a" in who):
            effects.add("world_writable")
        if op == "=" and not perms and who in ("", "a", "ugo"):
            effects.add("no_access")
    return effects


CRITICAL_TREES = frozenset({"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/var/lib", "/var/log",
                            "/var/spool", "/usr/share", "/usr/include"})
EXPOSED_KINDS = frozenset({"root", "system_top", "system_deep", "home_root", "home_secret", "home_other", "device"})


def _top_level(p: Place) -> bool:
    """The root, a top-level system directory, or a core second-level one (/usr/bin, /etc/...)."""
    if p.kind == "root":
        return True
    display = p.location.display()
    return p.kind == "system_top" and (len(p.location.parts) <= 1 or display in CRITICAL_TREES
                                       or p.location.parts[0] in ("etc", "boot", "bin", "sbin", "lib", "lib64"))


@on("chmod")
def chmod(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`chmod -R 777 /`, `chmod u+s /bin/bash`, `chmod 666 /etc/shadow`, `chmod -R 777 ~/.ssh`."""
    parsed = parse_args(cmd.args, frozenset({"--reference"}))
    positionals = [a for a in cmd.args if not a.startswith("-") or re.match(r"^-[rwxXst]+$", a)]
    if len(positionals) < 2:
        return
    mode, targets = positionals[0], positionals[1:]
    recursive = parsed.has("R", "--recursive")
    effects = _mode_effects(mode)
    for target in targets:
        p = place(cmd, scan, target)
        absolute = p.location.display()
        if "setuid" in effects:
            verdict = BLOCK if SETUID_TARGETS.search(absolute) or SETUID_TARGETS.search(target) else WARN
            yield hit(cmd, PRIV, "privesc.setuid", verdict, 85 if verdict == BLOCK else 50,
                      f"sets the setuid/setgid bit on {target}", "T1548.001")
        elif absolute in SECRET_FILES and (effects & {"world_writable", "no_access"} or _world_readable(mode)):
            yield hit(cmd, PERM, "perm.secret_file", BLOCK, 90, f"exposes or breaks {absolute}")
        elif recursive and not p.dynamic and _top_level(p):
            yield hit(cmd, PERM, f"perm.recursive_{p.kind}", BLOCK, 90, f"recursively changes permissions of {p.describe()}")
        elif "world_writable" in effects and p.kind in EXPOSED_KINDS and not p.dynamic:
            yield hit(cmd, PERM, "perm.world_writable_system", BLOCK, 80, f"makes {p.describe()} writable by every user")
        elif recursive and not p.dynamic and p.kind == "system_top":
            yield hit(cmd, PERM, "perm.recursive_system", WARN, 50, f"recursively changes permissions of {p.describe()}")
        elif "world_writable" in effects:
            yield hit(cmd, PERM, "perm.world_writable", WARN, 35, f"makes {target.replace(DYN, '$VAR')} writable by every user")


def _world_readable(mode: str) -> bool:
    """Octal or symbolic modes that let every user read."""
    if _OCTAL.match(mode):
        return bool(int(mode.zfill(4)[3]) & 4)
    return bool(re.search(r"(^|,)[ao]*[+=][rwx]*r", mode)) and ("o" in mode or "a" in mode or mode[0] in "+=")


@on("chown", "chgrp")
def chown(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`chown -R user /`, `chown -R user /usr`, `chown user /etc/shadow`."""
    parsed = parse_args(cmd.args, frozenset({"--reference", "--from"}))
    if len(parsed.positionals) < 2:
        return
    owner, targets = parsed.positionals[0], parsed.positionals[1:]
    recursive = parsed.has("R", "--recursive")
    for target in targets:
        p = place(cmd, scan, target)
        if p.location.display() in SECRET_FILES and not owner.startswith("root"):
            yield hit(cmd, PERM, "perm.secret_file_owner", BLOCK, 90, f"gives {owner} ownership of {p.location.display()}")
        elif recursive and not p.dynamic and _top_level(p):
            yield hit(cmd, PERM, f"perm.recursive_owner_{p.kind}", BLOCK, 90, f"recursively changes the owner of {p.describe()}")
        elif recursive and not p.dynamic and p.kind == "system_top":
            yield hit(cmd, PERM, "perm.recursive_owner_system", WARN, 50, f"recursively changes the owner of {p.describe()}")


@on("setfacl")
def setfacl(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """ACLs granting access on system paths."""
    parsed = parse_args(cmd.args, frozenset({"-m", "-M", "-x", "-X", "--modify", "--set"}))
    for target in parsed.positionals:
        p = place(cmd, scan, target)
        if p.location.display() in SECRET_FILES or (parsed.has("R", "--recursive") and p.critical):
            yield hit(cmd, PERM, "perm.acl_system", BLOCK, 85, f"changes ACLs on {p.describe()}", "T1222.002")


@on("setcap")
def setcap(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Capabilities such as cap_setuid on an interpreter are a root backdoor."""
    caps = " ".join(cmd.args).lower()
    if re.search(r"cap_(setuid|setgid|sys_admin|dac_override|dac_read_search|sys_ptrace|sys_module|chown)", caps):
        yield hit(cmd, PRIV, "privesc.setcap", BLOCK, 85, "grants root-equivalent capabilities to a program", "T1548")


@on("umask")
def umask(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`umask 000` makes every new file world-writable."""
    if cmd.args and cmd.args[-1] in ("000", "0000", "0", "00", "001", "002", "0002") and cmd.args[-1].endswith("0"):
        yield hit(cmd, PERM, "perm.umask_open", WARN, 35, "new files become world-writable")


@on("chattr")
def chattr(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Immutable bits on system files block updates and hide tampering."""
    for target in parse_args(cmd.args).positionals[1:] if cmd.args and cmd.args[0][:1] in "+-=" else []:
        p = place(cmd, scan, target)
        if p.kind in ("system_top", "system_deep", "home_secret"):
            yield hit(cmd, Category.SYSTEM_TAMPERING, "tamper.chattr_system", WARN, 50,
                      f"changes immutable attributes of {p.describe()}", "T1222.002")
