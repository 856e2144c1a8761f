"""Base vs adapter on held-out prompts: greedy answers side by side, with three scores.

- ``exact``: the answer equals the reference (whitespace-normalised);
- ``format``: the answer has the reference's shape. A reference with its key answer in
  ``**bold**`` (the demo data's learnable style): the answer is one short line (at most twice the
  reference's length) with exactly one bold span. A JSON-object reference: a JSON object with
  the same keys;
- ``correct``: the reference's key answer (its bold span, or its JSON ``answer`` field, else the
  whole reference) appears in the answer, case-insensitively, so a right answer in free prose
  counts for the base model too.
One model is in memory; the base's answers come from PEFT's ``disable_adapter()``.
"""

from __future__ import annotations

import json
import re
from contextlib import nullcontext

import torch

from a3duck import adapter_folder, models
from a3duck import data as data_mod
from a3duck.generation import Settings, generate_text
from a3duck.prompts import ChatTemplate, Template, get_template

SCORES = ("format", "correct", "exact")
GREEDY = Settings(temperature=0.0, repetition_penalty=1.0)  # plain greedy decoding


def load_for_compare(adapter: str | None, base: str | None = None):
    """(model, tokenizer, template): the template is the one the adapter was trained with."""
    model, tokenizer = models.load(base, adapter, dtype=torch.float32)
    return model, tokenizer, get_template(
        adapter_folder.template(adapter_folder.resolve(adapter) if adapter else None), tokenizer)


def prompt_of(ex: data_mod.Example, template) -> str:
    """The text to generate from: a conversation's turns before its last answer, rendered with
    the adapter's template, or an instruction row's rendered prompt."""
    if ex.messages is not None:
        return template.render_messages(ex.messages[:-1])
    return ex.prompt


def generate_answer(model, tokenizer, prompt: str, template: Template | ChatTemplate,
                    max_new_tokens: int, use_adapter: bool = True) -> str:
    """Greedy answer to ``prompt`` (``generation.generate_text``), cut at the template's stop
    markers by ``response_of``; generation is not stopped at a marker, so ``response_of`` reads
    the same whole text as ever and the answers stay those of a plain greedy ``generate``."""
    toggle = nullcontext() if use_adapter or not hasattr(model, "disable_adapter") \
        else model.disable_adapter()
    with toggle:
        text = generate_text(model, tokenizer, prompt, GREEDY.with_max(max_new_tokens),
                             add_special_tokens=template.add_special_tokens)
    return template.response_of(text)


BOLD = re.compile(r"\*\*(.+?)\*\*")


def score(answer: str, reference: str) -> dict[str, bool]:
    exact = " ".join(answer.split()) == " ".join(reference.split())
    ref_obj, ans_obj = _json_object(reference), _json_object(answer)
    bold = BOLD.findall(reference)
    if ref_obj is not None:
        fmt = ans_obj is not None and set(ref_obj) == set(ans_obj)
        value = str(ref_obj.get("answer", reference))
    else:
        fmt = bool(bold) and len(BOLD.findall(answer)) == 1 and "\n" not in answer.strip() \
            and len(answer) <= 2 * len(reference)
        value = bold[0] if bold else reference
    correct = value.strip().lower() in answer.lower()
    return {"exact": exact, "format": fmt, "correct": correct}


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def compare(adapter: str, data: str, base: str | None = None, limit: int | None = None,
            max_new_tokens: int = 48) -> dict:
    """Per-row answers and aggregate scores for base and adapter on ``data``."""
    from tqdm.auto import tqdm

    model, tokenizer, template = load_for_compare(adapter, base)
    report = data_mod.DataReport(source=data)
    rows = data_mod.load_rows(data)[:limit]
    examples = data_mod.normalise(rows, data, template.name, False, report)
    results = []
    for ex in tqdm(examples, desc="base vs adapter", unit="prompt"):
        prompt = prompt_of(ex, template)
        row = {"row": ex.row, "prompt": prompt, "reference": ex.completion}
        for side, use_adapter in (("base", False), ("adapter", True)):
            answer = generate_answer(model, tokenizer, prompt, template, max_new_tokens,
                                     use_adapter)
            row[side] = {"answer": answer, **score(answer, ex.completion)}
        results.append(row)
    totals = {side: {k: sum(r[side][k] for r in results) / max(len(results), 1)
                     for k in SCORES} for side in ("base", "adapter")}
    return {"adapter": adapter, "data": data, "n": len(results), "scores": totals,
            "rows": results}


def format_report(result: dict, examples: int = 3) -> str:
    """A short table of scores plus a few side-by-side answers."""
    s = result["scores"]
    lines = [f"held-out prompts: {result['n']} ({result['data']})",
             f"{'':10}{'base':>10}{'adapter':>10}{'delta':>10}"]
    for key in SCORES:
        b, a = s["base"][key], s["adapter"][key]
        lines.append(f"{key:10}{b:>10.1%}{a:>10.1%}{a - b:>+10.1%}")
    for row in result["rows"][:examples]:
        lines += ["", f"reference: {row['reference']}",
                  f"base:      {row['base']['answer'][:100]!r}",
                  f"adapter:   {row['adapter']['answer'][:100]!r}"]
    return "\n".join(lines)
