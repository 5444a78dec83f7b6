"""Destructive filesystem operations and raw disk/device writes."""

from __future__ import annotations

from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category
from commandrisk.paths import DYN, Place, is_service_data
from commandrisk.rules.base import BLOCK, WARN, hit, on, parse_args, place
from commandrisk.walker import FIND_FILTERS, Scan, SimpleCommand, find_start

FS, DISK = Category.DESTRUCTIVE_FS, Category.DISK_WRITE
RECURSIVE_WARN_KINDS = frozenset({"system_deep", "home_top", "mount"})


def _deletion(cmd: SimpleCommand, target: str, p: Place, recursive: bool, verb: str) -> Hit | None:
    """Judge deleting `target` (recursively or not)."""
    what = p.describe()
    if p.kind == "unknown":
        if recursive and p.glob:
            return hit(cmd, FS, "fs.delete_glob_unknown_dir", WARN, 50,
                       f"{verb} everything matching {target} in a directory only known at run time")
        return None
    if p.kind == "variable_root":
        if recursive or p.glob:
            return hit(cmd, FS, "fs.delete_variable_root", WARN, 60, f"{verb} {what}")
        return None
    if p.critical:
        if p.dynamic:
            if not (recursive or p.glob) and p.kind not in ("root", "system_top"):
                return None
            return hit(cmd, FS, "fs.delete_dynamic_critical", WARN, 55,
                       f"{verb} entries chosen at run time under {what}")
        if p.kind == "outside_workspace" and p.location.anchor == "/" and (recursive or p.glob) \
                and not _contains_workspace(p, cmd):
            return hit(cmd, FS, "fs.delete_outside_workspace", WARN, 65,
                       f"{verb} {what} (an absolute path that is neither a system nor a home directory)")
        if recursive or p.glob or p.kind in ("device", "root"):
            risk = 100 if p.kind in ("root", "home_root") else 90
            return hit(cmd, FS, f"fs.delete_{p.kind}", BLOCK, risk, f"{verb} {what}")
        return hit(cmd, FS, f"fs.delete_{p.kind}_file", WARN if p.kind == "outside_workspace" else BLOCK, 70,
                   f"{verb} {what}")
    if p.kind == "system_deep" and (recursive or p.glob) and not p.dynamic and is_service_data(p.location):
        return hit(cmd, FS, "fs.delete_service_data", BLOCK, 90, f"{verb} service data directory {p.location.display()}")
    if p.kind in RECURSIVE_WARN_KINDS and (recursive or p.glob) and not p.dynamic:
        return hit(cmd, FS, f"fs.delete_{p.kind}", WARN, 50, f"{verb} {what}")
    if p.kind == "system_deep" and not p.dynamic:
        return hit(cmd, FS, "fs.delete_system_file", WARN, 45, f"{verb} {what}")
    return None


def _contains_workspace(p: Place, cmd: SimpleCommand) -> bool:
    """True when deleting `p` deletes the workspace too (`..`, `../..`, `cd ../.. && rm -rf *`)."""
    if cmd.walk is None:
        return True
    workspace = cmd.walk.frame.workspace
    parts = tuple(x for x in p.location.parts if x not in ("*", ".*"))
    return p.location.anchor == workspace.anchor and workspace.parts[: len(parts)] == parts


