"""Property tests: `assess` never raises and always returns a verdict, whatever the input."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commandrisk import Assessment, Verdict, assess, assess_prompt

SHELL_ALPHABET = st.sampled_from(list("abrmf -/~.*$(){}[]<>|&;'\"`\\\n\t=:,!#%@^+0123456789") + ["$IFS", "${", "$'\\x", "<<", "<(", "$((", "rm", "-rf", "curl", "sh -c", "eval", "base64 -d"])
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(result: Assessment) -> None:
    assert isinstance(result.verdict, Verdict)
    assert 0 <= result.risk <= 100
    assert "\n" not in result.explanation


@FAST
@given(st.text(max_size=300))
def test_any_text_gets_a_verdict(text: str) -> None:
    _valid(assess(text))


@FAST
@given(st.lists(SHELL_ALPHABET, max_size=120).map("".join))
def test_shell_like_soup_gets_a_verdict(text: str) -> None:
    _valid(assess(text))


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=400), st.sampled_from(["$(", "`", "<(", "\"$(", "${x:-", "$(("]))
def test_deeply_nested_substitutions(depth: int, opener: str) -> None:
    closer = {"$(": ")", "`": "`", "<(": ")", "\"$(": ")\"", "${x:-": "}", "$((": "))"}[opener]
    _valid(assess(opener * depth + "rm -rf /" + closer * depth))
    _valid(assess(opener * depth + "rm -rf /"))


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(["'", '"', "`", "$(", "<<EOF\n", "{", "(", "[[ "]), st.integers(min_value=1, max_value=50))
def test_unbalanced_quotes_and_brackets(opener: str, repeat: int) -> None:
    result = assess(("rm -rf / " + opener) * repeat)
    _valid(result)
    assert result.verdict is not Verdict.ALLOW


@settings(max_examples=4, deadline=None)
@given(st.sampled_from(["echo hi; ", "x=$(ls) ", "a | b && ", "'unclosed ", "$(( ", "\0\x7f\udc80 "]))
def test_inputs_up_to_100_kb(chunk: str) -> None:
    text = (chunk * (100_000 // len(chunk) + 1))[:100_000]
    _valid(assess(text))


@FAST
@given(st.text(max_size=400))
def test_assess_prompt_never_raises(text: str) -> None:
    _valid(assess_prompt(text))
