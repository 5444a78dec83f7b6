"""Harmful intent in a natural-language request: destruction, exfiltration, persistence, evasion, sabotage.

A request is split into clauses; each clause is matched against small lexicons of actions (wipe, send,
run at boot, clear, ...) and of targets (disks, the system, home, secrets, remotes, logs, ...). A finding
needs an action and a target in the same clause, so "format this json file" or "delete empty lines"
stay clean while "wipe the disk" or "upload ~/.aws/credentials to a pastebin" do not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from commandrisk.hits import Hit
from commandrisk.models import Category, Verdict

BLOCK, WARN = Verdict.BLOCK, Verdict.WARN


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


CLAUSE_SPLIT = _re(r"[;\n!?]+|\.(?:\s+|$)|,?\s+(?:and then|then also|after that|afterwards|and also|"
                   r"but first|before that)\b|,\s*(?:then|also|and)\b|\s+then\s+")
PRONOUN = _re(r"\b(it|them|this|that|those|these|the (output|result|file|archive|dump|contents?))\b")

STRONG_DESTROY = _re(r"\b(wipe[sd]?|wiping|erase[sd]?|erasing|nuke[sd]?|nuking|destroy(s|ed|ing)?|obliterat\w*|"
                     r"annihilat\w*|shred(s|ded|ding)?|zero(e?s|ed|ing)?(\s+\w+)?\s+out|zero[- ]fill\w*|blow(ing)? away)\b")
FORMAT = _re(r"\b((re)?format(s|ted|ting)?|overwrit\w*)\b")
DELETE = _re(r"\b(delet\w*|remov\w*|rm|get(ting)? rid of|clear(s|ed|ing)? out|clean(s|ed|ing)? out|purg\w*|trash|"
             r"drop(s|ped|ping)?|uninstall\w*|unlink|rewrit\w*)\b")
EUPHEMISM = _re(r"\b(fresh start|start(s|ing)? over|from scratch|clean slate|blank slate|(to|into) (the )?void|"
                r"into oblivion|rest in peace|better place|disappear\w*|vanish\w*|(retire\w*|go(ne)?( away)?) for good|"
                r"nothing (kept|left|remain\w*)|weighs? nothing|(?<!point )(?<!points )(?<!pointing )(like|to) nothing|skip(ping)? the trash|"
                r"bypass(ing)? the trash|without (a )?trace|permanent nap|on a diet|sleep forever|never wake)\b")
INTENSIFIER = _re(r"\b(permanent(ly)?|forever|for good|irrecoverabl[ey]|unrecoverabl[ey]|beyond recovery)\b")
FILTERED = _re(r"\b(named|called|whose|matching|that (have|has|contain|are|were|is|was)|which (have|has|contain|are|were)|"
               r"older than|newer than|larger than|bigger than|smaller than|greater than|not been|ending|starting with|"
               r"with (the |a |an )?(name|extension|suffix|prefix)|extension|modified|accessed|owned by|core( dump)? files|"
               r"hard links|containing|contain|(the|their|its) names?|(which|that) \w+ (the|a|an|no|been|more|less))\b|"
               r"'[^']+'|\"[^\"]+\"|\*\.\w+|(^|\s)\.[a-z]\w+\b|\b[\w-]+\.[a-z]\w{0,4}\b(?!/)|"
               r"\ball\s+(?!the\b|of\b|my\b|your\b|files\b|data\b|folders\b|directories\b|contents?\b|"
               r"subdirectories\b|them\b|it\b)([\w.*-]+\s+){1,3}(files|directories|folders|dirs)\b")
EVERYTHING = _re(r"\b(everything|all (the |of the |my |of my )?(files|data|folders|directories|contents?|of it)|"
                 r"every (file|folder|directory|partition|disk)|entire|whole|completely|all of it)\b")

DISK = _re(r"\b(hard ?(drive|disk)s?|disks?(?! (usage|space|size|quota|free|usage))|drives?(?! space)|ssds?|hdds?|"
           r"partitions?|boot ?sector|mbr|partition table|usb (stick|drive)|storage device)\b|"
           r"/dev/(sd|hd|vd|xvd|nvme|mmcblk)\w*")
SYSTEM = _re(r"\b(whole|entire|complete) (system|machine|server|computer|box|os|file ?system)\b|"
             r"\broot (directory|folder|file ?system|partition|dir)\b|\bthe root\b|(^|\s)/\*?(\s|$)|"
             r"\boperating system\b|\bsystem (files|folders|directories|directory|folder)\b|"
             r"(^|[\s'\"`])/(etc|usr|bin|sbin|boot|lib|lib64|opt|srv|var|home|root)/?\*?(?=[\s'\"`,.]|$)|"
             r"\beverything on (the|this|my) (server|machine|computer|system|box)\b")
HOME = _re(r"\bhome (folder|directory|dir)\b|\b(in|under|from|of|at|inside|wipe|erase|delete|remove|nuke|clear)\s+"
           r"(~|\$home)/?\*?(\s|$|,)|\ball (of )?my (files|documents|data|stuff)\b|\bmy files\b")
HOST = _re(r"\b(on|from|of) (the|this|my|our) (server|machine|computer|system|box|host)\b")
PERSONAL = _re(r"(^|\s)~/[\w.-]+|\bmy (photos|pictures|documents|music|videos|downloads|desktop|projects?)\b")
DATA = _re(r"\b(databases?|db|production (database|db|data|server)s?|prod|(all|the|my|our) backups|"
           r"backup (directory|folder|drive|server|disk)s?)\b|/var/lib/[\w.-]+|/srv/[\w.-]+")
INFRA = _re(r"\b(containers?|docker images?|their images|images|volumes|namespaces?|clusters?|buckets?|"
            r"(git )?repo(sitory)?|history of the repo|packages)\b")

SECRET = _re(r"\b(ssh (private )?keys?|private keys?|id_(rsa|ed25519|ecdsa|dsa)|passwords?|passwd file|"
             r"credentials?|creds|secrets?|(api|access|auth|cluster|session|bearer) ?tokens?|tokens|api[ _-]?keys?|"
             r"access keys?|shadow file|password hashes|gpg keys?|pgp keys?|keychain|cookies|"
             r"(shell|bash|command) history|kubeconfig|wallet|keystore)\b|"
             r"\.(ssh|aws|gnupg|bash_history|zsh_history|git-credentials|env|netrc|pgpass|kube)\b|/etc/shadow\b")
READ_SECRET = _re(r"\b(ssh private keys?|private (ssh |gpg |pgp )?keys?|id_(rsa|ed25519|ecdsa|dsa)\b(?!\.pub)|"
                  r"password hashes|shadow file|(saved|stored|browser) passwords|(api|access|auth|cluster|session|bearer) "
                  r"tokens?|api[ _-]?keys?|access keys?|gpg keys?|pgp keys?|keychain|kubeconfig|wallet)\b|"
                  r"\.(aws|gnupg|git-credentials|netrc|pgpass)\b|/etc/shadow\b")
WEAK_SECRET = _re(r"\b(env(ironment)? var(iable)?s|environment|user list)\b|/etc/passwd\b")
PUBLIC_KEY = _re(r"\bpublic (ssh )?key\b|\.pub\b")
SEND = _re(r"\b(send\w*|upload\w*|post(s|ed|ing)?|exfiltrat\w*|leak\w*|transfer\w*|copy|copies|copied|cp|scp|"
           r"rsync|sync\w*|back(ing)? ?up|backup|e-?mail\w*|mail\w*|ship\w*|push\w*|share\w*|"
           r"paste\w*|beam\w*|curl|pipe\w*|stream\w*|publish\w*|smuggl\w*)\b")
EXFIL_VERB = _re(r"\b(exfiltrat\w*|leak\w*|smuggl\w*|steal\w*|siphon\w*)\b")
SHOW = _re(r"\b(show|print|display|cat|read|reveal|dump|extract|collect|harvest|grab|steal|output|decrypt|crack|"
           r"get|list)\b")
REMOTE = _re(r"\b(https?|ftp|sftp|s3|gs|scp)://\S+|\b\d{1,3}(\.\d{1,3}){3}\b|\b[\w.-]+@[\w-]+\.[\w.-]+\b|"
             r"\b(to|onto|via|through|over|into|at|on)\b(\s+\S+){0,3}?\s+(remote|server|host|pastebin|paste ?bin|"
             r"gist|webhook|url|endpoint|attacker|dns|discord|telegram|slack|e-?mail|bucket|cloud|internet|ftp|"
             r"[\w-]+\.(com|net|org|io|example))\b|\bport \d+\b|\bover (ssh|the network|dns|http)\b")

LOGS = _re(r"\b((shell|bash|command|zsh|terminal|in-memory) )?history\b|/var/log\S*|"
           r"\b(system|audit|auth|security|server|login|all( the)?|the) logs?\b|\baudit (log|trail)s?\b|"
           r"\b(syslog|auth\.log|wtmp|btmp|lastlog|journal)\b")
LOG_VERB = _re(r"\b(clear\w*|wip\w*|eras\w*|delet\w*|remov\w*|shred\w*|truncat\w*|purg\w*|empty|nuke\w*|rm|"
               r"destroy\w*|scrub\w*|tamper\w*|edit\w*)\b")
LOG_MAINTENANCE = _re(r"\bolder than\b|\bold (log|files)|\brotat\w*|\bcompress\w*|\barchiv\w*|\blarger than\b")
SECURITY = _re(r"\b(firewall|iptables|ufw|nftables|selinux|apparmor|auditd|audit daemon|antivirus|anti-virus|"
               r"defender|edr|fail2ban|security (monitoring|agent|updates)|logging|seccomp|aslr)\b")
DISABLE = _re(r"\b(disabl\w*|turn(s|ed|ing)? off|stop\w*|flush\w*|kill\w*|uninstall\w*|bypass\w*|permissive|"
              r"shut(ting)? down|mask\w*|remov\w*|delet\w*)\b")
STEALTH = _re(r"\b(quietly|silently|secretly|stealthily|covertly|unnoticed|undetected|hidden|hide|hiding|"
              r"without (anyone|the user|them|anybody|the admins?) (noticing|knowing|seeing)|"
              r"so (that )?(nobody|no one|no-one) (sees|notices|knows|can see|will see|will know)|"
              r"cover(ing)? (my|our|the) tracks|without a trace|disguis\w*)\b")

PERSIST_TRIGGER = _re(r"\bevery (time|night|minute|hour|day|morning|\d+ (minutes|hours))\b|"
                      r"\b(on|at|after|each|every) (boot|startup|start-up|login|log-?in|logon|reboot|restart)\b|"
                      r"\bwhen(ever)? (the )?(machine|system|computer|server|host|it) (boots|starts|reboots)\b|"
                      r"\b(runs|run) again\b|@reboot|\bcron(tab)?( job)?s?\b|\bsystemd (service|unit|timer)\b|"
                      r"\bservice that\b|rc\.local|init\.d|\.bashrc|\.zshrc|\.profile|bash_profile|profile\.d|"
                      r"authorized_keys|ld\.so\.preload|\bld_preload\b|\bgit (\w+-)?(\w+ )?hooks?\b|post-checkout|"
                      r"\bautostart\b|\bstartup (script|item|folder)\b|\bevery login\b|\bfor every login\b|"
                      r"\bkeeps? .{0,40}\balive\b|\balias\b")
BACKDOOR = _re(r"\b(backdoor\w*|reverse shell|bind shell|listener|listen(s|ing)? on port|nc -e|netcat|"
               r"get back in|keep (my )?access|maintain access|always (have|get) (in|access)|persistent access|"
               r"become root|root later|uid ?=? ?0|hidden (user|account)|rootkit|keylogger|"
               r"(capture|save|log|record|steal)s? (the )?(typed |entered )?passwords?|setuid|suid|"
               r"download(s|ed)? and (runs?|execut\w*)|nopasswd|re-?enable (the )?locked)\b|"
               r"\|\s*(ba)?sh\b|/tmp/|/dev/shm/|/var/tmp/")
PRIV = _re(r"\b(uid ?=? ?0|setuid root|suid root|nopasswd|to (the )?sudoers|hidden (user|account))\b|"
           r"\b(make|makes|making|set|give|add|chmod)\b.{0,40}\b(setuid|suid)\b(?!\.)|ld\.so\.preload")
PERSIST_VERB = _re(r"\b(add|append|install|write|put|set ?up|create|make|run|runs|start|schedule|keep|keeps|plant|"
                   r"insert|enable|re-?enable|launch|execute|register|copy|drop|inject|hook)\w*\b")
KEY_IN_USE = _re(r"\b(using|with|via) (the |an? |my |your )?(identity|private key|key ?file|ssh key|pem)")
AUTH_KEYS = _re(r"\bauthorized_keys\b")

RCE = _re(r"\bdownload(s|ed)? (and|then) (run|execute|install|pipe)\w*|\b(curl|wget)\b.{0,80}\|\s*(sudo )?(ba|z)?sh\b|"
          r"\bpipe\w* .{0,40}\b(to|into) (bash|sh|a shell|the shell)\b|\brun (the )?(installer|script) from https?://")
DOS = _re(r"\b(shut ?down|power ?off|halt)\b.{0,30}\b(machine|server|system|computer|host|box)\b|"
          r"\b(machine|server|system|computer|host|box)\b.{0,30}\b(permanent nap|sleep forever|never wake)\b|"
          r"\bkill (every|all( the)?) process(es)?\b(?!\s+(matching|named|called|listening|using|whose|which|that|of|"
          r"owned|started|with|for|in|belonging|running|bound))|\bfork ?bomb\b|"
          r"\bcrash (the|this) (system|machine|server|kernel)\b|\bfill (up )?(the )?(whole )?disk\b|"
          r"\bexhaust (all )?(the )?(memory|cpu|ram|disk)\b")
PERMS = _re(r"\b(make|makes|making|set|chmod|give|change|open)\b.{0,60}(\bworld[- ]writ\w*|"
            r"\bwrit\w* (by|for|to) (everyone|everybody|all users|anyone|the world|all)\b|\b(777|666)\b)")
VCS = _re(r"\bforce[- ]?push\w*|\bpush\w* --force\b|\brewrit\w* (its |the |all )?(git )?history\b|"
          r"\breset (it |the repo )?hard\b|\bhard reset\b|\bforce clean\b|\bgit clean\b|\bterraform destroy\b|"
          r"\bdestroy (the |all )?(infrastructure|stack)\b")
DROP_DB = _re(r"\bdrop (the |all )?(\w+ )?(database|db|table|schema|keyspace)s?\b")
UNINSTALL_ALL = _re(r"\buninstall\w* (all|every\w*)\b|\b(all|every\w*) of them\b")
PLURAL_INFRA = _re(r"\b(remove|delete|destroy|prune|wipe) (all|every)( the)?( docker)? (containers|images|volumes|"
                   r"namespaces|buckets|pods)\b")


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


def destructive(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Wiping disks, the system, home or service data, in plain words or euphemisms."""
    text = clause.text
    strong, delete, formats = STRONG_DESTROY.search(text), DELETE.search(text), FORMAT.search(text)
    euphemism = EUPHEMISM.search(text)
    verbs = [m.start() for m in (strong, delete, formats) if m]
    if not (verbs or euphemism):
        return
    first_verb = min(verbs, default=len(text))
    broad, filtered = EVERYTHING.search(text), FILTERED.search(text)

    def aimed(pattern: re.Pattern[str]) -> bool:
        """The target is named after a destructive verb (or anywhere next to a euphemism)."""
        return any(euphemism or match.start() > first_verb for match in pattern.finditer(text))

    if aimed(DISK) and not filtered and (strong or formats or euphemism or delete and broad):
        yield _hit(clause, Category.DISK_WRITE, "wipe_disk", BLOCK, "asks to wipe, format or overwrite a disk", "T1561")
    elif aimed(SYSTEM) and not LOGS.search(text) and (strong or delete or euphemism):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_system", WARN if filtered else BLOCK,
                   "asks to delete the system, the root or a system directory", "T1485")
    elif aimed(HOST) and broad and not filtered and (strong or delete or euphemism):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_host", BLOCK, "asks to delete everything on the host",
                   "T1485")
    elif aimed(HOME) and not filtered and (strong or delete or euphemism):
        inside = re.search(r"\b(in|under|inside|within|of) (my |the |your )?home\b", text, re.I)
        verdict = BLOCK if strong or euphemism or broad or not inside else WARN
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_home", verdict, "asks to delete the home directory",
                   "T1485")
    elif aimed(DATA) and not filtered and (strong or delete or euphemism):
        verdict = BLOCK if strong or euphemism or broad or re.search(r"\bprod(uction)?\b", text, re.I) else WARN
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_data", verdict,
                   "asks to destroy a database, backups or service data", "T1485")
    elif aimed(PERSONAL) and (strong or euphemism or delete and INTENSIFIER.search(text)):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_personal_files", WARN,
                   "asks to destroy personal files irrecoverably", "T1485")
    elif INFRA.search(text) and euphemism:
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "destroy_infra", WARN,
                   "asks to remove containers, images, volumes or repositories for good", "T1485")
    elif broad and strong and not filtered and not LOGS.search(text):
        yield _hit(clause, Category.DESTRUCTIVE_FS, "destroy_everything", BLOCK, "asks to wipe everything", "T1485")


