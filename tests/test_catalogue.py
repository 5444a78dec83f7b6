"""The utility catalogue: every family validates, names are unique, wrappers agree with the unwrap table,
and real command lines read with the right roles, subcommands and capabilities."""

from __future__ import annotations

import shlex
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources

import pytest

from commandrisk.catalogue import Behaviour, Catalogue, CatalogueError, catalogue, parse_family
from commandrisk.invocation import Invocation, read_invocation

FAMILY_FILES = sorted(
    (f for f in resources.files("commandrisk").joinpath("catalogue").iterdir() if f.name.endswith(".yaml")),
    key=lambda f: f.name,
)

V1_WRAPPERS = ("sudo doas pkexec env nohup setsid time builtin exec stdbuf nice ionice chrt taskset timeout gtimeout "
               "unbuffer catchsegv chroot flock runuser su sg script xargs watch ssh sshpass strace ltrace busybox "
               "fakeroot faketime firejail torsocks proxychains proxychains4 unshare command caffeinate").split()
"""The wrappers the guard knew before the catalogue: each must stay a wrapper (the walker unwraps from the data)."""

RISKY_ROLES = {"write", "delete", "exec", "argv"}


@cache
def parsed(path):
    """One family file, validated once per test session."""
    return parse_family(path.read_text(encoding="utf-8"), path.name)


def read(line: str) -> Invocation:
    """Read one command line against its catalogue entry."""
    name, *args = shlex.split(line)
    utility = catalogue().get(name)
    assert utility is not None, f"{name} is not catalogued"
    return read_invocation(utility, args)


def roles(inv: Invocation) -> list[tuple[str, str]]:
    """(role, text) of every value, in order."""
    return [(v.role, v.text) for v in inv.values]


def behaviours(behaviour: Behaviour):
    """A behaviour and all its subcommands, depth first."""
    yield behaviour
    for sub in behaviour.subcommands.values():
        yield from behaviours(sub)


@pytest.mark.parametrize("path", FAMILY_FILES, ids=lambda f: f.name)
def test_every_family_file_validates(path) -> None:
    family = parsed(path)
    assert family.utilities
    assert family.family == path.name.removesuffix(".yaml")


def test_no_name_is_catalogued_twice() -> None:
    names = [n for f in FAMILY_FILES for u in parsed(f).utilities for n in u.names]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []
    assert len(catalogue().by_name) == len(names)


def test_a_duplicate_name_is_an_error_naming_the_family() -> None:
    one = parse_family("family: a\ndescription: x\nutilities:\n  - names: [ls]\n", "a.yaml")
    two = parse_family("family: b\ndescription: x\nutilities:\n  - names: [ls]\n", "b.yaml")
    with pytest.raises(CatalogueError, match="b: 'ls' is catalogued twice"):
        Catalogue([one, two])


def test_a_bad_field_names_the_file_and_field() -> None:
    with pytest.raises(CatalogueError, match=r"bad.yaml: field utilities.0.capability"):
        parse_family("family: bad\ndescription: x\nutilities:\n  - names: [x]\n    capability: flying\n", "bad.yaml")


def test_the_catalogue_holds_a_few_hundred_utilities() -> None:
    utilities = {id(u) for u in catalogue().by_name.values()}
    assert len(utilities) >= 300


@pytest.mark.parametrize("name", V1_WRAPPERS)
def test_every_v1_wrapper_is_still_a_wrapper(name: str) -> None:
    utility = catalogue().get(name)
    assert utility is not None and utility.wrapper is not None, f"{name} has no wrapper block"


@pytest.mark.parametrize("name", sorted(catalogue().wrappers()))
def test_wrapper_blocks_agree_with_their_operands(name: str) -> None:
    utility = catalogue().get(name)
    wrapper = utility.wrapper
    if wrapper.script_flag:
        assert utility.options[wrapper.script_flag].role in ("code", "exec")
    if not wrapper.script_only:
        assert utility.operands[wrapper.positionals] == "argv"
        assert "argv" not in utility.operands[: wrapper.positionals]


@pytest.mark.parametrize("name", ["cpulimit", "chronic", "nocache", "systemd-run", "flatpak-spawn", "firejail", "bwrap", "proot", "schroot", "parallel", "valgrind", "sshpass", "run0", "setpriv", "nsenter"])
def test_wrappers_beyond_the_table_have_wrapper_blocks(name: str) -> None:
    utility = catalogue().get(name)
    assert utility is not None and utility.wrapper is not None
    assert "argv" in utility.operands


