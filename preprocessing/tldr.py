"""Fill tldr `{{placeholders}}` with realistic values, by these rules, applied in order:

1. Option alternatives `{{[-v|--verbose]}}` or `{{[ls|list]}}`: take the last (long) form.
2. Lists `{{path/to/file1 path/to/file2 ...}}`: drop the `...` and fill each item.
3. Concrete values are kept verbatim: numbers, IPs, URLs, domains, `user@host`, `key=value`,
   file names with an extension (`{{image.png}}`), absolute paths other than `/path/to/...`,
   short device-like names (`eth0`, `wlan0`, `sda1`) and capitalised words (`Hello`).
4. Block devices: `/dev/sdX` -> `/dev/sdb`, `/dev/sdXY` or `/dev/sdXN` -> `/dev/sdb1`.
5. Paths `path/to/NAME` (or `/path/to/NAME`): a name with an extension is kept (`file.pdf`);
   a known name maps by `PATH_NAMES` (`file` -> `notes.txt`, `directory` -> `projects`);
   any other name is kept as a relative path (`path/to/source` -> `source`). When the template
   adds its own extension (`{{path/to/file}}.scap`), the mapped name loses its own (`notes.scap`).
6. Named values map by `VALUE_NAMES` (`username` -> `alice`, `port` -> `8080`), after dropping a
   trailing digit (re-appended) and the `_name`/`_id` suffixes (`bucket_name` -> `mybucket`).
7. Anything else cannot be filled credibly (for example `{{subcommand}}`): the row is dropped
   with a reason naming the placeholder.
"""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?[a-zA-Z%]{0,3}$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d+)?(:\d+)?$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_DOMAIN = re.compile(r"^([a-z0-9-]+\.)+(com|org|net|io|dev|local|lan)(:\d+)?$")
_FILENAME = re.compile(r"^[\w.-]+\.[A-Za-z0-9]{1,5}$")
_CONCRETE = re.compile(r"^[\w.-]+@[\w.-]+$|^[\w.-]+=[^\s]+$|^[a-z]{2,4}\d+$|^[A-Z][a-z]+$")
_DEVICE = {"/dev/sdX": "/dev/sdb", "/dev/sdXY": "/dev/sdb1", "/dev/sdXN": "/dev/sdb1"}

PATH_NAMES = {
    "file": "notes.txt",
    "file_or_directory": "notes.txt",
    "directory": "projects",
    "dir": "projects",
    "folder": "projects",
    "": "projects",
    "binary": "./app",
    "executable": "./app",
    "program": "./app",
    "script": "script.sh",
    "archive": "backup.tar.gz",
    "image": "photo.png",
    "input": "input.txt",
    "input_file": "input.txt",
    "output": "output.txt",
    "output_file": "output.txt",
    "output_directory": "out",
    "source": "src",
    "destination": "backup",
    "target": "backup",
    "mount_point": "/mnt/data",
    "mountpoint": "/mnt/data",
}

VALUE_NAMES = {
    "command": "ls",
    "username": "alice",
    "user": "alice",
    "owner": "alice",
    "password": "s3cret",
    "name": "demo",
    "value": "42",
    "port": "8080",
    "host": "server.example.com",
    "hostname": "server.example.com",
    "remote_host": "server.example.com",
    "server": "server.example.com",
    "domain": "example.com",
    "url": "https://example.com",
    "ip_address": "192.168.1.10",
    "ip": "192.168.1.10",
    "address": "192.168.1.10",
    "pattern": "error",
    "search_pattern": "error",
    "regex": "error",
    "keyword": "error",
    "query": "error",
    "string": "hello",
    "text": "hello",
    "message": "update",
    "version": "1.2.3",
    "tag": "v1.2.3",
    "image": "nginx",
    "image:tag": "nginx:1.27",
    "branch": "feature-login",
    "package": "jq",
    "unit": "nginx.service",
    "service": "nginx",
    "number": "5",
    "n": "5",
    "count": "5",
    "seconds": "30",
    "pid": "1234",
    "interface": "eth0",
    "group": "developers",
    "namespace": "default",
    "remote": "origin",
    "variable": "HOME",
    "width": "640",
    "height": "480",
    "revision": "HEAD",
    "commit": "HEAD",
    "filename": "notes.txt",
    "key": "api_key",
    "module": "json",
    "process": "nginx",
    "signal": "TERM",
    "email": "alice@example.com",
    "id": "42",
    "target": "example.com",
    "container": "web",
    "project": "demo",
    "organization": "acme",
    "search_term": "error",
    "format": "json",
    "input_file": "input.txt",
    "output_file": "output.txt",
}


class TldrFillError(ValueError):
    """A placeholder with no credible fill rule; the row is dropped with this reason."""


def fill_placeholders(command: str) -> str:
    """Return the command with every `{{placeholder}}` filled; raise `TldrFillError` if one cannot be."""
    return PLACEHOLDER.sub(lambda match: _fill_match(match, command), command)


def _fill_match(match: re.Match[str], command: str) -> str:
    value = _fill(match.group(1))
    if command[match.end() : match.end() + 1] == "." and "." in value.lstrip("./"):
        return value.rsplit(".", 2 if value.endswith(".tar.gz") else 1)[0]
    return value


def _fill(body: str) -> str:
    text = body.strip()
    if text.startswith("[") and text.endswith("]") and "|" in text:
        return text[1:-1].split("|")[-1]
    items = text.split()
    if len(items) > 1:
        return " ".join(_fill_item(item) for item in items if item != "...")
    return _fill_item(text)


def _fill_item(text: str) -> str:
    if text in _DEVICE:
        return _DEVICE[text]
    if any(rx.match(text) for rx in (_NUMBER, _IP, _URL, _DOMAIN, _CONCRETE)):
        return text
    for prefix, root in (("/path/to/", "/srv/"), ("path/to/", ""), ("/path/to", "/srv"), ("path/to", "")):
        if text.startswith(prefix):
            return root + _fill_path(text[len(prefix):].strip("/"))
    if _FILENAME.match(text) or (text.startswith("/") and "path/to" not in text and " " not in text):
        return text
    return _fill_name(text)


def _fill_path(name: str) -> str:
    if _FILENAME.match(name) or "/" in name:
        return name
    stem, digit = _split_digit(name)
    mapped = PATH_NAMES.get(stem)
    if mapped is None:
        return name
    if not digit:
        return mapped
    base, dot, ext = mapped.partition(".")
    return f"{base}{digit}{dot}{ext}"


def _fill_name(text: str) -> str:
    stem, digit = _split_digit(text.lower())
    if stem in VALUE_NAMES:
        return VALUE_NAMES[stem] + digit
    for suffix, make in (("_name", lambda base: "my" + base.replace("_", "")), ("_id", lambda base: "42")):
        if stem.endswith(suffix) and re.fullmatch(r"[a-z_]+", stem):
            base = stem[: -len(suffix)]
            return (VALUE_NAMES.get(base) if suffix == "_name" and base in VALUE_NAMES else make(base)) + digit
    raise TldrFillError(f"no fill rule for placeholder {{{{{text}}}}}")


def _split_digit(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"(.*?)(\d*)", text)
    return (match.group(1), match.group(2)) if match else (text, "")
