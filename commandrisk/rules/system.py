"""Writes to sensitive files, persistence, defense evasion, privilege escalation, tampering, denial of service."""

from __future__ import annotations

import re
from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category, Verdict
from commandrisk.rules.base import (
    BLOCK,
    WARN,
    content_written,
    every,
    hit,
    nested_hits,
    on,
    parse_args,
    place,
    static_text_into,
    writes,
)
from commandrisk.walker import Scan, SimpleCommand

PERSIST, EVADE, TAMPER = Category.PERSISTENCE, Category.DEFENSE_EVASION, Category.SYSTEM_TAMPERING
PRIV, DOS, DISK = Category.PRIVILEGE_ESCALATION, Category.DENIAL_OF_SERVICE, Category.DISK_WRITE

# (pattern on the resolved path, category, technique, verdict on overwrite, verdict on append/edit, message)
SENSITIVE_WRITES: list[tuple[re.Pattern[str], Category, str, Verdict, Verdict, str]] = [
    (re.compile(r"(^|/)\.git/hooks/[^/]+$"), PERSIST, "T1546", WARN, WARN, "plants a git hook that runs on git actions"),
    (re.compile(r"^/etc/sudoers(\.d/.*)?$"), PRIV, "T1548.003", BLOCK, BLOCK, "changes sudo rules"),
    (re.compile(r"^/etc/(passwd|shadow|group|gshadow|master\.passwd)-?$"), PRIV, "T1136.001", BLOCK, BLOCK,
     "edits the account database"),
    (re.compile(r"^/etc/ld\.so\.preload$"), PERSIST, "T1574.006", BLOCK, BLOCK, "preloads a library into every process"),
    (re.compile(r"^/etc/(crontab|cron\.[a-z]+/.*|anacrontab)$|^/var/spool/cron/"), PERSIST, "T1053.003", BLOCK, WARN,
     "installs a system cron job"),
    (re.compile(r"^/(etc|lib|usr/lib|run)/systemd/(system|user)/"), PERSIST, "T1543.002", WARN, WARN,
     "installs or changes a systemd unit"),
    (re.compile(r"^/etc/(rc\.local|init\.d/.*|rc\d\.d/.*|update-motd\.d/.*)$"), PERSIST, "T1037.004", WARN, WARN,
     "changes a boot/login script"),
    (re.compile(r"^/etc/(profile|profile\.d/.*|bash\.bashrc|bashrc|zsh/zshrc|zshrc|environment)$"), PERSIST,
     "T1546.004", BLOCK, WARN, "changes a shell startup file for every user"),
    (re.compile(r"^/etc/pam\.d/|^/(usr/)?lib(64)?/(x86_64-linux-gnu/)?security/"), PERSIST, "T1556.003", BLOCK, BLOCK,
     "changes PAM authentication"),
    (re.compile(r"^(~|/root|/home/[^/]+)/\.ssh/authorized_keys2?$"), PERSIST, "T1098.004", BLOCK, BLOCK,
     "adds an SSH key that grants login"),
    (re.compile(r"^(~|/root|/home/[^/]+)/\.(bashrc|bash_profile|bash_login|profile|zshrc|zprofile|zshenv|"
                r"bash_logout|config/fish/config\.fish)$"), PERSIST, "T1546.004", WARN, WARN,
     "changes a shell startup file"),
    (re.compile(r"^(~|/root|/home/[^/]+)/\.config/(autostart|systemd/user)/"), PERSIST, "T1547.013", WARN, WARN,
     "adds an autostart entry"),
    (re.compile(r"^(~|/root|/home/[^/]+)/\.(bash|zsh|sh)_history$|^/var/log/(wtmp|btmp|lastlog|utmp|faillog)$"
                r"|^/var/run/utmp$|^/var/log/(auth|secure|syslog|messages|kern|audit/audit)\.log(\.\d+)?$"
                r"|^/var/log/(syslog|messages|secure)$"),
     EVADE, "T1070.002", BLOCK, Verdict.ALLOW, "wipes a log or shell history"),
    (re.compile(r"^/proc/sysrq-trigger$"), DOS, "T1529", BLOCK, BLOCK, "triggers a kernel SysRq action (crash/reboot)"),
    (re.compile(r"^/proc/sys/kernel/(randomize_va_space|yama/ptrace_scope|modules_disabled|kptr_restrict)$"), EVADE,
     "T1562.001", BLOCK, BLOCK, "weakens a kernel protection"),
    (re.compile(r"^/proc/sys/"), TAMPER, "T1565", WARN, WARN, "changes a kernel parameter"),
    (re.compile(r"^/sys/(firmware|kernel|power|class/(backlight|leds))"), TAMPER, "T1565", WARN, WARN,
     "writes a kernel interface"),
    (re.compile(r"^/boot/"), TAMPER, "T1542", BLOCK, BLOCK, "changes the boot loader or kernel"),
    (re.compile(r"^/etc/(fstab|hosts|resolv\.conf|nsswitch\.conf|ssh/sshd_config|selinux/config|security/.*|"
                r"apt/sources\.list.*|yum\.repos\.d/.*|docker/daemon\.json|modprobe\.d/.*|sysctl\.(conf|d/.*))$"),
     TAMPER, "T1565", WARN, WARN, "changes system configuration"),
    (re.compile(r"^/(usr/)?s?bin/(sudo|su|ls|bash|sh|dash|zsh|passwd|login|ps|netstat|ss|top|sshd|ssh|cron|crontab|"
                r"systemctl|id|whoami|python3?|env|cat|cp|mv|rm|chmod|chown)$|^/(usr/)?lib(64)?/([\w-]+/)?"
                r"(libc\.so\.6|ld-linux[\w.-]*\.so[\d.]*|libpam\.so[\d.]*)$"), TAMPER, "T1554", BLOCK, BLOCK,
     "replaces a core system binary or library"),
    (re.compile(r"^/(usr/)?(s?bin|lib\d*)/"), TAMPER, "T1554", WARN, WARN, "writes into a system binary directory"),
    (re.compile(r"^/etc/"), TAMPER, "T1565", WARN, WARN, "changes system configuration"),
]