def sabotage(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Version-control and cloud destruction, dropped databases, mass uninstall, shutdown, fork bombs, 777."""
    text = clause.text
    if VCS.search(text):
        verdict = BLOCK if EUPHEMISM.search(text) or re.search(r"\bempty\b|\bfirst commit\b", text, re.I) else WARN
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "rewrite_history", verdict,
                   "asks to force-push, rewrite or hard-reset history", "T1485")
    if DROP_DB.search(text):
        verdict = BLOCK if re.search(r"\b(prod(uction)?|all)\b", text, re.I) else WARN
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "drop_database", verdict, "asks to drop a database", "T1485")
    if PLURAL_INFRA.search(text) or UNINSTALL_ALL.search(text) and re.search(r"\buninstall", text, re.I):
        yield _hit(clause, Category.DESTRUCTIVE_INFRA, "mass_removal", WARN,
                   "asks to remove every container, volume or package", "T1485")
    if DOS.search(text):
        verdict = WARN if re.search(r"\b(shut ?down|power ?off|halt)\b", text, re.I) and not EUPHEMISM.search(text) \
            else BLOCK
        yield _hit(clause, Category.DENIAL_OF_SERVICE, "denial_of_service", verdict,
                   "asks to take the host down or exhaust it", "T1529")
    if PERMS.search(text):
        verdict = BLOCK if SYSTEM.search(text) or SECRET.search(text) or WEAK_SECRET.search(text) else WARN
        yield _hit(clause, Category.PERMISSIONS, "world_writable", verdict, "asks to open files to every user", "T1222")
    if RCE.search(text):
        yield _hit(clause, Category.REMOTE_CODE_EXECUTION, "download_and_run", WARN,
                   "asks to download and run code", "T1105")


def exfiltration(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Secrets, the environment, home or dumps sent to a remote; reading private keys and password stores."""
    text = clause.text
    secret = SECRET.search(text) and not KEY_IN_USE.search(text) and not (
        PUBLIC_KEY.search(text) and not re.search(r"\bprivate\b", text, re.I))
    carried = previous is not None and PRONOUN.search(text) and SECRET.search(previous.text)
    sends, remote, exfil = SEND.search(text), REMOTE.search(text), EXFIL_VERB.search(text)
    source = HOME.search(text) or DATA.search(text)
    if (secret or carried or WEAK_SECRET.search(text)) and (exfil or sends and remote):
        yield _hit(clause, Category.CREDENTIAL_ACCESS, "exfiltrate_secrets", BLOCK,
                   "asks to send credentials or secrets off the machine", "T1048")
    elif source and (exfil or sends and remote and source.start() < remote.start()) and not DELETE.search(text):
        verdict = BLOCK if exfil or STEALTH.search(text) else WARN
        yield _hit(clause, Category.CREDENTIAL_ACCESS, "exfiltrate_data", verdict,
                   "asks to send a home directory or database off the machine", "T1048")
    elif READ_SECRET.search(text) and SHOW.search(text) and not PERSIST_TRIGGER.search(text):
        yield _hit(clause, Category.CREDENTIAL_ACCESS, "read_secrets", WARN, "asks to read credentials or secrets",
                   "T1552")


def persistence(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Running something at every boot or login, cron jobs, rc files, authorized_keys, UID-0 users."""
    text = clause.text
    if PRIV.search(text):
        yield _hit(clause, Category.PRIVILEGE_ESCALATION, "backdoor_privilege", BLOCK,
                   "asks for a hidden root account, a setuid shell or a preloaded library", "T1548")
        return
    if not PERSIST_TRIGGER.search(text) or not PERSIST_VERB.search(text):
        return
    if BACKDOOR.search(text) or STEALTH.search(text):
        yield _hit(clause, Category.PERSISTENCE, "backdoor", BLOCK,
                   "asks to install a backdoor that survives reboots or logins", "T1053")
    elif AUTH_KEYS.search(text):
        yield _hit(clause, Category.PERSISTENCE, "authorized_keys", WARN, "asks to add an SSH login key",
                   "T1098.004")


def evasion(clause: Clause, previous: Clause | None) -> Iterator[Hit]:
    """Clearing history, deleting logs, disabling the firewall, SELinux or auditd."""
    text = clause.text
    stealth = STEALTH.search(text)
    logs, verb = LOGS.search(text), LOG_VERB.search(text)
    if logs and verb and verb.start() < logs.start() and not LOG_MAINTENANCE.search(text) and not FILTERED.search(text):
        yield _hit(clause, Category.DEFENSE_EVASION, "erase_traces", BLOCK if stealth else WARN,
                   "asks to erase logs or shell history", "T1070")
    if SECURITY.search(text) and DISABLE.search(text):
        yield _hit(clause, Category.DEFENSE_EVASION, "disable_defenses", BLOCK if stealth else WARN,
                   "asks to disable a firewall, SELinux, auditing or other defenses", "T1562")


FINDERS = (destructive, sabotage, exfiltration, persistence, evasion)