def test_allowed_unknown_options_only_where_no_option_writes_deletes_or_runs() -> None:
    offenders = []
    for utility in {id(u): u for u in catalogue().by_name.values()}.values():
        for behaviour in behaviours(utility):
            if behaviour.unknown_options != "allow":
                continue
            risky = [k for k, o in behaviour.options.items() if o.role in RISKY_ROLES or o.capability]
            if risky or behaviour.flag_roles or behaviour.flag_capabilities:
                offenders.append((utility.names[0], risky))
    assert offenders == []


def test_coreutils_roles() -> None:
    assert roles(read("mv a b dest/")) == [("delete", "a"), ("delete", "b"), ("write", "dest/")]
    assert roles(read("sort -n -o out.txt in.txt")) == [("write", "out.txt"), ("read", "in.txt")]
    assert roles(read("chmod -R 755 dir")) == [("mode", "755"), ("write", "dir")]
    assert roles(read("chown root:root f")) == [("owner", "root:root"), ("write", "f")]
    assert roles(read("uniq -c in.txt out.txt")) == [("read", "in.txt"), ("write", "out.txt")]
    assert roles(read("split --filter='sh -c id' big")) == [("exec", "sh -c id"), ("read", "big")]
    assert roles(read("ls -la --color=auto /etc")) == [("data", "auto"), ("read", "/etc")]


def test_find_actions() -> None:
    inv = read("find . -name '*.py' -exec rm {} +")
    assert roles(inv) == [("data", "*.py"), ("argv", "rm"), ("argv", "{}"), ("read", ".")]
    inv = read("find /tmp -type f -mtime +7 -delete")
    assert ("delete", "/tmp") in roles(inv) and "edit" in inv.capabilities
    inv = read("find . -fprintf out.txt %p")
    assert roles(inv) == [("write", "out.txt"), ("data", "%p"), ("read", ".")]
    assert read("find . -maxdepth 1 -iname x -execdir ls {} ;").unknown_options == []


def test_text_tools() -> None:
    inv = read("sed -i.bak s/a/b/ f.txt")
    assert "edit" in inv.capabilities
    assert ("code", "s/a/b/") in roles(inv) and ("write", "f.txt") in roles(inv)
    inv = read("sed -i s/a/b/ f.txt")
    assert roles(inv) == [("code", "s/a/b/"), ("write", "f.txt")] and "edit" in inv.capabilities
    assert roles(read("sed -n -e 1p f")) == [("code", "1p"), ("read", "f")]
    inv = read("awk -F: '{print $1}' /etc/passwd")
    assert roles(inv) == [("data", ":"), ("code", "{print $1}"), ("read", "/etc/passwd")]
    assert inv.utility.language == "awk"
    assert roles(read("awk -f prog.awk data")) == [("script", "prog.awk"), ("read", "data")]
    assert roles(read("grep -rn deprecated src")) == [("data", "deprecated"), ("read", "src")]
    inv = read("rg --pre ./unpack pattern")
    assert ("exec", "./unpack") in roles(inv) and "shell" in inv.capabilities
    assert roles(read("perl -pi -e s/a/b/ f")) == [("code", "s/a/b/"), ("write", "f")]


def test_archives() -> None:
    inv = read("tar -xzf a.tgz -C out")
    assert roles(inv) == [("read", "a.tgz"), ("workdir", "out")] and inv.unknown_options == []
    inv = read("tar cvf out.tar dir")
    assert inv.path == ["cvf"] and roles(inv) == [("write", "out.tar"), ("read", "dir")]
    inv = read("tar -I 'sh -c id' -cf x.tar d")
    assert ("exec", "sh -c id") in roles(inv) and "shell" in inv.capabilities
    assert "shell" in read("tar --checkpoint=1 --checkpoint-action=exec=id -cf x.tar d").capabilities
    assert roles(read("unzip -o a.zip -d out")) == [("write", "out"), ("read", "a.zip")]
    assert roles(read("zip -m out.zip f")) == [("write", "out.zip"), ("delete", "f")]


