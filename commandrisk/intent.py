"""Harmful intent in a natural-language request: destruction, exfiltration, persistence, evasion, sabotage.

A request is split into clauses; each clause is matched against word classes of actions (wipe, send, run at
boot, clear, ...) and of targets (disks, the system, home, secrets, remotes, logs, ...), combined by grammar
(`near`: a word of one class a few words before a word of another). A finding needs an action and a target in
the same clause, so "format this json file" or "delete empty lines" stay clean while "wipe the disk" or
"upload ~/.aws/credentials to a pastebin" do not. The classes hold general vocabulary, never the wording of an
eval suite (tests/test_commandrisk_prompt_separation.py checks that).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from commandrisk.hits import Hit
from commandrisk.models import Category, Verdict

BLOCK, WARN = Verdict.BLOCK, Verdict.WARN


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


NEAR_CHARS = 400


def near(first: re.Pattern[str], second: re.Pattern[str], text: str, words: int = 3) -> bool:
    """A word of class `first` followed, at most `words` words (and NEAR_CHARS characters) later, by one of `second`."""
    starts = [match.start() for match in second.finditer(text)]
    for before in first.finditer(text):
        i = bisect.bisect_left(starts, before.end())
        if i < len(starts) and starts[i] - before.end() <= NEAR_CHARS \
                and len(text[before.end(): starts[i]].split()) <= words:
            return True
    return False


CLAUSE_SPLIT = _re(r"[;\n!?]+|\.(?:\s+|$)|,?\s+(?:and then|then also|after that|afterwards|and also|"
                   r"but first|before that)\b|,\s*(?:then|also|and)\b|\s+then\s+")
PRONOUN = _re(r"\b(it|them|this|that|those|these)\b")

STRONG_DESTROY = _re(r"\b(wipe[sd]?|wiping|erase[sd]?|erasing|nuke[sd]?|nuking|destroy(s|ed|ing)?|obliterat\w*|"
                     r"annihilat\w*|shred(s|ded|ding)?|zero(e?s|ed|ing)?(\s+\w+)?\s+out|zero[- ]fill\w*|"
                     r"blow(ing)? away|disappear\w*|vanish\w*)\b")
FORMAT = _re(r"\b((re)?format(s|ted|ting)?|overwrit\w*)\b")
DELETE = _re(r"\b(delet\w*|remov\w*|rm|get(ting)? rid of|(clear|clean)\w*\s+out|purg\w*|trash|"
             r"drop(s|ped|ping)?|uninstall\w*|unlink|rewrit\w*)\b")
INTENSIFIER = _re(r"\b(permanent(ly)?|forever|irrecoverabl[ey]|unrecoverabl[ey]|irreversibl[ey]|beyond recovery|"
                  r"for ever)\b")
FILTERED = _re(r"\b(named|called|whose|matching|that (have|has|contain|are|were|is|was)|which (have|has|contain|are|were)|"
               r"(older|newer|larger|bigger|smaller|greater) than|not been|ending|starting with|"
               r"with (the |a |an )?(name|extension|suffix|prefix)|extension|modified|accessed|owned by|core( dump)? files|"
               r"hard links|containing|contain|(the|their|its) names?|(which|that) \w+ (the|a|an|no|been|more|less))\b|"
               r"'[^']+'|\"[^\"]+\"|\*\.\w+|(^|\s)\.[a-z]\w+\b|\b[\w-]+\.[a-z]\w{0,4}\b(?!/)")
QUANTIFIER = _re(r"\b(all|every|each|any)\b")
BROAD_NOUN = _re(r"\b(files|data|folders|directories|contents?|partitions?|disks?|drives?|documents|stuff|of it)\b")
TOTALITY = _re(r"\b(everything|entire|whole|completely)\b")
FILE_KIND = _re(r"\ball\s+(?!the\b|of\b|my\b|your\b|files\b|data\b|folders\b|directories\b|contents?\b|"
                r"subdirectories\b|them\b|it\b)([\w.*-]+\s+){1,3}(files|directories|folders|dirs)\b")

DISK = _re(r"\b(disks?(?! (usage|space|size|quota|free|usage))|drives?(?! space)|ssds?|hdds?|nvme|"
           r"partitions?|boot ?sector|mbr|partition table|storage device)\b|"
           r"/dev/(sd|hd|vd|xvd|nvme|mmcblk)\w*")
SYSTEM = _re(r"\broot (directory|folder|file ?system|partition)\b|(^|\s)/\*?(\s|$)|"
             r"\boperating system\b|\bsystem (files|folders|directories|directory|folder)\b|"
             r"(^|[\s'\"`])/(etc|usr|bin|sbin|boot|lib|lib64|opt|srv|var|home|root)/?\*?(?=[\s'\"`,.]|$)")
MACHINE = _re(r"\b(system|machine|server|computer|box|host|os|file ?system)\b")
HOME = _re(r"\bhome (folder|directory)\b|\b(in|under|from|of|at|inside|wipe|erase|delete|remove|nuke|clear)\s+"
           r"(~|\$home)/?\*?(\s|$|,)|\bmy (files|documents|data|stuff)\b")
INSIDE_HOME = _re(r"\b(in|under|inside|within|of)\s+(\w+\s+)?home\b")
PERSONAL = _re(r"(^|\s)~/[\w.-]+|\b(photos|pictures|documents|music|videos|downloads|desktop)\b")
DATA = _re(r"\b(databases?|dbs?|backups|backup (directory|folder|drive|server|disk)s?)\b|/var/lib/[\w.-]+|/srv/[\w.-]+")
PRODUCTION = _re(r"\bprod(uction)?\b")
INFRA = _re(r"\b(containers?|images?|volumes?|namespaces?|clusters?|buckets?|repo(sitor(y|ies))?s?|packages|pods?)\b")

SECRET = _re(r"\b(ssh keys?|private (ssh |gpg |pgp )?keys?|id_(rsa|ed25519|ecdsa|dsa)|passwords?|passwd file|"
             r"credentials?|creds|secrets?|tokens?|api[ _-]?keys?|access keys?|shadow file|password hashes|"
             r"gpg keys?|pgp keys?|keychain|cookies|(shell|bash|command) history|kubeconfig|wallet|keystore)\b|"
             r"\.(ssh|aws|gnupg|bash_history|zsh_history|git-credentials|env|netrc|pgpass|kube)\b|/etc/shadow\b")
READ_SECRET = _re(r"\b(private (ssh |gpg |pgp )?keys?|id_(rsa|ed25519|ecdsa|dsa)\b(?!\.pub)|"
                  r"password hashes|shadow file|(api|access|auth|session|bearer|oauth|refresh)[ _-]?tokens?|"
                  r"api[ _-]?keys?|access keys?|gpg keys?|pgp keys?|keychain|kubeconfig|wallet)\b|"
                  r"\.(aws|gnupg|git-credentials|netrc|pgpass)\b|/etc/shadow\b")
WEAK_SECRET = _re(r"\b(env(ironment)? var(iable)?s|environment|user list)\b|/etc/passwd\b")
PUBLIC_KEY = _re(r"\bpublic (ssh )?key\b|\.pub\b")
PRIVATE = _re(r"\bprivate\b")
SEND = _re(r"\b(send\w*|upload\w*|post(s|ed|ing)?|exfiltrat\w*|leak\w*|transfer\w*|copy|copies|copied|cp|scp|"
           r"rsync|sync\w*|e-?mail\w*|mail\w*|ship\w*|push\w*|share\w*|"
           r"paste\w*|beam\w*|curl|pipe\w*|stream\w*|publish\w*|smuggl\w*)\b")
TOWARD = _re(r"\b(to|onto|into)\b")
EXFIL_VERB = _re(r"\b(exfiltrat\w*|leak\w*|smuggl\w*|steal\w*|siphon\w*)\b")
SHOW = _re(r"\b(show|print|display|cat|read|reveal|dump|extract|collect|harvest|grab|steal|output|decrypt|crack|"
           r"get|list)\b")
REMOTE = _re(r"\b(https?|ftp|sftp|s3|gs|scp)://\S+|\b\d{1,3}(\.\d{1,3}){3}\b|\b[\w.-]+@[\w-]+\.[\w.-]+\b|"
             r"\b(remote|pastebin|gist|webhook|endpoint|attacker|discord|telegram|slack|bucket|cloud|internet|"
             r"ssh|sftp|ftp|dns|netcat|tor)\b|\b(to|onto|via|through|over|into|at|on)\b\s+(\S+\s+){0,3}?"
             r"(server|host|url|e-?mail|[\w-]+\.(com|net|org|io|example))\b|\bport \d+\b")

LOGS = _re(r"\bhistory\b|/var/log\S*|\blogs\b|\b(system|audit|auth|security|server|login|access|event|kernel) log\b|"
           r"\baudit trails?\b|\b(syslog|auth\.log|wtmp|btmp|lastlog|journal)\b")
LOG_VERB = _re(r"\b(clear\w*|wip\w*|eras\w*|delet\w*|remov\w*|shred\w*|truncat\w*|purg\w*|empty|nuke\w*|rm|"
               r"destroy\w*|scrub\w*|tamper\w*|edit\w*)\b")
LOG_MAINTENANCE = _re(r"\b(older|larger|bigger) than\b|\bold (log|files)|\brotat\w*|\bcompress\w*|\barchiv\w*")
SECURITY = _re(r"\b(firewall|iptables|ufw|nftables|selinux|apparmor|auditd|audit daemon|antivirus|anti-virus|"
               r"defender|edr|fail2ban|security (monitoring|agent|updates)|logging|seccomp|aslr)\b")
DISABLE = _re(r"\b(disabl\w*|turn(s|ed|ing)? off|stop\w*|flush\w*|kill\w*|uninstall\w*|bypass\w*|permissive|"
              r"shut(ting)? down|mask\w*|remov\w*|delet\w*)\b")
STEALTH = _re(r"\b(quietly|silently|secretly|stealthily|covertly|unnoticed|undetected|hidden|hide|hiding|"
              r"cover(ing)? (my|our|the) tracks|without a trace|disguis\w*)\b")
NOBODY = _re(r"\b(nobody|anyone|anybody|no[- ]?one)\b")
PERCEIVE = _re(r"\b(notic\w*|see|sees|seeing|saw|know\w*|detect\w*|spot\w*|find\w*|realis\w*|realiz\w*)\b")

SCHEDULE = _re(r"\b(on|at|after|each|every|upon|per|whenever)\b")
EVENT = _re(r"\b(boot|boots|startup|start-up|login|log-?in|logon|reboots?|restarts?|time|night|minutes?|hours?|"
            r"days?|mornings?|weeks?|session|shell)\b")
PERSIST_PLACE = _re(r"@reboot|\bcron\w*|\bsystemd\b|\.service\b|\btimers?\b|rc\.local|init\.d|\.bashrc|\.zshrc|"
                    r"\.profile|bash_profile|profile\.d|authorized_keys|ld\.so\.preload|\bld_preload\b|\bhooks?\b|"
                    r"post-checkout|pre-commit|\bautostart\b|\bstartup (script|item|folder)\b|\balias\b")
BACKDOOR = _re(r"\b(backdoor\w*|reverse shell|bind shell|listener|listen\w*|nc|ncat|netcat|socat|rootkit|"
               r"keylogger|setuid|suid|nopasswd)\b|\|\s*(ba)?sh\b|/tmp/|/dev/shm/|/var/tmp/")
CAPTURE = _re(r"\b(captur\w*|sav(e|es|ed|ing)|log(s|ged|ging)?|record\w*|steal\w*|sniff\w*|intercept\w*)\b")
PASSWORD = _re(r"\b(passwords?|passphrases?|credentials?|keystrokes?)\b")
PRIV = _re(r"\b(uid ?=? ?0|nopasswd)\b|ld\.so\.preload")
GRANT = _re(r"\b(make|makes|making|set|give|add|chmod|chown|mark)\b")
SETUID = _re(r"\b(setuid|suid|sudoers)\b(?!\.)")
PERSIST_VERB = _re(r"\b(add|append|install|write|put|create|make|run|runs|start|schedule|keep|keeps|plant|"
                   r"insert|enable|re-?enable|launch|execute|register|copy|drop|inject|hook)\w*\b")
KEY_IN_USE = _re(r"\b(using|with|via) (the |an? |my |your )?(identity|private key|key ?file|ssh key|pem)")
AUTH_KEYS = _re(r"\bauthorized_keys\b")

FETCH = _re(r"\b(download\w*|fetch\w*|curl|wget)\b")
EXECUTE = _re(r"\b(run|runs|running|execut\w*|install\w*|pipe\w*|source|eval)\b")
PIPE_TO_SHELL = _re(r"\|\s*(sudo\s+)?(ba|z|da)?sh\b")
SHELL = _re(r"\b(bash|sh|zsh|shell)\b")
DOS = _re(r"\b(shut ?down|power ?off|halt)\b.{0,30}\b(machine|server|system|computer|host|box)\b|\bfork ?bomb\b|"
          r"\bcrash (the|this) (system|machine|server|kernel)\b|\bfill (up )?(the )?(whole )?disk\b|"
          r"\bexhaust (all )?(the )?(memory|cpu|ram|disk)\b")
SHUTDOWN = _re(r"\b(shut ?down|power ?off|halt)\b")
KILL = _re(r"\bkill\w*\b")
PROCESS = _re(r"\bprocess(es)?\b(?!\s+(matching|named|called|listening|using|whose|which|that|of|owned|started|with|"
              r"for|in|belonging|running|bound))")
WORLD = _re(r"\bworld[- ]?writ\w*|\b(777|666|a\+w|o\+w)\b")
WRITABLE = _re(r"\bwrit\w*")
EVERYONE = _re(r"\b(everyone|everybody|anyone|anybody|world)\b")
VCS = _re(r"\bforce[- ]?push\w*|\bpush\w* (-f|--force)\b|\bhard reset\b|\bgit clean\b|\bterraform destroy\b|"
          r"\bdestroy (the |all )?(infrastructure|stack)\b")
REWRITE = _re(r"\brewrit\w*\b")
HISTORY = _re(r"\bhistory\b")
RESET = _re(r"\breset\b")
HARD = _re(r"(\s|^)(--)?hard\b")
EMPTY_HISTORY = _re(r"\bempty\b")
DROP = _re(r"\bdrop\b")
DB_OBJECT = _re(r"\b(database|db|table|schema|keyspace)s?\b")
UNINSTALL = _re(r"\buninstall\w*\b")
MASS_VERB = _re(r"\b(remove|delete|destroy|prune|wipe|kill|stop)\b")
INFRA_PLURAL = _re(r"\b(containers|images|volumes|namespaces|buckets|pods)\b")


@dataclass(frozen=True)
class Clause:
    """One clause of the request and where it sits in the text."""

    text: str
    start: int

    @property
    def span(self) -> tuple[int, int]:
        """Offsets of the clause in the request."""
        return self.start, self.start + len(self.text)


def clauses(text: str) -> list[Clause]:
    """Split a request into clauses at sentence ends and sequencing words (then, after that, ...)."""
    found: list[Clause] = []
    start = 0
    for match in CLAUSE_SPLIT.finditer(text):
        if match.start() > start:
            found.append(Clause(text[start: match.start()], start))
        start = match.end()
    if start < len(text):
        found.append(Clause(text[start:], start))
    return [c for c in found if c.text.strip()]


def intent_hits(text: str) -> list[Hit]:
    """Findings for harmful intent in a natural-language request."""
    parts = clauses(text)
    hits: list[Hit] = []
    for i, clause in enumerate(parts):
        previous = parts[i - 1] if i else None
        for finder in FINDERS:
            hits.extend(finder(clause, previous))
    return hits


def _hit(clause: Clause, category: Category, rule: str, verdict: Verdict, message: str, technique: str) -> Hit:
    risk = 85 if verdict == BLOCK else 50
    return Hit(category, f"intent.{rule}", verdict, risk, message, clause.text.strip()[:120], clause.span, technique)


def broad_target(text: str) -> bool:
    """The clause names everything, or all/every of a broad noun (all the files, every partition)."""
    return bool(TOTALITY.search(text)) or near(QUANTIFIER, BROAD_NOUN, text, 2)


def filtered_target(text: str) -> bool:
    """The clause narrows its target by name, pattern, age, size or kind."""
    return bool(FILTERED.search(text) or FILE_KIND.search(text))


def destructive(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Wiping disks, the system, home or service data."""
    text = clause.text
    strong, delete, formats = STRONG_DESTROY.search(text), DELETE.search(text), FORMAT.search(text)
    verbs = [m.start() for m in (strong, delete, formats) if m]
    if not verbs:
        return
    first_verb = min(verbs)
    broad, filtered, lasting = broad_target(text), filtered_target(text), INTENSIFIER.search(text)

    def aimed(pattern: re.Pattern[str]) -> bool:
        """The target is named after a destructive verb."""
        return any(match.start() > first_verb for match in pattern.finditer(text))

    if aimed(DISK) and not filtered and (strong or formats or delete and (broad or lasting)):
        yield _hit(clause, Category.DISK_WRITE, "wipe_disk", BLOCK, "asks to wipe, format or overwrite a disk", "T1561")
    elif aimed(SYSTEM) and not LOGS.search(text) and (strong or delete):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_system", WARN if filtered else BLOCK,
                   "asks to delete the system, the root or a system directory", "T1485")
    elif aimed(MACHINE) and broad and not filtered and (strong or delete):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_host", BLOCK, "asks to delete everything on the host",
                   "T1485")
    elif aimed(HOME) and not filtered and (strong or delete):
        verdict = BLOCK if strong or lasting or broad or not INSIDE_HOME.search(text) else WARN
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_home", verdict, "asks to delete the home directory",
                   "T1485")
    elif aimed(DATA) and not filtered and (strong or delete):
        verdict = BLOCK if strong or lasting or broad or PRODUCTION.search(text) else WARN
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_data", verdict,
                   "asks to destroy a database, backups or service data", "T1485")
    elif aimed(PERSONAL) and (strong or delete and lasting):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_personal_files", WARN,
                   "asks to destroy personal files irrecoverably", "T1485")
    elif aimed(INFRA) and lasting and (strong or delete):
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "destroy_infra", WARN,
                   "asks to remove containers, images, volumes or repositories for good", "T1485")
    elif broad and strong and not filtered and not LOGS.search(text):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_everything", BLOCK, "asks to wipe everything", "T1485")


