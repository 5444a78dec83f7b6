"""Credential access (password hashes, keys, tokens) and exfiltration to the network."""

from __future__ import annotations

import re
from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category
from commandrisk.paths import DYN
from commandrisk.rules.base import BLOCK, NETWORK_SINKS, WARN, every, hit, on
from commandrisk.walker import Scan, SimpleCommand

CRED = Category.CREDENTIAL_ACCESS
HASH_FILES = re.compile(r"^/etc/(shadow|gshadow|master\.passwd|security/opasswd)-?$|^/etc/ssh/ssh_host_\w+_key$")
SECRET_FILES = re.compile(
    r"(^|/)\.ssh/(id_[a-z0-9_]+|identity)$|(^|/)\.aws/credentials$|(^|/)\.netrc$|(^|/)\.git-credentials$"
    r"|(^|/)\.docker/config\.json$|(^|/)\.kube/config$|(^|/)\.pgpass$|(^|/)\.my\.cnf$|(^|/)\.gnupg/"
    r"|(^|/)\.config/gcloud/|(^|/)\.azure/|(^|/)\.password-store/|(^|/)\.vault-token$|(^|/)logins\.json$"
    r"|(^|/)key[34]\.db$|Login Data$|(^|/)\.npmrc$|(^|/)\.pypirc$|^/proc/(\d+|self|\*|\x00)/environ$"
    r"|(^|/)\.(bash|zsh)_history$|(^|/)\.ssh/\*$|(^|/)wallet\.dat$|^~/\.(ssh|gnupg|aws|password-store)$"
)
NOT_READERS = frozenset({"ls", "stat", "chmod", "chown", "chgrp", "touch", "test", "[", "ssh-keygen", "ssh-add",
                         "rm", "shred", "mkdir", "file", "du", "realpath", "readlink", "dirname", "basename",
                         "ln", "setfacl", "getfacl", "ssh-copy-id", "chattr", "lsattr", "vi", "vim", "nano", "emacs"})
KEY_OPTIONS = frozenset({"-i", "-F", "--identity", "-o", "--key", "--cert", "--cacert", "-E"})
ENV_DUMPERS = frozenset({"env", "printenv", "set", "export", "declare"})
CRACKERS = {"mimipenguin": BLOCK, "lazagne": BLOCK, "unshadow": BLOCK, "john": WARN, "hashcat": WARN,
            "hydra": WARN, "medusa": WARN, "secretsdump.py": BLOCK, "pypykatz": BLOCK, "mimikatz": BLOCK,
            "truffleHog": WARN, "gitleaks": WARN}


def _expand(cmd: SimpleCommand, scan: Scan, text: str) -> str:
    """Absolute-ish display of a path argument (`~/.ssh/id_rsa`, `/etc/shadow`)."""
    return scan.frame.place(text, cmd.cwd).location.display() if text else text


SECRET_HINT = re.compile(r"shadow|passwd|opasswd|ssh|\.aws|netrc|credentials|\.docker|\.kube|pgpass|my\.cnf|gnupg|"
                         r"gcloud|azure|password-store|vault-token|logins|key[34]\.db|Login Data|npmrc|pypirc|environ|"
                         r"_history|wallet|id_")


def secrets_read(cmd: SimpleCommand, scan: Scan) -> list[tuple[str, bool]]:
    """Secret files this command reads, each with True for password-hash files."""
    if cmd.name in NOT_READERS or not cmd.argv:
        return []
    if not SECRET_HINT.search(" ".join(cmd.args)) and not cmd.redirects:
        return []
    found: list[tuple[str, bool]] = []
    key_options = KEY_OPTIONS if cmd.name in ("ssh", "scp", "sftp", "rsync", "git", "ssh-copy-id", "autossh") else ()
    candidates = [a for i, a in enumerate(cmd.args) if not (i and cmd.args[i - 1] in key_options)]
    candidates += [r.target for r in cmd.redirects if r.op.startswith("<") and r.op not in ("<<", "<<<")]
    for raw in candidates:
        for piece in re.split(r"[=@:,]", raw) if ("=" in raw or "@" in raw) else [raw]:
            if not piece or piece.startswith("-") or "/" not in piece and not piece.startswith("."):
                continue
            path = _expand(cmd, scan, piece)
            if HASH_FILES.search(path):
                found.append((path, True))
            elif SECRET_FILES.search(path) and not path.endswith(".pub"):
                found.append((path, False))
    return found


