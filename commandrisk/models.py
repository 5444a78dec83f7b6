"""The guard's public result types: verdicts, categories, findings and assessments."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Verdict(str, Enum):
    """What the caller should do with a command, from least to most severe."""

    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        """Return 0 for allow, 1 for warn, 2 for block (also the CLI exit status)."""
        return {"allow": 0, "warn": 1, "block": 2}[self.value]


class Category(str, Enum):
    """Risk categories; each maps to one MITRE ATT&CK technique (see `TECHNIQUES`)."""

    DESTRUCTIVE_FS = "destructive_filesystem"
    DISK_WRITE = "disk_device_write"
    PERMISSIONS = "permissions_ownership"
    PRIVILEGE_ESCALATION = "privilege_escalation"
    REMOTE_CODE_EXECUTION = "remote_code_execution"
    REVERSE_SHELL = "reverse_shell"
    CREDENTIAL_ACCESS = "credential_access_exfiltration"
    PERSISTENCE = "persistence"
    DEFENSE_EVASION = "defense_evasion"
    DENIAL_OF_SERVICE = "denial_of_service"
    SYSTEM_TAMPERING = "system_tampering"
    DESTRUCTIVE_INFRA = "destructive_container_cloud_vcs"
    OBFUSCATION = "obfuscation"
    PROMPT_INJECTION = "prompt_injection"
    UNKNOWN_PROGRAM = "unknown_program"
    UNTRUSTED_EXECUTION = "untrusted_execution"
    PACKAGE_INSTALL = "package_install"
    OUTSIDE_WORKSPACE = "outside_workspace"
    UNPARSED = "unparsed"
    POLICY = "policy"


TECHNIQUES: dict[Category, str] = {
    Category.DESTRUCTIVE_FS: "T1485",
    Category.DISK_WRITE: "T1561",
    Category.PERMISSIONS: "T1222",
    Category.PRIVILEGE_ESCALATION: "T1548",
    Category.REMOTE_CODE_EXECUTION: "T1105",
    Category.REVERSE_SHELL: "T1059.004",
    Category.CREDENTIAL_ACCESS: "T1552",
    Category.PERSISTENCE: "T1053",
    Category.DEFENSE_EVASION: "T1070",
    Category.DENIAL_OF_SERVICE: "T1499",
    Category.SYSTEM_TAMPERING: "T1565",
    Category.DESTRUCTIVE_INFRA: "T1485",
    Category.OBFUSCATION: "T1027",
    Category.PROMPT_INJECTION: "T1059",
    Category.UNKNOWN_PROGRAM: "T1059",
    Category.UNTRUSTED_EXECUTION: "T1204.002",
    Category.PACKAGE_INSTALL: "T1195.002",
    Category.OUTSIDE_WORKSPACE: "T1565.001",
    Category.UNPARSED: "T1027",
    Category.POLICY: "T1059",
}


class Finding(BaseModel):
    """One reason behind a verdict, tied to a rule and a place in the command."""

    model_config = ConfigDict(frozen=True)

    category: Category
    technique: str = Field(description="MITRE ATT&CK technique id, e.g. T1485")
    rule_id: str
    snippet: str = Field(description="the part of the command the rule matched")
    span: tuple[int, int] | None = Field(default=None, description="byte offsets in the input")
    message: str
    verdict: Verdict


class Assessment(BaseModel):
    """The guard's judgement of one command or request."""

    command: str
    verdict: Verdict
    risk: int = Field(ge=0, le=100)
    findings: list[Finding] = Field(default_factory=list)
    explanation: str


class Context(BaseModel):
    """Where a command would run: its working directory, the workspace it may touch, the user's home."""

    model_config = ConfigDict(frozen=True)

    cwd: str | None = Field(default=None, description="absolute working directory; None = the workspace root")
    workspace_root: str | None = Field(
        default=None, description="absolute directory the command may modify; None = the policy's or the cwd"
    )
    home: str | None = Field(default=None, description="absolute home directory; None = symbolic `~`")