@every
def sensitive_write(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Redirections, tee, cp, mv, ln, dd of=, sed -i and truncate into sensitive files or devices."""
    for target, mode in writes(cmd):
        p = place(cmd, scan, target)
        if p.kind == "device":
            yield hit(cmd, DISK, "disk.write_device", BLOCK, 100, f"writes raw data to {p.describe()}", "T1561.002")
            continue
        path = p.location.display()
        for pattern, category, technique, on_overwrite, on_append, message in SENSITIVE_WRITES:
            if not pattern.search(path):
                continue
            verdict = on_overwrite if mode in ("overwrite", "link") else on_append
            content = content_written(cmd)
            if content and category == PERSIST and "cron" in pattern.pattern:
                content = "\n".join(cron_jobs(content, system=not path.startswith("/var/spool/")))
            inner = nested_hits(content, cmd, scan) if content and category == PERSIST else []
            if any(h.verdict == BLOCK for h in inner):
                verdict = BLOCK
                message = f"{message}: {inner[0].message}"
            if category == EVADE and mode == "link" and not p.location.display().startswith("/var/log"):
                verdict = BLOCK
            if verdict != Verdict.ALLOW:
                rule = f"write.{category.value}"
                yield hit(cmd, category, rule, verdict, 90 if verdict == BLOCK else 45, f"{message} ({path})", technique)
            break


PAYLOAD_HINT = re.compile(r"\b(nc|ncat|netcat|socat|telnet|openssl|xterm|mkfifo|python\d*|perl|ruby|php)\b|/dev/(tcp|udp)/")


NOTES_FILE = re.compile(r"\.(txt|md|rst|adoc|log|csv|tsv|json|html?|org|tex)$", re.I)


@every
def payload_write(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """A reverse shell or listener written into a file that can run (not notes or docs) is a planted payload."""
    content = content_written(cmd)
    if not content or not PAYLOAD_HINT.search(content):
        return
    targets = [t for t, _ in writes(cmd) if place(cmd, scan, t).kind != "device" and not NOTES_FILE.search(t)]
    if not targets:
        return
    inner = [h for h in nested_hits(content, cmd, scan) if h.category == Category.REVERSE_SHELL]
    if inner:
        worst = BLOCK if any(h.verdict == BLOCK for h in inner) else WARN
        shown = place(cmd, scan, targets[0]).location.display()
        yield hit(cmd, Category.REVERSE_SHELL, "revshell.payload_written", worst, 90 if worst == BLOCK else 45,
                  f"writes a payload that {inner[0].message} into {shown}", "T1105")


@on("chmod")
def git_hook_executable(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`chmod +x .git/hooks/post-checkout`: arming a git hook."""
    positionals = [a for a in cmd.args if not a.startswith("-")]
    if len(positionals) < 2 or not re.search(r"x|^[0-7]*[1357][0-7]{0,2}$", positionals[0]):
        return
    for target in positionals[1:]:
        shown = place(cmd, scan, target).location.display()
        if re.search(r"(^|/)\.git/hooks/[^/]+$", shown):
            yield hit(cmd, PERSIST, "persist.git_hook_executable", WARN, 40, f"makes git hook {shown} executable",
                      "T1546")
            return


@on("crontab")
def crontab(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Installing a crontab (warn; block when the job is itself dangerous); `crontab -r` removes all jobs."""
    parsed = parse_args(cmd.args, frozenset({"-u"}))
    if parsed.has("r"):
        yield hit(cmd, Category.DESTRUCTIVE_FS, "persist.crontab_remove", WARN, 45, "removes every cron job of the user",
                  "T1485")
        return
    if parsed.has("lei") and not parsed.positionals:
        return
    inner: list[Hit] = []
    staged: list[str] = []
    for text in static_text_into(cmd):
        for job in cron_jobs(text):
            inner.extend(nested_hits(job, cmd, scan))
            staged.extend(_staged_programs(job, cmd, scan))
    if inner:
        yield hit(cmd, PERSIST, "persist.cron_job_dangerous", BLOCK, 95, f"schedules a job that {inner[0].message}",
                  "T1053.003")
    elif staged:
        yield hit(cmd, PERSIST, "persist.cron_staged_payload", BLOCK, 90,
                  f"schedules {staged[0]}, a program in a scratch directory or hidden file", "T1053.003")
    elif any(c.name in ("curl", "wget") for c in cmd.upstream()):
        yield hit(cmd, PERSIST, "persist.cron_from_network", BLOCK, 90, "installs a crontab fetched from the network",
                  "T1053.003")
    else:
        yield hit(cmd, PERSIST, "persist.crontab_install", WARN, 40, "installs a new crontab", "T1053.003")


def cron_jobs(text: str, system: bool = False) -> list[str]:
    """The commands of crontab lines (schedule fields, and the user field of system crontabs, removed)."""
    jobs = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^\s*[A-Za-z_]+=", line):
            continue
        fields = line.split(None, (1 if line.startswith("@") else 5) + (1 if system else 0))
        if len(fields) >= 2:
            jobs.append(fields[-1])
    return jobs


def _staged_programs(job: str, cmd: SimpleCommand, scan: Scan) -> list[str]:
    """Programs a job runs from /tmp, /dev/shm, /var/tmp or a hidden file: where droppers stage payloads."""
    found = []
    for word in job.split()[:3]:
        if "/" not in word:
            continue
        p = place(cmd, scan, word)
        if p.kind == "scratch" or p.location.parts and p.location.parts[-1].startswith("."):
            found.append(p.location.display())
    return found


@on("at", "batch")
def at_job(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """One-shot scheduled jobs; block when the job is dangerous."""
    if any(a in ("-l", "-r", "-d", "-c") for a in cmd.args) or not cmd.args and cmd.name == "at":
        return
    inner = [h for text in static_text_into(cmd) for h in nested_hits(text, cmd, scan)]
    verdict = BLOCK if inner else WARN
    yield hit(cmd, PERSIST, "persist.at_job", verdict, 90 if inner else 35,
              f"schedules a job{' that ' + inner[0].message if inner else ''}", "T1053.002")


SECURITY_SERVICES = re.compile(
    r"^(firewalld|ufw|iptables|ip6tables|nftables|netfilter-persistent|apparmor|auditd|rsyslog|syslog|syslog-ng|"
    r"systemd-journald|fail2ban|selinux|clamav-daemon|clamd|falcon-sensor|osqueryd|wazuh-agent|ossec|sysmon|"
    r"auditbeat|filebeat|crowdstrike|sentinelone|aide|tripwire|snapd\.apparmor)(\.service)?$"
)


@on("systemctl", "service", "update-rc.d", "chkconfig", "rc-update", "launchctl")
def services(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Stopping security services (block); enabling services at boot (warn)."""
    args = [a for a in cmd.args if not a.startswith("-")]
    stopping = {"stop", "disable", "mask", "kill", "off", "del", "remove", "unload", "bootout"}
    if cmd.name == "service" and len(args) >= 2:
        units, action = [args[0]], args[1]
    elif args:
        action, units = (args[1], [args[0]]) if cmd.name in ("chkconfig", "update-rc.d") else (args[0], args[1:])
    else:
        return
    if action in stopping:
        for unit in units:
            if SECURITY_SERVICES.match(unit):
                technique = "T1562.004" if re.match(r"(firewalld|ufw|iptables|ip6tables|nftables)", unit) else "T1562.001"
                yield hit(cmd, EVADE, "evasion.stop_security_service", BLOCK, 90, f"disables {unit}", technique)
                return
    if action in ("enable", "defaults", "on", "add", "load", "bootstrap") or "--now" in cmd.args and action == "enable":
        yield hit(cmd, PERSIST, "persist.service_enable", WARN, 35, f"makes {' '.join(units) or 'a service'} start at boot",
                  "T1543.002")
    if cmd.name == "systemctl" and action in ("poweroff", "reboot", "halt", "kexec", "suspend", "hibernate",
                                              "emergency", "rescue", "isolate"):
        verdict = BLOCK if action in ("poweroff", "reboot", "halt", "kexec") else WARN
        yield hit(cmd, DOS, "dos.shutdown", verdict, 80 if verdict == BLOCK else 50,
                  f"systemctl {action} takes the host down", "T1529")


@on("history")
def history(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`history -c` erases the shell history."""
    if any(a in ("-c", "-cw") or (a.startswith("-") and "c" in a) for a in cmd.args):
        yield hit(cmd, EVADE, "evasion.history_clear", BLOCK, 80, "erases the shell history", "T1070.003")
    elif "-d" in cmd.args:
        yield hit(cmd, EVADE, "evasion.history_delete", WARN, 50, "deletes shell history entries", "T1070.003")


HISTORY_VARS = frozenset({"HISTFILE", "HISTSIZE", "HISTFILESIZE", "HISTCONTROL", "HISTIGNORE", "SAVEHIST"})


@every
def history_variables(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`unset HISTFILE`, `export HISTFILE=/dev/null`, `HISTSIZE=0`, `set +o history`."""
    if cmd.name == "unset" and HISTORY_VARS & set(cmd.args):
        yield hit(cmd, EVADE, "evasion.history_disable", BLOCK, 80, "stops the shell from recording history", "T1562.003")
        return
    if cmd.name == "set" and "+o" in cmd.args and "history" in cmd.args or cmd.name == "shopt" and "-u" in cmd.args \
            and "-o" in cmd.args and "history" in cmd.args:
        yield hit(cmd, EVADE, "evasion.history_disable", BLOCK, 80, "stops the shell from recording history", "T1562.003")
        return
    for name, value in cmd.assignments.items():
        if name in ("HISTFILE",) and value in ("/dev/null", "") or name in ("HISTSIZE", "HISTFILESIZE", "SAVEHIST") and value == "0":
            shown = value or '""'
            yield hit(cmd, EVADE, "evasion.history_disable", BLOCK, 80, f"{name}={shown} stops history", "T1562.003")
        elif name == "HISTCONTROL" and "ignorespace" in value and cmd.name in ("export", ""):
            yield hit(cmd, EVADE, "evasion.history_ignorespace", WARN, 40, "hides space-prefixed commands from history",
                      "T1562.003")
        elif name == "LD_PRELOAD" and value:
            yield hit(cmd, PERSIST, "persist.ld_preload", WARN, 55, f"preloads {value} into programs", "T1574.006")
        elif name == "PROMPT_COMMAND" and value:
            yield hit(cmd, PERSIST, "persist.prompt_command", WARN, 45, "runs a command before every prompt", "T1546.004")


@on("iptables", "ip6tables", "iptables-legacy", "nft", "ufw", "firewall-cmd", "pfctl", "netsh")
def firewall(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Flushing or disabling the firewall."""
    args = cmd.args
    joined = " ".join(args)
    disabled = (
        (cmd.name.startswith("ip") and (re.search(r"(^|\s)(-F|--flush|-X)\b", joined)
                                        or re.search(r"-P\s+(INPUT|FORWARD|OUTPUT)\s+ACCEPT", joined)))
        or (cmd.name == "nft" and re.search(r"flush\s+ruleset|delete\s+table", joined))
        or (cmd.name == "ufw" and args[-1:] in (["disable"], ["reset"]))
        or (cmd.name == "firewall-cmd" and "--panic-off" not in args and re.search(r"--set-default-zone=trusted", joined))
        or (cmd.name == "pfctl" and "-d" in args)
        or (cmd.name == "netsh" and "off" in args)
    )
    if disabled:
        yield hit(cmd, EVADE, "evasion.firewall_disable", BLOCK, 85, f"{cmd.name} removes firewall protection", "T1562.004")


@on("setenforce", "aa-teardown", "aa-disable", "auditctl", "apparmor_parser")
def security_modules(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`setenforce 0`, `aa-teardown`, `auditctl -D`/`-e 0`."""
    args = cmd.args
    if (
        (cmd.name == "setenforce" and args[:1] in (["0"], ["Permissive"], ["permissive"]))
        or cmd.name in ("aa-teardown", "aa-disable")
        or (cmd.name == "auditctl" and ("-D" in args or " ".join(args).startswith("-e 0")))
        or (cmd.name == "apparmor_parser" and "-R" in args)
    ):
        yield hit(cmd, EVADE, "evasion.security_module_off", BLOCK, 85, f"{cmd.name} turns off a security control",
                  "T1562.001")


@on("journalctl")
def journal(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`journalctl --vacuum-time=1s` discards the system journal."""
    if any(a.startswith(("--vacuum", "--rotate")) for a in cmd.args) and any(a.startswith("--vacuum") for a in cmd.args):
        yield hit(cmd, EVADE, "evasion.journal_vacuum", WARN, 45, "discards system journal entries", "T1070.002")


LOG_PATH = re.compile(r"^/var/log(/|$)")


@on("rm", "shred", "truncate", "unlink")
def log_deletion(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Deleting logs or shell history."""
    for target in parse_args(cmd.args, frozenset({"-s", "-n", "--size"})).positionals:
        path = place(cmd, scan, target).location.display()
        if re.search(r"(^|/)\.(bash|zsh|sh|python|mysql|psql|node_repl)_history$", path) or path in ("/var/log", "/var/log/*"):
            yield hit(cmd, EVADE, "evasion.delete_logs", BLOCK, 85, f"deletes {path}", "T1070.003")
        elif LOG_PATH.match(path) and re.search(r"(auth|secure|syslog|messages|wtmp|btmp|lastlog|audit|kern)", path):
            yield hit(cmd, EVADE, "evasion.delete_logs", BLOCK, 85, f"deletes security log {path}", "T1070.002")


SECURITY_PROCESSES = re.compile(r"^(auditd|rsyslogd|syslog-ng|journald|systemd-journald|falcon-sensor|osqueryd|"
                                r"wazuh-agentd|ossec|sysmon|auditbeat|filebeat|clamd|fail2ban-server|sshd)$")


@on("kill", "pkill", "killall", "killall5", "skill")
def kills(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`kill -9 -1` kills every process; killing security daemons hides activity."""
    args = cmd.args
    signal_zero = any(a in ("-0", "-s0") for a in args) or " ".join(args).startswith(("-s 0", "-n 0"))
    targets = [a for a in args if not a.startswith("-") or a == "-1"]
    if cmd.name == "kill" and not signal_zero and any(a in ("-1", "1") for a in targets[-1:]) and (
        args[-2:-1] != ["-s"]
    ):
        yield hit(cmd, DOS, "dos.kill_all", BLOCK, 90, "kills every process (or init)", "T1489")
    elif cmd.name == "killall5" or (cmd.name in ("killall", "pkill") and any(a in ("init", "systemd") for a in args)):
        yield hit(cmd, DOS, "dos.kill_all", BLOCK, 90, f"{cmd.name} kills system processes", "T1489")
    elif cmd.name in ("pkill", "killall") and _kills_everything(args):
        yield hit(cmd, DOS, "dos.kill_all", BLOCK, 90, f"{cmd.name} kills every process of a user or every process",
                  "T1489")
    elif any(SECURITY_PROCESSES.match(a) for a in [*args, *(x for c in cmd.word_commands() for x in c.args)]
             if not a.startswith("-")):
        yield hit(cmd, EVADE, "evasion.kill_security_process", BLOCK, 85, "kills a security or logging daemon",
                  "T1562.001")


def _kills_everything(args: list[str]) -> bool:
    """`pkill -u root`, `pkill -9 .`, `killall -u root`, `pkill -f ''`: a pattern or user that matches everything."""
    for i, arg in enumerate(args):
        if arg in ("-u", "-U", "--euid", "--uid", "--user") and i + 1 < len(args) and args[i + 1] in ("root", "0"):
            return True
    patterns = [a for a in args if not a.startswith("-")]
    return any(p in (".", ".*", "^", "", "*") for p in patterns)


@on("shutdown", "reboot", "halt", "poweroff", "init", "telinit")
def shutdown(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Taking the host down (`shutdown -k` only warns users; `shutdown -c` cancels)."""
    if cmd.name in ("init", "telinit") and not (cmd.args and cmd.args[0] in ("0", "6")):
        return
    if cmd.name == "shutdown" and "-c" in cmd.args:
        return
    if "--help" in cmd.args or cmd.name == "shutdown" and "-k" in cmd.args:
        return
    yield hit(cmd, DOS, "dos.shutdown", BLOCK, 80, f"{cmd.name} shuts down or reboots the host", "T1529")


@every
def fork_bomb(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`:(){ :|:& };:` and named variants: a function that spawns copies of itself."""
    if cmd.function and cmd.name == cmd.function and (cmd.pipeline or cmd.background):
        yield hit(cmd, DOS, "dos.fork_bomb", BLOCK, 100, f"function {cmd.function} forks copies of itself without end",
                  "T1499")


@on("sysctl")
def sysctl(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Changing kernel parameters; disabling ASLR or ptrace protection is blocked."""
    settings = [a for a in cmd.args if "=" in a]
    for setting in settings:
        key, _, value = setting.partition("=")
        if re.search(r"randomize_va_space|ptrace_scope|kptr_restrict|dmesg_restrict|modules_disabled", key) and value.strip() in ("0", ""):
            yield hit(cmd, EVADE, "evasion.kernel_protection_off", BLOCK, 85, f"disables {key}", "T1562.001")
            return
    if settings:
        yield hit(cmd, TAMPER, "tamper.sysctl", WARN, 40, "changes kernel parameters", "T1565")


@on("insmod", "modprobe", "rmmod")
def kernel_modules(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Loading or removing kernel modules."""
    if cmd.name == "modprobe" and any(a in ("-l", "-c", "--show-depends", "-n", "--dry-run") for a in cmd.args):
        return
    if not parse_args(cmd.args).positionals:
        return
    yield hit(cmd, PERSIST, "tamper.kernel_module", WARN, 50, f"{cmd.name} changes the running kernel", "T1547.006")


def _sets_root_password(cmd: SimpleCommand) -> bool:
    """`echo 'root:x' | chpasswd`: a new password for root."""
    return cmd.name == "chpasswd" and any(re.match(r"\s*root:", t) for t in static_text_into(cmd))


@on("useradd", "adduser", "usermod", "groupmod", "gpasswd", "passwd", "chpasswd", "userdel", "deluser")
def accounts(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """UID-0 accounts, adding users to admin groups, removing root's password."""
    joined = " ".join(cmd.args)
    if re.search(r"(^|\s)(-[a-zA-Z]*u|--uid)[\s=]*0\b", joined) or _sets_root_password(cmd):
        yield hit(cmd, PRIV, "privesc.uid0_account", BLOCK, 95, "creates or changes an account to UID 0", "T1136.001")
    elif cmd.name == "passwd" and re.search(r"(^|\s)-d\s+root\b|(^|\s)-d$", joined):
        yield hit(cmd, PRIV, "privesc.remove_password", BLOCK, 90, "removes the password of an account", "T1098")
    elif re.search(r"(-G|--groups|-aG|-g|--gid|-a)\s*\S*\b(sudo|wheel|root|admin|docker|disk|shadow)\b", joined) or (
        cmd.name in ("gpasswd", "adduser") and re.search(r"\b(sudo|wheel|root|admin|docker)\b", joined)
        and len(cmd.args) >= 2
    ):
        yield hit(cmd, PRIV, "privesc.admin_group", WARN, 55, "adds a user to an administrative group", "T1098")
    elif cmd.name in ("userdel", "deluser") and "root" in cmd.args:
        yield hit(cmd, TAMPER, "tamper.delete_root", BLOCK, 95, "deletes the root account", "T1531")


@every
def root_shell(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`sudo -s`, `sudo -i`, `su`, `sudo su -`: an interactive root shell."""
    interactive = not (cmd.pipeline and cmd.stage) and cmd.stdin_text is None
    if interactive and (cmd.root_shell or (
        "sudo" in cmd.wrappers and cmd.name in ("bash", "sh", "zsh", "su") and not cmd.args
    )):
        yield hit(cmd, PRIV, "privesc.root_shell", WARN, 50, "opens an interactive root shell", "T1548.003")


@on("nsenter")
def nsenter(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`nsenter -t 1 -m -u -i -n -p`: enter the host's namespaces from a container."""
    if re.search(r"(-t|--target)[\s=]*1\b", " ".join(cmd.args)):
        yield hit(cmd, PRIV, "privesc.nsenter_host", BLOCK, 90, "enters the namespaces of PID 1 (container escape)",
                  "T1611")


@on("alias")
def alias(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Aliases that hide a dangerous command behind an innocent name."""
    for definition in cmd.args:
        name, sep, value = definition.partition("=")
        if not sep:
            continue
        inner = [h for h in nested_hits(value, cmd, scan) if h.verdict == BLOCK]
        if inner:
            yield hit(cmd, PERSIST, "persist.alias_trap", BLOCK, 90, f"alias {name} runs something that {inner[0].message}",
                      "T1546.004")
        elif name in ("sudo", "su", "ssh", "passwd"):
            yield hit(cmd, Category.CREDENTIAL_ACCESS, "cred.alias_hijack", WARN, 55, f"redefines {name}", "T1056")


PROTECTED_PACKAGES = re.compile(r"^(libc6|glibc|systemd|sudo|bash|coreutils|openssh-server|apt|dpkg|rpm|yum|dnf|"
                                r"python3|linux-image.*|kernel|grub.*|util-linux|login|passwd|base-files|init)$")


@on("apt", "apt-get", "yum", "dnf", "zypper", "pacman", "dpkg", "rpm")
def package_removal(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Removing packages the system cannot run without."""
    removing = {"remove", "purge", "erase", "autoremove", "-R", "-Rns", "-Rdd", "-e", "-P", "-r", "--purge", "--remove"}
    if not removing & set(cmd.args):
        return
    victims = [a for a in cmd.args if PROTECTED_PACKAGES.match(a)]
    if victims:
        yield hit(cmd, TAMPER, "tamper.remove_essential_package", BLOCK, 85, f"removes essential package {victims[0]}",
                  "T1489")


@on("grub-install", "update-grub", "grub-mkconfig", "efibootmgr", "grub2-mkconfig")
def bootloader(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Rewriting the boot loader or boot entries."""
    if cmd.name == "efibootmgr" and not any(a in ("-B", "--delete-bootnum", "-c", "--create", "-o") for a in cmd.args):
        return
    if cmd.name.startswith("grub") and "-o" not in cmd.args and cmd.name != "grub-install":
        return
    yield hit(cmd, TAMPER, "tamper.bootloader", WARN, 55, f"{cmd.name} changes how the host boots", "T1542.003")


@on("touch")
def timestomp(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Backdating system files (`touch -r /bin/ls /usr/bin/backdoor`)."""
    parsed = parse_args(cmd.args, frozenset({"-r", "-t", "-d", "--reference", "--date"}))
    if parsed.has("rtd", "--reference", "--date") and any(
        place(cmd, scan, t).kind in ("system_top", "system_deep") for t in parsed.positionals
    ):
        yield hit(cmd, EVADE, "evasion.timestomp", WARN, 50, "changes timestamps of system files", "T1070.006")


@every
def fill_disk(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Endless data into a file (`yes > f`, `cat /dev/zero > f`) or huge allocations (fallocate, truncate, dd)."""
    endless = cmd.name == "yes" or (cmd.name == "cat" and any(a in ("/dev/zero", "/dev/urandom", "/dev/random")
                                                              for a in cmd.args))
    if endless and any(r.writes and (not r.target.startswith("/dev/") or r.target.startswith("/dev/shm/"))
                       for r in cmd.redirects):
        yield hit(cmd, DOS, "dos.fill_disk", WARN, 50, "writes endless data to a file until the disk is full", "T1499.001")
    size = allocation_bytes(cmd)
    if size is not None and size >= HUGE_ALLOCATION:
        yield hit(cmd, DOS, "dos.fill_disk", WARN, 50, f"allocates {size / 2**30:,.0f} GiB on disk", "T1499.001")


HUGE_ALLOCATION = 32 * 2**30
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTPE]?)(i?B?)$", re.I)


def parse_size(text: str) -> float | None:
    """`100G`, `1.5TiB`, `4096` (bytes) -> bytes; None when it is not a size."""
    match = _SIZE.match(text.strip())
    if not match:
        return None
    power = "KMGTPE".find(match.group(2).upper()) + 1 if match.group(2) else 0
    return float(match.group(1)) * 1024**power


def allocation_bytes(cmd: SimpleCommand) -> float | None:
    """Bytes a fallocate / truncate / dd invocation reserves or writes, when the words say."""
    args = cmd.args
    if cmd.name in ("fallocate", "truncate"):
        for i, arg in enumerate(args):
            for flag in ("-l", "-s", "--length=", "--size="):
                if arg == flag and i + 1 < len(args):
                    return parse_size(args[i + 1].lstrip("+"))
                if arg.startswith(flag) and len(arg) > len(flag):
                    return parse_size(arg[len(flag):].lstrip("+"))
    if cmd.name == "head" and any(r.writes for r in cmd.redirects):
        for i, arg in enumerate(args):
            if arg in ("-c", "--bytes") and i + 1 < len(args):
                return parse_size(args[i + 1])
            if arg.startswith(("-c", "--bytes=")) and len(arg) > 2:
                return parse_size(arg.split("=", 1)[-1] if "=" in arg else arg[2:])
    if cmd.name == "dd":
        operands = dict(a.split("=", 1) for a in args if "=" in a)
        block = parse_size(operands.get("bs", operands.get("obs", "512"))) or 512
        count = parse_size(operands.get("count", "")) if "count" in operands else None
        return block * count if count is not None else None
    return None


@every
def background_loop(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`while :; do cmd & done`: an endless loop that keeps starting background jobs exhausts the machine."""
    if cmd.background and cmd.loop == "endless":
        yield hit(cmd, DOS, "dos.background_loop", BLOCK, 90,
                  "starts background jobs in an endless loop until the machine runs out of processes", "T1499")
    elif cmd.background and cmd.loop:
        yield hit(cmd, DOS, "dos.background_loop", WARN, 50, "starts a background job on every loop iteration",
                  "T1499")
