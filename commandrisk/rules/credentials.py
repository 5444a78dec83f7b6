"""Credential access (password hashes, keys, tokens) and exfiltration to the network."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from commandrisk.hits import Hit
from commandrisk.models import Category, Verdict
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
    r"|(^|/)id_(rsa|dsa|ecdsa|ed25519)$|(^|/)[^/]*\.(pem|p12|pfx)$|^/proc/[^/]+/mem$|^/dev/k?mem$|^/etc/sudoers(\.d/.*)?$"
    r"|(^|/)\.config/gh/hosts\.ya?ml$|(^|/)\.config/hub$|^/(var/)?run/secrets/|(^|/)\.terraform\.d/credentials"
    r"|(^|/)\.cargo/credentials(\.toml)?$|(^|/)\.gem/credentials$|(^|/)\.composer/auth\.json$|(^|/)\.boto$"
    r"|(^|/)\.config/rclone/rclone\.conf$|(^|/)\.s3cfg$|(^|/)\.m2/settings\.xml$|(^|/)\.ssh/[\w.-]*\.pem$"
)
NOT_READERS = frozenset({"ls", "stat", "chmod", "chown", "chgrp", "touch", "test", "[", "ssh-keygen", "ssh-add",
                         "rm", "shred", "mkdir", "file", "du", "realpath", "readlink", "dirname", "basename",
                         "ln", "setfacl", "getfacl", "ssh-copy-id", "chattr", "lsattr", "vi", "vim", "nano", "emacs"})
KEY_OPTIONS = frozenset({"-i", "-F", "--identity", "-o", "--key", "--cert", "--cacert", "-E"})
ENV_DUMPERS = frozenset({"env", "printenv", "set", "export", "declare"})
CRACKERS = {"mimipenguin": BLOCK, "lazagne": BLOCK, "unshadow": BLOCK, "john": WARN, "hashcat": WARN,
            "hydra": WARN, "medusa": WARN, "secretsdump.py": BLOCK, "pypykatz": BLOCK, "mimikatz": BLOCK,
            "truffleHog": WARN, "gitleaks": WARN}


SECRET_HINT = re.compile(r"shadow|sudoers|secrets|token|hosts\.ya?ml|\.pem|\.key|id_(rsa|dsa|ecdsa|ed25519)|/mem\b|passwd|opasswd|ssh|\.aws|netrc|credentials|\.docker|\.kube|pgpass|my\.cnf|gnupg|"
                         r"gcloud|azure|password-store|vault-token|logins|key[34]\.db|Login Data|npmrc|pypirc|environ|"
                         r"_history|wallet|id_|\.env|\.sql|\.dump|~|/home|/root|\$HOME")
PRIVATE_FILES = re.compile(r"^/etc/(passwd|group)-?$|(^|/)\.env(\.(?!example|sample|template|dist)[\w-]+)?$")
DUMP_FILES = re.compile(r"\.(sql|dump|sqlite3?|bak)(\.(gz|bz2|xz|zst))?$|(^|/)(db|database)[\w-]*\.tar(\.\w+)?$")
BULK_KINDS = frozenset({"home_root", "home_other"})
OUTPUT_OPTIONS = frozenset({"-o", "--output", "-c", "--cookie-jar", "-D", "--dump-header", "--trace", "--trace-ascii",
                            "--stderr", "-O", "--output-document", "--output-file", "-a", "--append-output", "-P",
                            "--directory-prefix", "--save-cookies", "--etag-save"})
TRANSFER_SINKS = frozenset({"scp", "sftp", "rsync", "aws", "gsutil", "rclone", "s3cmd", "smbclient", "ftp", "tftp"})
SECRET_PRINTERS = {("kubectl", "get", "secret"): "", ("kubectl", "get", "secrets"): "",
                   ("aws", "secretsmanager", "get-secret-value"): "", ("aws", "sts", "get-session-token"): "",
                   ("aws", "iam", "create-access-key"): "", ("aws", "ssm", "get-parameter"): "--with-decryption",
                   ("gcloud", "auth", "print-identity-token"): "", ("az", "keyvault", "secret"): "",
                   ("vault", "read"): "", ("heroku", "auth:token"): "", ("getent", "shadow"): "",
                   ("kubectl", "config", "view"): "--raw", ("gh", "auth", "token"): "", ("gcloud", "auth",
                   "print-access-token"): "", ("aws", "configure", "export-credentials"): "",
                   ("az", "account", "get-access-token"): "", ("vault", "kv", "get"): "", ("pass", "show"): ""}


@dataclass(frozen=True)
class Source:
    """Sensitive data a command reads: `level` is hash, secret, private, bulk (a whole home) or dump."""

    path: str
    level: str


def sources_read(cmd: SimpleCommand, scan: Scan) -> list[Source]:
    """Sensitive files and directories this command reads (arguments, `@file` upload values, `<` redirects)."""
    if cmd.name in NOT_READERS or not cmd.argv:
        return []
    if not SECRET_HINT.search(" ".join(cmd.args)) and not cmd.redirects:
        return []
    found: list[Source] = []
    for raw in _read_candidates(cmd):
        for piece in re.split(r"[=@:,<]", raw) if re.search(r"[=@:,<]", raw) else [raw]:
            bare_ok = cmd.cwd is not None and cmd.cwd.anchor in ("/", "~")
            if not piece or piece.startswith("-") or "/" not in piece and not piece.startswith((".", "~")) \
                    and not bare_ok:
                continue
            p = scan.frame.place(piece, cmd.cwd)
            path = p.location.display() if not p.dynamic else piece.replace(DYN, "*")
            if HASH_FILES.search(path):
                found.append(Source(path, "hash"))
            elif SECRET_FILES.search(path) and not path.endswith(".pub"):
                found.append(Source(path, "secret"))
            elif PRIVATE_FILES.search(path):
                found.append(Source(path, "private"))
            elif p.kind in BULK_KINDS and not p.dynamic or path in ("/home", "/home/*"):
                found.append(Source(path, "bulk"))
            elif DUMP_FILES.search(path):
                found.append(Source(path, "dump"))
    return found


def _read_candidates(cmd: SimpleCommand) -> list[str]:
    """Words that may name files the command reads: not key options, not output files, not remote targets."""
    args = cmd.args
    skip = KEY_OPTIONS if cmd.name in ("ssh", "scp", "sftp", "rsync", "git", "ssh-copy-id", "autossh") else frozenset()
    if cmd.name in ("curl", "wget"):
        skip = OUTPUT_OPTIONS
    words = [a for i, a in enumerate(args) if not (i and args[i - 1] in skip) and "://" not in a]
    if cmd.name in ("scp", "rsync", "sftp") and words:
        words = [w for w in words[:-1] if not re.match(r"^[\w.-]*@?[\w.-]+:", w)]
    words += [r.target for r in cmd.redirects if r.op.startswith("<") and r.op not in ("<<", "<<<")]
    return words


def secrets_read(cmd: SimpleCommand, scan: Scan) -> list[tuple[str, bool]]:
    """Secret files this command reads, each with True for password-hash files."""
    return [(s.path, s.level == "hash") for s in sources_read(cmd, scan) if s.level in ("hash", "secret")]


def network_sink(cmd: SimpleCommand) -> bool:
    """A command that sends data off the machine."""
    if cmd.name == "gh":
        return cmd.args[:2] in (["gist", "create"], ["gist", "edit"], ["release", "upload"])
    if cmd.name not in NETWORK_SINKS:
        return False
    if cmd.name == "rsync" or cmd.name == "scp":
        parsed = [a for a in cmd.args if not a.startswith("-")]
        return bool(parsed) and ":" in parsed[-1]
    if cmd.name == "openssl":
        return bool(cmd.args) and cmd.args[0] == "s_client"
    if cmd.name == "aws":
        return "s3" in cmd.args and ("cp" in cmd.args or "sync" in cmd.args or "mv" in cmd.args)
    return True


def sends_stdin(cmd: SimpleCommand) -> bool:
    """A network sink that transmits what arrives on its standard input (`curl -T -`, `-d @-`, `nc`, `mail`)."""
    if not network_sink(cmd):
        return False
    args = cmd.args
    if cmd.name in ("curl", "wget", "http", "https", "xh"):
        uploads_dash = any(a in ("-T", "--upload-file") and args[i + 1: i + 2] in (["-"], ["."])
                           for i, a in enumerate(args))
        return uploads_dash or any(a.endswith(("@-", "<-")) or a in ("--post-file=/dev/stdin", "--body-file=-")
                                   for a in args)
    if cmd.name in TRANSFER_SINKS or cmd.name == "gh":
        return "-" in args
    return True


def _exfil_verdict(source: Source, sink: SimpleCommand) -> Verdict | None:
    """What sending `source` through `sink` deserves: secrets and whole homes block, dumps warn on raw uploads."""
    raw = sink.name not in TRANSFER_SINKS
    if source.level in ("hash", "secret", "bulk") or source.level == "private" and raw:
        return BLOCK
    if source.level == "private" or source.level == "dump" and raw:
        return WARN
    return None


SECRET_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|PASS|API_?KEY|ACCESS_KEY|"
                             r"PRIVATE_KEY|CREDENTIALS?|AUTH)[A-Za-z0-9_]*)", re.I)
SECRET_NAME = re.compile(r"^[A-Za-z_]*(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)"
                         r"[A-Za-z0-9_]*$", re.I)


def secret_variables(cmd: SimpleCommand) -> list[str]:
    """Secret-looking environment variables a command expands (`$GITHUB_TOKEN`) or prints (`printenv AWS_...`)."""
    found = [m.group(1) for w in cmd.words if w is not None and w.node is not None and b"$" in w.node.text
             for m in SECRET_VARIABLE.finditer(w.node.text.decode("utf-8", "replace"))]
    if cmd.name == "printenv":
        found.extend(a for a in cmd.args if SECRET_NAME.match(a))
    return found


def secret_output(cmd: SimpleCommand) -> str | None:
    """What secret a command prints: the environment, a kubeconfig with keys, an access token."""
    if cmd.name in ENV_DUMPERS and not cmd.args or cmd.name == "export" and cmd.args == ["-p"]:
        return "the environment (tokens, keys)"
    variables = secret_variables(cmd) if cmd.name in ("echo", "printf", "printenv", "cat") else []
    if variables:
        return f"the secret variable {variables[0]}"
    if _reads_proc_environ(cmd):
        return "a process environment"
    for key, flag in SECRET_PRINTERS.items():
        if tuple(cmd.argv[: len(key)]) == key and (not flag or flag in cmd.args or "--flatten" in cmd.args):
            return f"the output of {' '.join(key)} (credentials)"
    return None


@every
def credential_access(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Sensitive data reaching a network sink (block or warn); reading password hashes (block) or keys (warn)."""
    sources = sources_read(cmd, scan)
    if not sources and not network_sink(cmd):
        return
    here = network_sink(cmd) and cmd.name != "ssh"
    sinks = ([cmd] if here else []) + cmd.downstream_where(sends_stdin)
    for source in sources:
        verdict = max((_exfil_verdict(source, s) for s in sinks), key=_severity, default=None)
        if verdict is not None:
            risk = 100 if verdict == BLOCK else 55
            yield hit(cmd, CRED, "cred.exfiltrate_secret" if verdict == BLOCK else "cred.upload_sensitive", verdict,
                      risk, f"sends {_phrase(source)} over the network", "T1048")
        elif source.level == "hash":
            yield hit(cmd, CRED, "cred.read_password_hashes", BLOCK, 85, f"reads password hashes in {source.path}",
                      "T1003.008")
        elif source.level == "secret":
            yield hit(cmd, CRED, "cred.read_secret", WARN, 45, f"reads credentials in {source.path}", "T1552.001")
    if network_sink(cmd) and not sources:
        yield from _flows_into_sink(cmd, scan)