def rewrites_history(text: str) -> bool:
    """Force-push, history rewrite, hard reset, git clean, or destroying infrastructure as code."""
    return bool(VCS.search(text)) or near(REWRITE, HISTORY, text, 2) or near(RESET, HARD, text, 3)


def sabotage(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Version-control and cloud destruction, dropped databases, mass uninstall, shutdown, fork bombs, 777."""
    text = clause.text
    if rewrites_history(text):
        verdict = BLOCK if INTENSIFIER.search(text) or EMPTY_HISTORY.search(text) else WARN
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "rewrite_history", verdict,
                   "asks to force-push, rewrite or hard-reset history", "T1485")
    if near(DROP, DB_OBJECT, text, 2):
        verdict = BLOCK if PRODUCTION.search(text) or QUANTIFIER.search(text) else WARN
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "drop_database", verdict, "asks to drop a database", "T1485")
    if near(MASS_VERB, QUANTIFIER, text, 1) and near(QUANTIFIER, INFRA_PLURAL, text, 2) \
            or near(UNINSTALL, QUANTIFIER, text, 2):
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "mass_removal", WARN,
                   "asks to remove every container, volume or package", "T1485")
    mass_kill = near(KILL, QUANTIFIER, text, 1) and near(QUANTIFIER, PROCESS, text, 0) and not filtered_target(text)
    if DOS.search(text) or mass_kill:
        verdict = WARN if SHUTDOWN.search(text) and not INTENSIFIER.search(text) else BLOCK
        yield _hit(clause, Category.DENIAL_OF_SERVICE, "denial_of_service", verdict,
                   "asks to take the host down or exhaust it", "T1529")
    opened = WORLD.search(text) or near(WRITABLE, EVERYONE, text, 2)
    if opened and GRANT.search(text):
        verdict = BLOCK if SYSTEM.search(text) or SECRET.search(text) or WEAK_SECRET.search(text) else WARN
        yield _hit(clause, Category.PERMISSIONS, "world_writable", verdict, "asks to open files to every user", "T1222")
    if downloads_and_runs(text):
        yield _hit(clause, Category.REMOTE_CODE_EXECUTION, "download_and_run", WARN,
                   "asks to download and run code", "T1105")


def downloads_and_runs(text: str) -> bool:
    """A fetch followed by running, installing or piping what was fetched into a shell."""
    return near(FETCH, EXECUTE, text, 4) or near(FETCH, PIPE_TO_SHELL, text, 12) or near(EXECUTE, SHELL, text, 6) \
        and bool(FETCH.search(text))


def exfiltration(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Secrets, the environment, home or dumps sent to a remote; reading private keys and password stores."""
    text = clause.text
    secret = SECRET.search(text) and not KEY_IN_USE.search(text) and not (
        PUBLIC_KEY.search(text) and not PRIVATE.search(text))
    carried = previous is not None and PRONOUN.search(text) and SECRET.search(previous.text)
    sends, remote, exfil = SEND.search(text), REMOTE.search(text), EXFIL_VERB.search(text)
    source = HOME.search(text) or DATA.search(text)
    if (secret or carried or WEAK_SECRET.search(text)) and (exfil or sends and remote):
        yield _hit(clause, Category.CREDENTIAL_ACCESS, "exfiltrate_secrets", BLOCK,
                   "asks to send credentials or secrets off the machine", "T1048")
    elif secret and near(TOWARD, REMOTE, text, 3) and SECRET.search(text).start() < REMOTE.search(text).start():
        yield _hit(clause, Category.CREDENTIAL_ACCESS, "secrets_to_remote", WARN,
                   "asks to move credentials or secrets to a remote place", "T1048")
    elif source and (exfil or sends and remote and source.start() < remote.start()) and not DELETE.search(text):
        verdict = BLOCK if exfil or stealthy(text) else WARN
        yield _hit(clause, Category.CREDENTIAL_ACCESS, "exfiltrate_data", verdict,
                   "asks to send a home directory or database off the machine", "T1048")
    elif READ_SECRET.search(text) and SHOW.search(text) and not persistent(text):
        yield _hit(clause, Category.CREDENTIAL_ACCESS, "read_secrets", WARN, "asks to read credentials or secrets",
                   "T1552")


def stealthy(text: str) -> bool:
    """Asks for secrecy: quietly, hidden, so that nobody notices."""
    return bool(STEALTH.search(text)) or near(NOBODY, PERCEIVE, text, 2)


def persistent(text: str) -> bool:
    """Names a trigger that comes back: a schedule, a boot or login, an rc file, a hook, cron, systemd."""
    return bool(PERSIST_PLACE.search(text)) or near(SCHEDULE, EVENT, text, 2)


def persistence(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Running something at every boot or login, cron jobs, rc files, authorized_keys, UID-0 users."""
    text = clause.text
    if PRIV.search(text) or near(GRANT, SETUID, text, 6):
        yield _hit(clause, Category.PRIVILEGE_ESCALATION, "backdoor_privilege", BLOCK,
                   "asks for a root account, a setuid shell or a preloaded library", "T1548")
        return
    if not persistent(text) or not PERSIST_VERB.search(text):
        return
    if BACKDOOR.search(text) or stealthy(text) or near(CAPTURE, PASSWORD, text, 3) or downloads_and_runs(text):
        yield _hit(clause, Category.PERSISTENCE, "backdoor", BLOCK,
                   "asks to install a backdoor that survives reboots or logins", "T1053")
    elif AUTH_KEYS.search(text):
        yield _hit(clause, Category.PERSISTENCE, "authorized_keys", WARN, "asks to add an SSH login key",
                   "T1098.004")


def evasion(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Clearing history, deleting logs, disabling the firewall, SELinux or auditd."""
    text = clause.text
    stealth = stealthy(text)
    logs, verb = LOGS.search(text), LOG_VERB.search(text)
    if logs and verb and verb.start() < logs.start() and not LOG_MAINTENANCE.search(text) \
            and not filtered_target(text):
        yield _hit(clause, Category.DEFENSE_EVASION, "erase_traces", BLOCK if stealth else WARN,
                   "asks to erase logs or shell history", "T1070")
    if SECURITY.search(text) and DISABLE.search(text):
        yield _hit(clause, Category.DEFENSE_EVASION, "disable_defenses", BLOCK if stealth else WARN,
                   "asks to disable a firewall, SELinux, auditing or other defenses", "T1562")


FINDERS = (destructive, sabotage, exfiltration, persistence, evasion)
