"""Path reasoning: resolve a word against the tracked cwd and say what kind of place it names."""

from __future__ import annotations

from dataclasses import dataclass

DYN = "\x00"
"""Stands for text only known at run time (a variable, a substitution)."""

GLOB_CHARS = frozenset("*?[")

SCRATCH_DIRS = {("tmp",), ("var", "tmp"), ("dev", "shm"), ("run", "user")}
SYSTEM_TOP = frozenset(
    "bin boot dev etc lib lib32 lib64 libx32 opt proc root run sbin srv sys usr var snap home mnt media".split()
)
SYSTEM_SECOND = {
    "usr": frozenset("bin sbin lib lib32 lib64 libexec include share local src".split()),
    "var": frozenset("lib log cache spool mail backups opt db".split()),
    "etc": None,
    "boot": None,
    "bin": None,
    "sbin": None,
    "lib": None,
    "lib64": None,
    "lib32": None,
}
HOME_SECRETS = frozenset(".ssh .gnupg .aws .kube .docker .config .local .password-store .azure .gcloud".split())
DISK_DEVICE_PREFIXES = (
    "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "md", "dm-", "loop", "sr", "disk", "mapper", "mem", "kmem", "port",
    "nbd", "rbd", "zd", "root",
)
HARMLESS_DEVICES = frozenset(
    "null zero random urandom full stdout stderr stdin tty console ptmx fd shm pts".split()
)


@dataclass(frozen=True)
class Location:
    """A normalised path: an anchor ('/', '~', '.' = workspace, '?' = unknown dir) plus parts."""

    anchor: str
    parts: tuple[str, ...] = ()
    up: int = 0

    def join(self, text: str) -> Location:
        """Resolve `text` relative to this location (absolute and `~` paths replace it)."""
        if text.startswith("/"):
            base = Location("/")
        elif text == "~" or text.startswith("~/"):
            base, text = Location("~"), text[1:]
        elif text.startswith("~") and len(text) > 1:
            user, _, rest = text[1:].partition("/")
            base, text = (Location("/", ("root",)) if user == "root" else Location("/", ("home", user))), rest
        else:
            base = self
        parts, up = list(base.parts), base.up
        for part in text.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                elif base.anchor != "/":
                    up += 1
                continue
            parts.append(part)
        return Location(base.anchor, tuple(parts), up)

    def display(self) -> str:
        """Render for messages: `/etc`, `~/.ssh`, `./build`, `../..`."""
        if self.anchor == "/":
            return "/" + "/".join(self.parts)
        prefix = {"~": "~", ".": ".", "?": "<cwd>"}[self.anchor]
        ups = "/".join([".."] * self.up)
        tail = "/".join(p for p in (ups, "/".join(self.parts)) if p)
        return f"{prefix}/{tail}" if tail else prefix


@dataclass(frozen=True)
class Place:
    """What a path names, for judging writes and deletions."""

    kind: str
    location: Location
    glob: bool
    dynamic: bool

    @property
    def critical(self) -> bool:
        """True for places whose loss breaks the system or the user's account."""
        return self.kind in CRITICAL_KINDS

    def describe(self) -> str:
        """Human phrase, e.g. 'the filesystem root' or 'system directory /usr/lib'."""
        where = self.location.display()
        return KIND_PHRASES.get(self.kind, "{}").format(where)


CRITICAL_KINDS = frozenset(
    {"root", "system_top", "home_root", "home_secret", "home_other", "outside_workspace", "device"}
)
KIND_PHRASES = {
    "root": "the filesystem root ({})",
    "system_top": "system directory {}",
    "system_deep": "system path {}",
    "device": "device {}",
    "home_root": "the home directory ({})",
    "home_secret": "credentials/config directory {}",
    "home_other": "another user's home {}",
    "home_top": "home folder {}",
    "outside_workspace": "{}, outside the workspace",
    "mount": "mount point {}",
    "unknown": "{} (directory known only at run time)",
    "variable_root": "{} if the variable before it is empty",
}