@on("rm", "unlink", "rmdir", "srm")
def rm(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`rm -rf /`, `rm -r -f ~`, `rm --recursive --force ../..`, `cd / && rm -rf ./*`."""
    parsed = parse_args(cmd.args)
    recursive = parsed.has("rR", "--recursive") or cmd.name == "srm"
    if "--no-preserve-root" in parsed.long:
        yield hit(cmd, FS, "fs.no_preserve_root", BLOCK, 100, "rm --no-preserve-root disables the guard against deleting /")
    for target in parsed.positionals:
        finding = _deletion(cmd, target, place(cmd, scan, target), recursive, "deletes")
        if finding:
            yield finding


@on("find")
def find_delete(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`find / -delete` deletes everything below the start directory."""
    if "-delete" not in cmd.args:
        return
    start = find_start(cmd.args)
    p = place(cmd, scan, start)
    filtered = any(a in FIND_FILTERS for a in cmd.args)
    if p.critical and not filtered:
        yield hit(cmd, FS, f"fs.find_delete_{p.kind}", BLOCK, 95, f"find -delete removes everything under {p.describe()}")
    elif p.critical or p.kind in RECURSIVE_WARN_KINDS:
        yield hit(cmd, FS, "fs.find_delete_filtered", WARN, 50, f"find -delete removes matching files under {p.describe()}")


@on("shred", "wipe", "srm")
def shred(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Shredding a device or a critical path."""
    for target in parse_args(cmd.args, frozenset({"-n", "-s", "--iterations", "--size"})).positionals:
        p = place(cmd, scan, target)
        if p.kind == "device":
            yield hit(cmd, DISK, "disk.shred_device", BLOCK, 100, f"overwrites {p.describe()} with random data",
                      "T1561.001")
        elif p.critical or p.kind == "system_deep":
            yield hit(cmd, FS, "fs.shred_critical", BLOCK, 90, f"irrecoverably overwrites {p.describe()}")


@on("mv")
def mv(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Moving the root, a system directory or home away, or moving anything into /dev/null."""
    parsed = parse_args(cmd.args, frozenset({"-t", "-S", "--suffix"}))
    if len(parsed.positionals) < 2:
        return
    *sources, dest = parsed.positionals
    if dest == "/dev/null":
        yield hit(cmd, FS, "fs.move_to_dev_null", BLOCK if any(place(cmd, scan, s).critical for s in sources) else WARN,
                  70, "moves files onto /dev/null, destroying them")
        return
    for source in sources:
        p = place(cmd, scan, source)
        if p.critical and p.kind not in ("outside_workspace",) and not p.dynamic:
            yield hit(cmd, FS, f"fs.move_{p.kind}", BLOCK, 90, f"moves {p.describe()} away")


@on("rsync")
def rsync_delete(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`rsync --delete` into a critical destination wipes what the source lacks."""
    if not any(a.startswith("--delete") or a == "--remove-source-files" for a in cmd.args):
        return
    parsed = parse_args(cmd.args, frozenset({"-e", "--rsh", "--exclude", "--include"}))
    if len(parsed.positionals) >= 2 and ":" not in parsed.positionals[-1]:
        p = place(cmd, scan, parsed.positionals[-1])
        if p.critical:
            yield hit(cmd, FS, "fs.rsync_delete_critical", BLOCK, 90, f"rsync --delete into {p.describe()}")


@on("dd")
def dd(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`dd of=/dev/sda` overwrites a disk."""
    for arg in cmd.args:
        if arg.startswith("of="):
            p = place(cmd, scan, arg[3:])
            if p.kind == "device":
                yield hit(cmd, DISK, "disk.dd_device", BLOCK, 100, f"dd writes raw data to {p.describe()}", "T1561.002")
            elif p.dynamic and p.kind in ("unknown", "variable_root"):
                yield hit(cmd, DISK, "disk.dd_dynamic_target", WARN, 60,
                          "dd writes raw data to a target only known at run time (it could be a disk)", "T1561.002")


MKFS = frozenset({"mkfs", "mke2fs", "mkswap", "mkdosfs", "mkntfs", "wipefs", "blkdiscard", "mkfs.ext4", "mkfs.ext3",
                  "mkfs.ext2", "mkfs.xfs", "mkfs.btrfs", "mkfs.vfat", "mkfs.fat", "mkfs.ntfs", "mkfs.exfat",
                  "mkfs.f2fs"})


@on(*MKFS)
def mkfs(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Formatting or wiping a filesystem signature destroys everything on it."""
    parsed = parse_args(cmd.args, frozenset({"-t", "-L", "-b", "-n", "-o", "-O", "-c"}))
    if cmd.name == "wipefs" and not parsed.has("a", "--all") and not any(a.startswith("-o") for a in cmd.args):
        return
    targets = parsed.positionals or ["<device>"]
    devices = [t for t in targets if place(cmd, scan, t).kind == "device" or DYN in t or t.startswith("/dev/")]
    if devices or cmd.name in ("wipefs", "blkdiscard"):
        yield hit(cmd, DISK, f"disk.{cmd.name.split('.')[0]}", BLOCK, 100,
                  f"{cmd.name} destroys the data on {' '.join(devices or targets).replace(DYN, '$VAR')}", "T1561.002")
    else:
        yield hit(cmd, DISK, "disk.mkfs_image", WARN, 40, f"{cmd.name} formats {' '.join(targets)}", "T1561.002")


PARTITION_WRITES = {
    "parted": ("mklabel", "mkpart", "rm", "resizepart", "mktable"),
    "sgdisk": ("--zap-all", "-Z", "--zap", "-z", "-o", "--clear", "-d", "--delete", "-n", "--new"),
    "sfdisk": ("--delete", "--wipe", "-"),
    "hdparm": ("--security-erase", "--security-erase-enhanced", "--trim-sector-ranges", "--write-sector"),
    "badblocks": ("-w",),
    "cryptsetup": ("luksFormat", "erase", "luksErase"),
    "dmsetup": ("remove_all",),
}


@on(*PARTITION_WRITES)
def partition_tools(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Partition-table and secure-erase operations on a device."""
    words = PARTITION_WRITES[cmd.name]
    if any(a in words for a in cmd.args) or (cmd.name == "sfdisk" and cmd.stdin_text is not None):
        yield hit(cmd, DISK, f"disk.{cmd.name}_write", BLOCK, 95,
                  f"{cmd.name} rewrites the partition table or erases the device", "T1561.002")


@on("fdisk", "gdisk", "cfdisk")
def fdisk(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Interactive partitioners: listing is fine, editing a device is not."""
    if not any(a in ("-l", "--list") for a in cmd.args) and any(a.startswith("/dev/") for a in cmd.args):
        verdict = BLOCK if cmd.stdin_text is not None or cmd.upstream() else WARN
        yield hit(cmd, DISK, "disk.partition_editor", verdict, 70, f"{cmd.name} edits the partition table", "T1561.002")
