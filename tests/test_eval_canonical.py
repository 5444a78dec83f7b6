"""Equivalence-normalised canonical forms: known-equivalent and known-different command pairs."""

from __future__ import annotations

import pytest

from eval.canonical import canonicalize, equivalent

EQUIVALENT = [
    ("ls -la", "ls -al"),
    ("ls -la", "ls -a -l"),
    ("ls -la", "ls --all -l"),
    ("ls -al", "ls -l --all"),
    ("rm -rf build", 'rm -fr  "build"'),
    ("rm -rf build", "rm -R --force build"),
    ('find . -name "*.py"', "find . -name '*.py'"),
    ("find . -name \\*.py", "find . -name '*.py'"),
    ("head -5 notes.txt", "head -n 5 notes.txt"),
    ("head -n5 notes.txt", "head --lines=5 notes.txt"),
    ("tail -f -n 20 log", "tail -n20 -f log"),
    ("tar -czvf a.tgz src", "tar czvf a.tgz src"),
    ("tar -xzf a.tgz -C /tmp", "tar --extract --gzip --file a.tgz --directory /tmp"),
    ("cut -d: -f1 /etc/passwd", "cut -f 1 -d ':' /etc/passwd"),
    ("grep -rin deprecated .", "grep --recursive -n --ignore-case deprecated ."),
    ("ls|grep -v x", "ls | grep --invert-match x"),
    ("echo `date`", "echo $(date)"),
    ("du -sh *", "du -hs *"),
    ("ps -ef", "ps -fe"),
    ("netstat -tulpn", "netstat -plnut"),
    ("a; b", "a\nb"),
    ("ls >out.txt 2>&1", "ls > out.txt 2>& 1"),
    ("sudo rm -rf /tmp/cache", "sudo rm -fr /tmp/cache"),
    ("find . -type f | xargs -0 grep -il foo", "find . -type f | xargs -0 grep -li foo"),
    ("docker   ps  -a", "docker ps -a"),
]

DIFFERENT = [
    ("ls -l", "ls -la"),
    ("rm -rf ./build", "rm -rf /build"),
    ("find . -name *.py", "find . -name '*.py'"),
    ("ls; pwd", "ls pwd"),
    ("grep -e a -e b f", "grep -e b -e a f"),
    ("sort -k2 -k1 f", "sort -k1 -k2 f"),
    ("cp a b", "cp b a"),
    ("echo $HOME", "echo '$HOME'"),
    ("ls ~/x", "ls '~/x'"),
    ("head -n 5 f", "head -n 6 f"),
    ("git commit -am x", "git commit -ma x"),
]


@pytest.mark.parametrize(("first", "second"), EQUIVALENT)
def test_known_equivalent_pairs_match(first: str, second: str) -> None:
    assert equivalent(first, second), (canonicalize(first), canonicalize(second))


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_known_different_pairs_differ(first: str, second: str) -> None:
    assert not equivalent(first, second)


def test_unparsable_commands_fall_back_to_whitespace_comparison() -> None:
    assert canonicalize('echo "open') is None
    assert equivalent('echo  "open', 'echo "open')
    assert not equivalent('echo "open', "echo open")


def test_template_replaces_arguments_by_type_and_keeps_flags() -> None:
    form = canonicalize("find /var/log -name '*.log' -size +10M -mtime 7")
    assert form is not None
    assert form.template == "find File -name Pattern -size Size -mtime Number"
    assert canonicalize("chmod -R 755 dir").template == "chmod -R Permission File"
    assert canonicalize("head -n 5 a.txt").template == canonicalize("head -3 b.txt").template


def test_shapes_list_utilities_in_order_with_nested_and_wrapped_commands() -> None:
    form = canonicalize("sudo echo $(ls -la) | wc -l")
    assert [shape.utility for shape in form.shapes] == ["sudo", "echo", "ls", "wc"]
    assert form.shapes[2].flags == frozenset({"-a", "-l"})


def test_comments_are_dropped_but_reported() -> None:
    form = canonicalize("ls -la  # everything")
    assert form.has_comment and form.text == canonicalize("ls -al").text