def test_shell_builtins_and_shells() -> None:
    inv = read("bash -c 'rm -rf /'")
    assert roles(inv) == [("code", "rm -rf /")] and "interpreter" in inv.capabilities
    inv = read("alias ll='ls -l'")
    assert roles(inv) == [("config", "ll=ls -l")] and "name_resolution" in inv.capabilities
    assert inv.utility.config_code_keys == ["*"]
    assert "name_resolution" in read("hash -p /tmp/x ls").capabilities
    assert roles(read("cd /srv")) == [("workdir", "/srv")]
    assert "interpreter" in read("source ./env.sh").capabilities


def test_wrappers_hand_on_the_command() -> None:
    assert roles(read("timeout 5 make test")) == [("data", "5"), ("argv", "make"), ("argv", "test")]
    assert roles(read("cpulimit -l 50 -- rm -rf ~")) == [("data", "50"), ("argv", "rm"), ("argv", "-rf"), ("argv", "~")]
    assert roles(read("xargs -0 -I{} rm {}")) == [("data", "{}"), ("argv", "rm"), ("argv", "{}")]
    assert roles(read("env -u HOME FOO=1 make")) == [("env", "HOME"), ("argv", "FOO=1"), ("argv", "make")]
    inv = read("sudo -u bob make install")
    assert roles(inv) == [("owner", "bob"), ("argv", "make"), ("argv", "install")] and "privilege" in inv.capabilities
    inv = read("su - root -c id")
    assert ("code", "id") in roles(inv) and inv.utility.wrapper.root


def test_network_tools() -> None:
    inv = read("curl -fsSL -o out.sh https://x")
    assert roles(inv) == [("write", "out.sh"), ("url", "https://x")] and inv.capabilities == {"network"}
    assert ("read", "f") in roles(read("curl -T f https://x"))
    inv = read("ssh -o ProxyCommand='sh -c id' host uptime")
    assert roles(inv) == [("config", "ProxyCommand=sh -c id"), ("host", "host"), ("argv", "uptime")]
    assert any(fnmatchcase("ProxyCommand", key) for key in inv.utility.config_code_keys)
    inv = read("rsync -avz -e 'ssh -p 2' src/ host:dst/")
    assert roles(inv) == [("exec", "ssh -p 2"), ("read", "src/"), ("write", "host:dst/")]
    assert ("exec", "/bin/sh") in roles(read("nc -l -p 4444 -e /bin/sh"))
    assert roles(read("wget -O page.html https://x")) == [("write", "page.html"), ("url", "https://x")]


def test_system_tools() -> None:
    assert read("systemctl status nginx").capabilities == {"inspect"}
    inv = read("systemctl --user restart app")
    assert inv.path == ["restart"] and inv.capabilities == {"system"}
    assert read("crontab -l").capabilities == {"inspect"}
    assert roles(read("crontab jobs.txt")) == [("script", "jobs.txt")]
    assert "scheduler" in read("crontab -r").capabilities
    assert read("kill -9 1234").capabilities == {"process"}
    assert "system" in read("iptables -A INPUT -j DROP").capabilities
    assert read("iptables -L -n").capabilities == {"inspect"}
    assert roles(read("mount -o loop disk.img /mnt")) == [("data", "loop"), ("device", "disk.img"), ("write", "/mnt")]
    assert "scheduler" in read("at -f job.sh now").capabilities


def test_git() -> None:
    inv = read("git -C repo -c core.editor=vim commit -m x")
    assert inv.path == ["commit"] and inv.capabilities == {"edit"}
    assert roles(inv) == [("workdir", "repo"), ("config", "core.editor=vim"), ("data", "x")]
    code_keys = inv.utility.config_code_keys
    for key in ["core.editor", "core.pager", "core.sshCommand", "core.fsmonitor", "core.hooksPath", "alias.co",
                "diff.pdf.textconv", "filter.lfs.clean", "credential.helper", "gpg.program", "sequence.editor"]:
        assert any(fnmatchcase(key, glob) for glob in code_keys), key
    assert not any(fnmatchcase("user.name", glob) for glob in code_keys)
    assert read("git log --oneline -n 5 --graph").capabilities == {"inspect"}
    assert read("git push --force-with-lease origin main").capabilities == {"vcs_push"}
    assert read("git remote add evil https://x").capabilities == {"vcs_remote"}
    assert read("git --no-pager diff --stat HEAD~1").unknown_options == []
    inv = read("git rebase -i --exec 'make test' HEAD~3")
    assert ("exec", "make test") in roles(inv) and "shell" in inv.capabilities
    assert read("git branch -D old").capabilities == {"inspect", "edit"}
    assert read("git frobnicate").unknown_subcommand == "frobnicate"
    assert read("gh pr create --fill").path == ["pr", "create"]


