"""The Space's chat input: checks of what a visitor sends, and the prompt built from it.

A request goes: ``check_message`` (reject what cannot be a prompt) -> ``build_chat_prompt``
(the adapter's template: alpaca or the tokenizer's chat template; oldest turns dropped, or the
message trimmed, to fit the context window) -> :func:`a3duck.generation.stream_generate`.
Nothing here knows about Gradio; errors are :class:`a3duck.errors.InputError`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from a3duck.errors import InputError
from a3duck.prompts import Template

MAX_INPUT_CHARS = 20_000  # longer messages are refused before tokenising (cheap DoS guard)
ALLOWED_CONTROLS = {"\n", "\t", "\r"}


def check_message(text, what: str = "message", max_chars: int = MAX_INPUT_CHARS) -> str:
    """Return ``text`` without stray control characters; InputError for what cannot be used."""
    if not isinstance(text, str):
        raise InputError(f"the {what} must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the {what} is not valid UTF-8 text (it contains a lone surrogate); "
                         "paste it again as plain text") from None
    if len(text) > max_chars:
        raise InputError(f"the {what} is too long: {len(text):,} characters, the limit is "
                         f"{max_chars:,}. Shorten it and try again.")
    # Control characters (NUL, escape sequences, ...) carry no meaning for the model.
    text = "".join(c for c in text
                   if c in ALLOWED_CONTROLS or unicodedata.category(c) not in ("Cc", "Cs"))
    if not text.strip():
        raise InputError(f"the {what} is empty: type some text first")
    return text


def message_text(content) -> str:
    """The text of a Gradio chat message (a string, or openai-style content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return ""


@dataclass
class ChatPrompt:
    """The prompt to send, its token ids and what was cut to fit (for the visible warning)."""

    text: str
    input_ids: list[int]
    dropped_turns: int = 0
    trimmed_tokens: int = 0

    @property
    def warning(self) -> str | None:
        parts = []
        if self.dropped_turns:
            parts.append(f"{self.dropped_turns} earlier turn(s) left out")
        if self.trimmed_tokens:
            parts.append(f"the first {self.trimmed_tokens} token(s) of your message cut")
        if not parts:
            return None
        return "Input too long for the context window: " + " and ".join(parts) + "."


def pair_history(history: Sequence[dict]) -> list[tuple[str, str]]:
    """(user, assistant) pairs from Gradio's openai-style history; unanswered turns are skipped."""
    pairs, user = [], None
    for msg in history or []:
        role, text = msg.get("role"), message_text(msg.get("content"))
        if role == "user":
            user = text
        elif role == "assistant" and user is not None:
            pairs.append((user, text))
            user = None
    return pairs


def build_chat_prompt(template: Template, tokenizer, message: str, history=(),
                      budget: int = 4096) -> ChatPrompt:
    """Render earlier turns + the new message with ``template`` within ``budget`` tokens.

    The whole conversation is rendered exactly as the adapter was trained (the template's
    ``render_messages``: alpaca one instruction per turn, chat the tokenizer's chat template).
    Oldest turns go first; if the message alone is too long, its beginning is cut.
    """
    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=template.add_special_tokens)["input_ids"]

    pairs = pair_history(history)
    dropped = 0
    while True:
        turns = [{"role": role, "content": text} for pair in pairs[dropped:]
                 for role, text in zip(("user", "assistant"), pair)]
        text = template.render_messages([*turns, {"role": "user", "content": message}])
        ids = encode(text)
        if len(ids) <= budget or dropped == len(pairs):
            break
        dropped += 1
    if len(ids) <= budget:
        return ChatPrompt(text, ids, dropped_turns=dropped)
    frame = len(encode(template.render("")))
    msg_ids = tokenizer(message, add_special_tokens=False)["input_ids"]
    keep = max(1, budget - frame - 8)  # 8 tokens of slack: re-tokenising can merge differently
    if frame + 1 > budget:
        raise InputError(f"the context window ({budget} tokens) is too small for the template")
    trimmed = tokenizer.decode(msg_ids[-keep:], skip_special_tokens=True)
    text = template.render(trimmed)
    ids = encode(text)[-budget:]
    return ChatPrompt(text, ids, dropped_turns=dropped,
                      trimmed_tokens=max(0, len(msg_ids) - keep))
