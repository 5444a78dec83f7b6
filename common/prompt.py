"""The one definition of the system prompt, the chat format and the refusal form.

Training data, evaluation, inference and the model card all import from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SYSTEM_PROMPT = (
    "You translate a plain-language request into one safe Bash command. "
    "Reply with the command only: no prose, no code fences. "
    "If the request is destructive, malicious or unsafe, reply with a single line "
    "'# refused: <short reason>' instead."
)

REFUSAL_PREFIX = "# refused:"

CHAT_TEMPLATE_NAME = "qwen_25"

# V2's completion rows: the instruction, then the command, in one plain string.
V2_INSTRUCTION_PREFIX = "Instruction: "
V2_COMMAND_PREFIX = "Command: "


def chat_messages(request: str) -> list[dict[str, str]]:
    """Return the system and user messages a model sees for one request."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": request},
    ]


def training_row(request: str, command: str) -> dict[str, list[dict[str, str]]]:
    """Return one chat-format training row: system, user and assistant messages."""
    return {"messages": [*chat_messages(request), {"role": "assistant", "content": command}]}


def plain_text_row(request: str, command: str) -> str:
    """Return the plain-text rendering V2 trained on (`type: completion`, field `text`)."""
    return f"{V2_INSTRUCTION_PREFIX}{request}\n{V2_COMMAND_PREFIX}{command}"


def refusal(reason: str) -> str:
    """Return the refusal line the model is trained and expected to emit."""
    return f"{REFUSAL_PREFIX} {reason.strip()}"


def is_refusal(text: str) -> bool:
    """Tell whether a model output is a refusal in the trained form."""
    return text.strip().lower().startswith(REFUSAL_PREFIX)


def chat_template() -> str:
    """Return axolotl's Jinja chat template that training applies (`chat_template: qwen_25`)."""
    from axolotl.utils.chat_templates import get_chat_template

    return get_chat_template(CHAT_TEMPLATE_NAME)


def request_command(row: dict[str, Any], path: Path, number: int) -> tuple[str, str]:
    """Return (request, command) of a chat row (`messages`) or an NL2Bash row (`nl`, `bash`)."""
    if "messages" not in row:
        for field_name in ("nl", "bash"):
            if not isinstance(row.get(field_name), str):
                raise ValueError(f"{path}:{number}: field {field_name!r} missing or not a string (or give 'messages')")
        return row["nl"], row["bash"]
    messages = row["messages"]
    if not isinstance(messages, list):
        raise ValueError(f"{path}:{number}: field 'messages' is not a list")
    found: dict[str, str] = {}
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise ValueError(f"{path}:{number}: field 'messages[{position}].content' missing or not a string")
        found.setdefault(str(message.get("role")), message["content"])
    for role in ("user", "assistant"):
        if role not in found:
            raise ValueError(f"{path}:{number}: field 'messages' has no {role!r} message")
    return found["user"], found["assistant"]
