"""Prompt templates: the one list of template names, the Alpaca template, the chat template.

Platypus trained with alpaca-lora's ``templates/alpaca.json`` (``Prompter("alpaca")`` in
Platypus' ``finetune.py``): one form with an ``### Input:`` block, one without. The strings below
are that template verbatim; the answer is appended directly after ``### Response:\\n``.

``chat`` renders with the tokenizer's own chat template (``apply_chat_template``). ``auto`` (the
default of a recipe) is resolved before training by :func:`resolve_template_name` and never
recorded: an adapter's training config holds ``alpaca`` or ``chat``.

Both templates offer the same interface: ``render`` (one instruction), ``render_messages`` (a
conversation ending with a user turn, ready for generation), ``pieces`` (a conversation ending
with an assistant turn, split into (text, is_assistant) pieces for training), ``stop_markers``
and ``response_of``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from a3duck.errors import ConfigError

ALPACA_NAME, CHAT_NAME, AUTO_NAME = "alpaca", "chat", "auto"
# Every value `prompt_template` accepts (config_checks validates it before any model work):
# the named templates and ``auto``, which picks one at run time.
TEMPLATE_NAMES: tuple[str, ...] = (AUTO_NAME, ALPACA_NAME, CHAT_NAME)
ROLES = ("system", "user", "assistant")

Message = dict  # {"role": one of ROLES, "content": str}


def user_text(instruction: str, input: str | None = None) -> str:
    """An instruction row as one user turn: the instruction, then its input (if any)."""
    return f"{instruction}\n\n{input}" if input else instruction


@dataclass(frozen=True)
class Template:
    """An instruction template: prompt forms with and without input, and the response marker."""

    name: str
    prompt_input: str
    prompt_no_input: str
    response_split: str
    # Where a generated answer has ended: the model starting the next turn.
    stop_markers: tuple[str, ...]
    add_special_tokens: bool = True  # the prompt text is tokenised with BOS (Llama)

    def render(self, instruction: str, input: str | None = None) -> str:
        """The prompt for one example (everything the loss ignores when train_on_inputs=False)."""
        if input:
            return self.prompt_input.format(instruction=instruction, input=input)
        return self.prompt_no_input.format(instruction=instruction)

    def pieces(self, messages: Sequence[Message]) -> list[tuple[str, bool]]:
        """A conversation as (text, is_assistant) pieces: a system turn leads the first prompt,
        each user turn is rendered as an instruction, answers are separated by a blank line."""
        out: list[tuple[str, bool]] = []
        pending = ""
        for msg in messages:
            if msg["role"] == "system":
                pending += msg["content"].strip() + "\n\n"
            elif msg["role"] == "user":
                pending += ("\n\n" if out else "") + self.render(msg["content"].strip())
            else:
                out += [(pending, False), (msg["content"], True)]
                pending = ""
        if pending:
            out.append((pending, False))
        return out

    def render_messages(self, messages: Sequence[Message]) -> str:
        """The prompt text for a conversation ending with a user turn (earlier answers included)."""
        return "".join(text.strip() if answer else text
                       for text, answer in self.pieces(messages))

    def response_of(self, generated: str) -> str:
        """The answer part of a full generated text (after the response marker, before a stop)."""
        text = generated.split(self.response_split, 1)[-1]
        return truncate_at_stop(text, self.stop_markers).strip()


ALPACA = Template(
    name=ALPACA_NAME,
    prompt_input=(
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
    ),
    prompt_no_input=(
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    ),
    response_split="### Response:",
    stop_markers=("### Instruction", "### Input:", "### Response:"),
)

TEMPLATES: dict[str, Template] = {ALPACA.name: ALPACA}


class ChatTemplate:
    """The tokenizer's own chat template (``apply_chat_template``), bound to that tokenizer."""

    name = CHAT_NAME
    stop_markers: tuple[str, ...] = ()  # the end-of-turn token is the tokenizer's EOS
    add_special_tokens = False  # the template writes its own BOS, if the model wants one

    def __init__(self, tokenizer):
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"prompt_template {CHAT_NAME!r} needs a tokenizer with a chat template, and "
                f"{getattr(tokenizer, 'name_or_path', 'this tokenizer') or 'this tokenizer'} has "
                f"none; use one of: {', '.join(sorted(TEMPLATES))}")
        self.tokenizer = tokenizer

    def _text(self, messages: Sequence[Message], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages], tokenize=False,
            add_generation_prompt=generation_prompt)

    def render(self, instruction: str, input: str | None = None) -> str:
        return self.render_messages([{"role": "user", "content": user_text(instruction, input)}])

    def render_messages(self, messages: Sequence[Message]) -> str:
        return self._text(messages, generation_prompt=True)

    def pieces(self, messages: Sequence[Message]) -> list[tuple[str, bool]]:
        """Each assistant turn is what its render adds to the render of the turns before it
        with the generation prompt; the template must extend each render (ConfigError if not)."""
        out: list[tuple[str, bool]] = []
        done = ""
        for i, msg in enumerate(messages):
            if msg["role"] != "assistant":
                continue
            prompt = self._text(messages[:i], generation_prompt=True)
            full = self._text(messages[: i + 1], generation_prompt=False)
            if not (prompt.startswith(done) and full.startswith(prompt)):
                raise ConfigError(
                    "prompt_template chat: this tokenizer's chat template renders earlier turns "
                    "differently once a later turn is added; use prompt_template: alpaca or "
                    "one assistant turn per row")
            out += [(prompt[len(done):], False), (full[len(prompt):], True)]
            done = full
        return out

    def response_of(self, generated: str) -> str:
        return truncate_at_stop(generated, self.stop_markers).strip()


def get_template(name: str, tokenizer=None) -> Template | ChatTemplate:
    """Look a template up by name (``chat`` needs the tokenizer); unknown names list the known."""
    if name == CHAT_NAME:
        if tokenizer is None:
            raise ValueError("the chat template needs the tokenizer")
        return ChatTemplate(tokenizer)
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(
            f"unknown prompt template {name!r}; known: {', '.join(sorted(TEMPLATES))}, "
            f"{CHAT_NAME}"
        ) from None


def resolve_template_name(name: str, conversational: bool, tokenizer) -> str:
    """``auto`` -> ``chat`` for conversational data when the tokenizer has a chat template,
    else ``alpaca``; other names are returned as they are (``chat`` is checked here)."""
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if name == AUTO_NAME:
        return CHAT_NAME if conversational and has_chat else ALPACA_NAME
    if name == CHAT_NAME and not has_chat:
        ChatTemplate(tokenizer)  # raises the ConfigError naming the usable templates
    if name not in TEMPLATE_NAMES:
        raise ConfigError(f"prompt_template must be one of {', '.join(TEMPLATE_NAMES)}, "
                          f"got {name!r}")
    return name


def truncate_at_stop(text: str, markers: tuple[str, ...]) -> str:
    """Cut ``text`` at the earliest stop marker (the model starting another turn)."""
    cut = len(text)
    for marker in markers:
        idx = text.find(marker)
        if idx != -1:
            cut = min(cut, idx)
    return text[:cut]
