"""CommandRisk: a parser-based runtime guard for shell commands and the requests that produce them.

>>> from commandrisk import assess
>>> assess("rm -rf /").verdict.value
'block'
"""

from commandrisk.context import default_context
from commandrisk.engine import assess
from commandrisk.models import TECHNIQUES, Assessment, Category, Context, Finding, Verdict
from commandrisk.policy import Policy, PolicyError, load_policy, parse_policy
from commandrisk.prompt import assess_prompt

__all__ = [
    "TECHNIQUES",
    "Assessment",
    "Category",
    "Context",
    "Finding",
    "Policy",
    "PolicyError",
    "Verdict",
    "assess",
    "assess_prompt",
    "default_context",
    "load_policy",
    "parse_policy",
]