def _flows_into_sink(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Secrets substituted into a sink's arguments (files, secret variables), or printed upstream of a sink that
    sends its stdin."""
    variables = secret_variables(cmd)
    if variables:
        if _only_as_credentials(cmd):
            yield hit(cmd, CRED, "cred.send_token", WARN, 45, f"sends the secret variable {variables[0]} as a "
                      "credential to a host the guard cannot vet", "T1552")
        else:
            yield hit(cmd, CRED, "cred.exfiltrate_secret", BLOCK, 100, f"sends the secret variable {variables[0]} "
                      "over the network", "T1048")
        return
    substituted = cmd.word_commands()
    upstream = cmd.upstream() if sends_stdin(cmd) else []
    for inner in substituted + upstream:
        inner_secrets = [s.path for s in sources_read(inner, scan) if s.level in ("hash", "secret", "private")] \
            if inner in substituted else []
        what = inner_secrets[0] if inner_secrets else secret_output(inner)
        if what:
            yield hit(cmd, CRED, "cred.exfiltrate_secret", BLOCK, 100, f"sends {what} over the network", "T1048")
            return


PRINTER_NAMES = frozenset({"echo", "printf", "printenv", "cat"} | ENV_DUMPERS | {key[0] for key in SECRET_PRINTERS})
CREDENTIAL_OPTIONS = frozenset({"-H", "--header", "-u", "--user", "--oauth2-bearer", "--proxy-user"})


def _only_as_credentials(cmd: SimpleCommand) -> bool:
    """Every secret variable sits in an authentication header or user option (`curl -H "Authorization: $T"`)."""
    words = [w for w in cmd.words[1:]]
    for i, word in enumerate(words):
        if word is None or not SECRET_VARIABLE.search(word.node.text.decode("utf-8", "replace")):
            continue
        previous = cmd.argv[i] if i < len(cmd.argv) else ""
        if previous not in CREDENTIAL_OPTIONS:
            return False
    return True


@every
def prints_credentials(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`kubectl get secret -o yaml`, `aws sts get-session-token`, `printenv GITHUB_TOKEN`: credentials on screen."""
    if cmd.name not in PRINTER_NAMES:
        return
    what = secret_output(cmd)
    if what and not (cmd.name in ENV_DUMPERS and not cmd.args):
        yield hit(cmd, CRED, "cred.print_secret", WARN, 45, f"prints {what}", "T1552")


def _severity(verdict: Verdict | None) -> int:
    return -1 if verdict is None else verdict.severity


def _phrase(source: Source) -> str:
    """`~/.ssh/id_rsa`, `the whole home directory ~`, `database dump /backup/db.sql`."""
    if source.level == "bulk":
        return f"the whole home directory {source.path}"
    if source.level == "dump":
        return f"database dump {source.path}"
    return source.path


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
        verdict = BLOCK if any(network_sink(c) for c in cmd.downstream()) else WARN
        yield hit(cmd, CRED, "cred.gpg_export_secret", verdict, 60, "exports private GPG keys", "T1552.004")


@on("security")
def macos_keychain(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """macOS keychain dumps."""
    if cmd.args and cmd.args[0] in ("dump-keychain", "find-generic-password", "find-internet-password"):
        verdict = BLOCK if cmd.args[0] == "dump-keychain" or "-w" in cmd.args or "-g" in cmd.args else WARN
        yield hit(cmd, CRED, "cred.keychain", verdict, 70, "reads passwords from the keychain", "T1555.001")
