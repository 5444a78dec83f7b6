"""Destructive container, cluster, cloud, database and version-control operations."""

from __future__ import annotations

import re
from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category
from commandrisk.rules.base import BLOCK, WARN, hit, on, parse_args
from commandrisk.walker import Scan, SimpleCommand

INFRA = Category.DESTRUCTIVE_INFRA
PRIVESC = Category.PRIVILEGE_ESCALATION
HOST_MOUNTS = re.compile(r"^(/|/etc|/root|/home|/boot|/dev|/proc|/sys|/var/run/docker\.sock|/run/docker\.sock|"
                         r"/var/lib/docker|/usr|/bin|/lib)/?(:|$)")


@on("docker", "podman", "nerdctl")
def docker(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`docker run --privileged -v /:/host`, mass removal, prune."""
    args = cmd.args
    sub = next((a for a in args if not a.startswith("-")), "")
    joined = " ".join(args)
    if sub in ("run", "create") or args[:2] == ["container", "run"]:
        mounts = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-v", "--volume")]
        mounts += [a.split("=", 1)[1] for a in args if a.startswith(("--volume=", "-v="))]
        mounts += [m.group(1) for m in re.finditer(r"(?:source|src)=([^,\s]+)", joined)]
        if "--privileged" in args or any(HOST_MOUNTS.match(m) for m in mounts) or re.search(
            r"--(pid|ipc|uts|userns)[= ]host|--cap-add[= ](ALL|SYS_ADMIN|SYS_MODULE|SYS_PTRACE)", joined
        ):
            yield hit(cmd, INFRA, "infra.container_escape", BLOCK, 95,
                      "starts a container with host-level access (privileged, host namespaces or host root mounted)",
                      "T1611")
        return
    mass = any(c.name in ("docker", "podman") and any(a.startswith("-") and "q" in a for a in c.args)
               for c in cmd.word_commands())
    if sub in ("rm", "rmi", "kill", "stop") and mass:
        yield hit(cmd, INFRA, "infra.docker_mass_remove", WARN, 45, f"{cmd.name} {sub} on every container/image", "T1485")
    elif re.search(r"\b(system|volume|image|container|network|builder)\s+prune\b", joined):
        yield _docker_prune(cmd, sub)
    elif args[:2] in (["volume", "rm"], ["volume", "remove"]):
        yield hit(cmd, INFRA, "infra.docker_volume_rm", WARN, 45, "deletes container volumes and their data", "T1485")


def _docker_prune(cmd: SimpleCommand, sub: str) -> Hit:
    """Pruning volumes without confirmation loses data for good (block); images and caches can be rebuilt (warn)."""
    parsed = parse_args(cmd.args, frozenset({"--filter"}))
    forced = parsed.has("f", "--force")
    volumes = sub == "volume" or parsed.has("", "--volumes")
    if forced and volumes:
        return hit(cmd, INFRA, "infra.docker_prune_volumes", BLOCK, 85,
                   f"{cmd.name} prune deletes volumes and their data without asking", "T1485")
    scope = "every unused image, container and network" if parsed.has("a", "--all") else "unused data"
    return hit(cmd, INFRA, "infra.docker_prune", WARN, 45 if forced else 40, f"{cmd.name} prune deletes {scope}",
               "T1485")


CLUSTER_WIDE = frozenset({"namespace", "namespaces", "ns", "node", "nodes", "no", "pv", "persistentvolume",
                          "persistentvolumes", "crd", "crds", "customresourcedefinition", "clusterrole",
                          "clusterrolebinding", "storageclass", "sc"})


@on("kubectl", "oc", "k")
def kubectl(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`kubectl delete ns prod`, `kubectl delete pods --all -A`."""
    args = cmd.args
    joined = " ".join(args)
    if "delete" not in args:
        if args[:1] == ["drain"]:
            yield hit(cmd, INFRA, "infra.kubectl_drain", WARN, 45, "evicts every pod from a node", "T1489")
        elif args[:1] in (["scale"], ["patch"]) and re.search(r"replicas\W*[:=]?\W*0\b", joined):
            yield hit(cmd, INFRA, "infra.kubectl_scale_to_zero", WARN, 55, "scales workloads down to zero", "T1489")
        elif "cluster-admin" in joined and args[:2] in (["create", "clusterrolebinding"], ["create", "rolebinding"]):
            yield hit(cmd, PRIVESC, "privesc.cluster_admin_binding", BLOCK, 90, "grants cluster-admin to an account",
                      "T1098")
        return
    rest = args[args.index("delete") + 1:]
    kinds = {k for a in rest if not a.startswith("-") for k in a.lower().split("/")[0].split(",")}
    if "--all" in rest or "-A" in rest or "--all-namespaces" in rest or kinds & CLUSTER_WIDE:
        yield hit(cmd, INFRA, "infra.kubectl_delete_wide", BLOCK, 90, "deletes cluster resources in bulk", "T1485")
    else:
        yield hit(cmd, INFRA, "infra.kubectl_delete", WARN, 45, "deletes cluster resources", "T1485")


@on("helm")
def helm(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Uninstalling a release deletes its resources."""
    if cmd.args[:1] in (["uninstall"], ["delete"], ["del"]):
        yield hit(cmd, INFRA, "infra.helm_uninstall", WARN, 45, "uninstalls a Helm release", "T1485")
    elif cmd.args[:1] == ["rollback"]:
        yield hit(cmd, INFRA, "infra.helm_rollback", WARN, 45, "rolls a Helm release back", "T1485")
    elif cmd.args[:1] in (["install"], ["upgrade"]) and any("://" in a for a in cmd.args):
        yield hit(cmd, Category.REMOTE_CODE_EXECUTION, "rce.helm_remote_chart", WARN, 50,
                  "installs a chart straight from a URL", "T1105")


@on("terraform", "tofu", "terragrunt", "pulumi", "cdk", "cdktf")
def iac_destroy(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`terraform destroy`, `terraform apply -destroy`, `pulumi destroy`."""
    args = cmd.args
    if "destroy" in args or "-destroy" in args or "--destroy" in args:
        yield hit(cmd, INFRA, "infra.iac_destroy", BLOCK, 90, f"{cmd.name} destroys the managed infrastructure", "T1485")
    elif "apply" in args and any(a in ("-auto-approve", "--auto-approve", "--yes", "-y") for a in args):
        yield hit(cmd, INFRA, "infra.iac_apply_unreviewed", WARN, 55, f"{cmd.name} changes infrastructure without a "
                  "reviewed plan", "T1485")
    elif args[:2] == ["state", "rm"] or args[:1] == ["taint"]:
        yield hit(cmd, INFRA, "infra.iac_state_edit", WARN, 45, f"{cmd.name} edits infrastructure state", "T1485")


@on("git")
def git(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Force pushes, remote branch deletion, hard resets, clean -x, history rewrites."""
    parsed = parse_args(cmd.args, frozenset({"-C", "-c", "--git-dir", "--work-tree"}))
    sub = parsed.positionals[0] if parsed.positionals else ""
    options = [o for o in cmd.args if o.startswith("-")]
    refspecs = parsed.positionals[1:]
    if sub == "push":
        if any(o in ("--force", "-f", "--mirror") or (o.startswith("-") and not o.startswith("--") and "f" in o)
               for o in options) or any(r.startswith("+") for r in refspecs):
            yield hit(cmd, INFRA, "infra.git_force_push", BLOCK, 85, "force-pushes, overwriting remote history", "T1485")
        elif any(o.startswith("--force-with-lease") or o.startswith("--force-if-includes") for o in options):
            yield hit(cmd, INFRA, "infra.git_force_push_lease", WARN, 45, "force-pushes (with lease)", "T1485")
        elif "--delete" in options or "-d" in options or any(r.startswith(":") for r in refspecs):
            yield hit(cmd, INFRA, "infra.git_delete_remote_branch", WARN, 45, "deletes a remote branch", "T1485")
    elif sub == "reset" and "--hard" in options:
        yield hit(cmd, INFRA, "infra.git_reset_hard", WARN, 40, "discards uncommitted work (reset --hard)", "T1485")
    elif sub == "clean" and any("f" in o for o in options if not o.startswith("--")) and any(
        "x" in o or "d" in o for o in options if not o.startswith("--")
    ):
        yield hit(cmd, INFRA, "infra.git_clean", WARN, 40, "deletes untracked (and ignored) files", "T1485")
    elif sub in ("filter-branch", "filter-repo"):
        yield hit(cmd, INFRA, "infra.git_rewrite_history", WARN, 45, "rewrites repository history", "T1485")


AWS_BLOCK = re.compile(r"^(terminate-instances|delete-db-(instance|cluster)|delete-table|delete-stack|delete-bucket|"
                       r"delete-cluster|delete-file-system|delete-vpc|delete-user|delete-role|delete-key|"
                       r"schedule-key-deletion|delete-secret|delete-hosted-zone|delete-repository|delete-function)$")


@on("aws")
def aws(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`aws s3 rm --recursive`, `aws s3 rb --force`, `aws ec2 terminate-instances`, `... delete-*`."""
    parsed = parse_args(cmd.args, frozenset({"--profile", "--region", "--output", "--query", "--endpoint-url"}))
    words = parsed.positionals
    if words[:2] == ["s3", "rm"] and parsed.has("", "--recursive"):
        yield hit(cmd, INFRA, "infra.aws_s3_recursive_delete", BLOCK, 90, "deletes every object under an S3 prefix", "T1485")
    elif words[:2] == ["s3", "rb"]:
        verdict = BLOCK if parsed.has("", "--force") else WARN
        yield hit(cmd, INFRA, "infra.aws_s3_remove_bucket", verdict, 85, "removes an S3 bucket", "T1485")
    elif words[:2] == ["s3", "sync"] and parsed.has("", "--delete"):
        yield hit(cmd, INFRA, "infra.aws_s3_sync_delete", WARN, 50, "s3 sync --delete removes destination objects", "T1485")
    elif len(words) >= 2 and AWS_BLOCK.match(words[1]):
        yield hit(cmd, INFRA, "infra.aws_destroy", BLOCK, 90, f"aws {words[0]} {words[1]} destroys cloud resources", "T1485")
    elif len(words) >= 2 and words[1].startswith(("delete-", "deregister-", "remove-")):
        yield hit(cmd, INFRA, "infra.aws_delete", WARN, 50, f"aws {words[0]} {words[1]}", "T1485")
    elif len(words) >= 2 and words[0] == "iam" and words[1] in ("attach-user-policy", "attach-role-policy",
                                                                 "create-access-key", "put-user-policy") and \
            "AdministratorAccess" in " ".join(cmd.args):
        yield hit(cmd, Category.PRIVILEGE_ESCALATION, "privesc.aws_admin_policy", BLOCK, 85,
                  "grants AdministratorAccess", "T1098.003")


@on("gsutil", "gcloud", "az", "doctl", "rclone", "s3cmd")
def other_clouds(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Recursive bucket deletion, project/resource-group deletion."""
    args = cmd.args
    joined = " ".join(args)
    recursive = bool(re.search(r"(^|\s)-\w*r\w*\b|--recursive", joined))
    if cmd.name == "gsutil" and (("rm" in args and recursive) or "rb" in args):
        yield hit(cmd, INFRA, "infra.gcs_delete", BLOCK, 90, "deletes a Cloud Storage bucket or prefix", "T1485")
    elif cmd.name == "gcloud" and re.search(r"\bprojects\s+delete\b|\bstorage\s+rm\b.*--recursive", joined):
        yield hit(cmd, INFRA, "infra.gcloud_destroy", BLOCK, 90, "deletes a GCP project or storage tree", "T1485")
    elif cmd.name == "az" and re.search(r"\bgroup\s+delete\b", joined):
        yield hit(cmd, INFRA, "infra.azure_group_delete", BLOCK, 90, "deletes an Azure resource group", "T1485")
    elif cmd.name in ("rclone", "s3cmd") and args[:1] in (["purge"], ["delete"], ["rb"], ["del"]):
        yield hit(cmd, INFRA, f"infra.{cmd.name}_delete", WARN, 50, f"{cmd.name} deletes remote data", "T1485")
    elif " delete" in f" {joined}" and cmd.name in ("gcloud", "az", "doctl"):
        yield hit(cmd, INFRA, "infra.cloud_delete", WARN, 50, f"{cmd.name} deletes cloud resources", "T1485")


SQL_DESTROY = re.compile(r"\b(drop\s+(database|schema|table|keyspace)|truncate\s+(table\s+)?\w)", re.I)
SQL_DELETE_ALL = re.compile(r"\bdelete\s+from\s+[\w.\"`]+\s*(;|$)", re.I)


@on("mysql", "mariadb", "psql", "sqlite3", "sqlcmd", "clickhouse-client", "cqlsh", "mongo", "mongosh",
    "redis-cli", "dropdb", "mysqladmin")
def databases(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`psql -c "DROP DATABASE x"`, `redis-cli FLUSHALL`, `dropdb x`, `mongo --eval db.dropDatabase()`."""
    joined = " ".join(cmd.args) + " " + (cmd.stdin_text or "")
    upstream_sql = " ".join(" ".join(c.args) for c in cmd.upstream() if c.name in ("echo", "printf"))
    text = re.sub(r"'[^']*'", "''", joined + " " + upstream_sql)
    if cmd.name == "dropdb" or (cmd.name == "mysqladmin" and "drop" in cmd.args):
        yield hit(cmd, INFRA, "infra.drop_database", BLOCK, 90, "drops a database", "T1485")
    elif SQL_DESTROY.search(text) or re.search(r"\bflushall\b|\bflushdb\b|dropDatabase\(\)", text, re.I):
        yield hit(cmd, INFRA, "infra.drop_database", BLOCK, 90, "drops or empties a database", "T1485")
    elif SQL_DELETE_ALL.search(text):
        yield hit(cmd, INFRA, "infra.delete_all_rows", WARN, 50, "deletes every row of a table", "T1485")