@dataclass(frozen=True)
class Frame:
    """Where relative paths start and which tree the command may modify."""

    cwd: Location | None
    workspace: Location
    home: tuple[str, ...] | None

    @classmethod
    def build(cls, cwd: str | None, workspace_root: str | None, home: str | None) -> Frame:
        """Make a frame from absolute path strings (None = symbolic workspace/home)."""
        home_parts = Location("/").join(home).parts if home else None
        if workspace_root:
            workspace = Location("/").join(workspace_root)
        elif cwd:
            workspace = Location("/").join(cwd)
        else:
            workspace = Location(".")
        start = Location("/").join(cwd) if cwd else workspace
        return cls(_rehome(start, home_parts), _rehome(workspace, home_parts), home_parts)

    def locate(self, text: str, cwd: Location | None) -> Location | None:
        """Resolve a path word against `cwd` (None = unknown directory)."""
        if cwd is None and not (text.startswith("/") or text.startswith("~")):
            return Location("?").join(text)
        return _rehome((cwd or self.workspace).join(text), self.home)

    def place(self, text: str, cwd: Location | None) -> Place:
        """Classify the path word `text` as seen from `cwd`."""
        glob = any(c in GLOB_CHARS for c in text)
        if DYN not in text:
            location = self.locate(text, cwd)
            return Place(_classify(location, self), location, glob, False)
        if text.startswith(DYN + "/") and DYN not in text[1:]:
            location = Location("/").join(text[1:])
            if _classify(location, self) in ("root", "system_top"):
                return Place("variable_root", location, glob, True)
            return Place("unknown", Location("?"), glob, True)
        static_prefix = text.split(DYN, 1)[0]
        if "/" not in static_prefix:
            return Place("unknown", Location("?"), glob, True)
        location = self.locate(static_prefix.rsplit("/", 1)[0] + "/", cwd)
        return Place(_classify(location, self), location, glob, True)


SERVICE_DATA_ROOTS = (("var", "lib"), ("var", "spool"), ("srv",))


def is_service_data(location: Location) -> bool:
    """A service's whole data directory, or everything in it: `/var/lib/mysql`, `/var/lib/docker/*`, `/srv/git`."""
    if location.anchor != "/":
        return False
    parts = location.parts
    for root in SERVICE_DATA_ROOTS:
        if parts[: len(root)] == root:
            rest = parts[len(root):]
            return len(rest) == 1 or len(rest) == 2 and rest[1] in ("*", ".*")
    return False


def _rehome(location: Location, home: tuple[str, ...] | None) -> Location:
    """Express an absolute path under the user's home with the `~` anchor."""
    if home and location.anchor == "/" and location.parts[: len(home)] == home:
        return Location("~", location.parts[len(home):])
    return location


def _under(location: Location, base: Location) -> bool:
    """True when `location` is `base` or inside it."""
    return (
        location.anchor == base.anchor
        and location.up == base.up
        and location.parts[: len(base.parts)] == base.parts
    )


def _classify(location: Location, frame: Frame) -> str:
    """Name the kind of place; see KIND_PHRASES."""
    parts = location.parts
    if location.anchor == "?":
        return "outside_workspace" if location.up else "unknown"
    if _under(location, frame.workspace):
        return "workspace"
    if location.anchor == ".":
        return "outside_workspace"
    if location.anchor == "~":
        if location.up:
            return "system_top"
        if not parts or parts == ("*",) or parts[0].startswith(".*"):
            return "home_root"
        if parts[0] in HOME_SECRETS and len(parts) == 1:
            return "home_secret"
        if parts[0] in (".ssh", ".gnupg", ".aws"):
            return "home_secret"
        return "home_top" if len(parts) == 1 else "user_data"
    return _classify_absolute(parts, frame)


def _classify_absolute(parts: tuple[str, ...], frame: Frame) -> str:
    """Classify an absolute path given as parts."""
    if not parts or parts[0] in ("*", ".*"):
        return "root"
    top = parts[0]
    if any(parts[: len(s)] == s for s in SCRATCH_DIRS):
        return "scratch"
    if top == "dev":
        if len(parts) >= 2 and parts[1].startswith(DISK_DEVICE_PREFIXES):
            return "device"
        if len(parts) >= 2 and (parts[1] in HARMLESS_DEVICES or parts[1].startswith(("tty", "pts"))):
            return "scratch"
        return "system_top"
    if top == "home":
        if len(parts) == 1 or parts[1] in ("*", ".*"):
            return "system_top"
        if len(parts) == 2:
            return "home_other"
        return "home_secret" if parts[2] in HOME_SECRETS else "user_data"
    if top == "root":
        return "home_other" if len(parts) <= 2 else "system_deep"
    if top in ("mnt", "media"):
        return "mount" if len(parts) <= 2 else "user_data"
    if top not in SYSTEM_TOP:
        return "outside_workspace" if frame.workspace.anchor == "/" else "user_data"
    if len(parts) == 1 or any(c in GLOB_CHARS for c in parts[1]):
        return "system_top"
    second = SYSTEM_SECOND.get(top, frozenset())
    if len(parts) == 2 and (second is None or parts[1] in second):
        return "system_top"
    return "system_deep"