def _network_sink(cmd: SimpleCommand) -> bool:
    """A command that sends data off the machine."""
    if cmd.name not in NETWORK_SINKS:
        return False
    if cmd.name == "rsync" or cmd.name == "scp":
        return any(":" in a and not a.startswith("-") for a in cmd.args[1:])
    if cmd.name == "openssl":
        return bool(cmd.args) and cmd.args[0] == "s_client"
    if cmd.name == "aws":
        return "s3" in cmd.args and "cp" in cmd.args
    return True


@every
def credential_access(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Reading password hashes (block) or private keys and tokens (warn); sending them anywhere (block)."""
    secrets = secrets_read(cmd, scan)
    leaks_here = _network_sink(cmd) and cmd.name not in ("ssh",)
    flows_out = any(_network_sink(c) for c in cmd.downstream())
    for path, is_hash in secrets:
        if leaks_here or flows_out:
            yield hit(cmd, CRED, "cred.exfiltrate_secret", BLOCK, 100, f"sends {path} over the network", "T1048")
        elif is_hash:
            yield hit(cmd, CRED, "cred.read_password_hashes", BLOCK, 85, f"reads password hashes in {path}", "T1003.008")
        else:
            yield hit(cmd, CRED, "cred.read_secret", WARN, 45, f"reads credentials in {path}", "T1552.001")
    if _network_sink(cmd) and not secrets:
        substituted = cmd.word_commands()
        for inner in substituted + cmd.upstream():
            inner_secrets = secrets_read(inner, scan) if inner in substituted else []
            if inner_secrets or inner.name in ENV_DUMPERS and not inner.args or _reads_proc_environ(inner):
                what = inner_secrets[0][0] if inner_secrets else "the environment (tokens, keys)"
                yield hit(cmd, CRED, "cred.exfiltrate_secret", BLOCK, 100, f"sends {what} over the network", "T1048")
                return


def _reads_proc_environ(cmd: SimpleCommand) -> bool:
    return any(re.match(r"^/proc/[^/]+/environ$", a.replace(DYN, "x")) for a in cmd.args)


@on("grep", "egrep", "rg", "ag", "findstr")
def password_hunting(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`grep -ri password /etc /home`: sweeping system trees for stored passwords."""
    args = [a.lower() for a in cmd.args]
    recursive = any(a.startswith("-") and ("r" in a or "R" in a) for a in cmd.args) or cmd.name in ("rg", "ag")
    if recursive and any(re.search(r"pass(w(or)?d)?|secret|api[_-]?key|token|private key", a) for a in args):
        roots = [a for a in cmd.args if a.startswith(("/", "~"))]
        if any(scan.frame.place(r, cmd.cwd).kind in ("root", "system_top", "home_root", "home_other") for r in roots):
            yield hit(cmd, CRED, "cred.password_sweep", WARN, 45, "searches system or home trees for passwords",
                      "T1552.001")


@on(*CRACKERS)
def crackers(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Credential dumpers and password crackers."""
    verdict = CRACKERS[cmd.name]
    yield hit(cmd, CRED, f"cred.tool_{cmd.name.split('.')[0].lower()}", verdict, 85 if verdict == BLOCK else 50,
              f"{cmd.name} dumps or cracks credentials", "T1003" if verdict == BLOCK else "T1110.002")


@on("gpg", "gpg2")
def gpg_export(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Exporting secret keys."""
    if any(a.startswith("--export-secret") for a in cmd.args):
        verdict = BLOCK if any(_network_sink(c) for c in cmd.downstream()) else WARN
        yield hit(cmd, CRED, "cred.gpg_export_secret", verdict, 60, "exports private GPG keys", "T1552.004")


@on("security")
def macos_keychain(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """macOS keychain dumps."""
    if cmd.args and cmd.args[0] in ("dump-keychain", "find-generic-password", "find-internet-password"):
        verdict = BLOCK if cmd.args[0] == "dump-keychain" or "-w" in cmd.args or "-g" in cmd.args else WARN
        yield hit(cmd, CRED, "cred.keychain", verdict, 70, "reads passwords from the keychain", "T1555.001")