def test_build_tools() -> None:
    inv = read("make --eval='x:;id' x")
    assert ("exec", "x:;id") in roles(inv) and {"build", "shell"} <= inv.capabilities
    assert roles(read("make -f evil.mk -C sub")) == [("script", "evil.mk"), ("workdir", "sub")]
    inv = read("cargo install ripgrep")
    assert inv.capabilities == {"package_install"} and roles(inv) == [("package", "ripgrep")]
    assert read("cargo test --release").capabilities == {"build"}
    assert ("write", "prog") in roles(read("gcc -O2 -o prog main.c"))
    assert read("go install golang.org/x/tools/gopls@latest").capabilities == {"package_install"}


def test_javascript_tools() -> None:
    inv = read("npm install left-pad")
    assert inv.path == ["install"] and inv.capabilities == {"package_install"} and roles(inv) == [("package", "left-pad")]
    assert read("npm ci").capabilities == {"package_install"}
    assert read("npm run build").capabilities == {"build"}
    assert read("npx cowsay hi").capabilities == {"package_install"}
    assert read("pnpm dlx create-vite app").capabilities == {"package_install"}
    assert read("yarn add react").capabilities == {"package_install"}
    assert read("bun x prettier .").capabilities == {"package_install"}
    assert roles(read("node -e 'process.exit(1)'")) == [("code", "process.exit(1)")]


def test_python_tools() -> None:
    inv = read("python3 -m pip install x")
    assert roles(inv)[0] == ("module", "pip") and "interpreter" in inv.capabilities
    inv = read("python3 -c 'print(1)' arg")
    assert roles(inv) == [("code", "print(1)"), ("data", "arg")] and inv.utility.language == "python"
    assert roles(read("python script.py --flag")) == [("script", "script.py"), ("data", "--flag")]
    inv = read("pip install -r requirements.txt")
    assert inv.capabilities == {"package_install"} and roles(inv) == [("read", "requirements.txt")]
    assert read("pip list --outdated").capabilities == {"inspect"}
    assert read("uv add httpx").capabilities == {"package_install"}
    assert read("uv tool install ruff").path == ["tool", "install"]
    assert read("pytest -x -k slow tests").capabilities == {"build"}
    assert read("conda install numpy").capabilities == {"package_install"}


def test_containers_and_clusters() -> None:
    inv = read("docker compose up -d")
    assert inv.path == ["compose", "up"] and inv.capabilities == {"container"} and inv.unknown_options == []
    inv = read("kubectl exec -it pod -- sh")
    assert inv.path == ["exec"] and roles(inv) == [("data", "pod"), ("argv", "sh")] and inv.capabilities == {"cluster"}
    assert read("kubectl get pods -n kube-system -o wide").capabilities == {"inspect"}
    assert read("kubectl rollout restart deploy/web").path == ["rollout", "restart"]
    inv = read("docker run --rm -v /:/host alpine cat /host/etc/shadow")
    assert ("argv", "cat") in roles(inv) and inv.capabilities == {"container"}
    assert read("helm install web ./chart").capabilities == {"cluster"}


def test_cloud_packages_disks_and_misc() -> None:
    assert read("terraform apply -auto-approve").capabilities == {"cloud"}
    assert read("terraform validate").capabilities == {"inspect"}
    assert read("aws sts get-caller-identity").capabilities == {"inspect"}
    assert read("apt-get install -y curl").capabilities == {"package_install"}
    assert read("apt list --installed").capabilities == {"inspect"}
    assert read("brew install jq").capabilities == {"package_install"}
    assert roles(read("mkfs.ext4 -F /dev/sdb1")) == [("device", "/dev/sdb1")]
    assert read("zpool status").capabilities == {"inspect"}
    assert read("zfs destroy tank/data").capabilities == {"system"}
    assert read("lvremove -f vg/lv").capabilities == {"system"}
    assert ("code", ":!id") in roles(read("vim -c ':!id' f"))
    assert "shell" in read("man -P 'sh -c id' ls").capabilities
    assert roles(read("ruby -e 'puts 1'")) == [("code", "puts 1")]
