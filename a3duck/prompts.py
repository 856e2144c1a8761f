"""Instruction templates.

Platypus trained with alpaca-lora's ``templates/alpaca.json`` (``Prompter("alpaca")`` in
Platypus' ``finetune.py``): one form with an ``### Input:`` block, one without. The strings below
are that template verbatim; the answer is appended directly after ``### Response:\\n``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    """An instruction template: prompt forms with and without input, and the response marker."""

    name: str
    prompt_input: str
    prompt_no_input: str
    response_split: str
    # Where a generated answer has ended: the model starting the next turn.
    stop_markers: tuple[str, ...]

    def render(self, instruction: str, input: str | None = None) -> str:
        """The prompt for one example (everything the loss ignores when train_on_inputs=False)."""
        if input:
            return self.prompt_input.format(instruction=instruction, input=input)
        return self.prompt_no_input.format(instruction=instruction)

    def response_of(self, generated: str) -> str:
        """The answer part of a full generated text (after the response marker, before a stop)."""
        text = generated.split(self.response_split, 1)[-1]
        return truncate_at_stop(text, self.stop_markers).strip()


ALPACA = Template(
    name="alpaca",
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
# Every value `prompt_template` accepts (validated before any model work); names that pick a
# template at run time are added here next to the named templates.
TEMPLATE_NAMES: tuple[str, ...] = tuple(TEMPLATES)


def get_template(name: str) -> Template:
    """Look a template up by name; unknown names list the known ones."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(
            f"unknown prompt template {name!r}; known: {', '.join(sorted(TEMPLATES))}"
        ) from None


def truncate_at_stop(text: str, markers: tuple[str, ...]) -> str:
    """Cut ``text`` at the earliest stop marker (the model starting another turn)."""
    cut = len(text)
    for marker in markers:
        idx = text.find(marker)
        if idx != -1:
            cut = min(cut, idx)
    return text[:cut]
