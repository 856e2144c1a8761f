"""Base vs adapter on held-out prompts: greedy answers side by side, with three scores.

- ``exact``: the answer equals the reference (whitespace-normalised);
- ``format``: the answer has the reference's shape. A reference with its key answer in
  ``**bold**`` (the demo data's learnable style): the answer is one short line (at most twice the
  reference's length) with exactly one bold span. A JSON-object reference: a JSON object with
  the same keys;
- ``correct``: the reference's key answer (its bold span, or its JSON ``answer`` field, else the
  whole reference) appears in the answer, case-insensitively, so a right answer in free prose
  counts for the base model too.
One base model is in memory; base and adapter answers are generated together in batches
(``a3duck.batch_generate``), each row exactly as that model alone answers it.
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
    """Per-row answers and aggregate scores for base and adapter on ``data``, plus what the
    adapter gained and lost against the base (``changes``: row numbers per score). Base and
    adapter rows are generated together in batches (``batch_generate``), each row exactly as
    that model alone would answer it."""
    from a3duck.batch_generate import greedy_rows
    from a3duck.multi_adapter import BASE, AdapterSource, load_multi
    from a3duck.progress import bar

    folder = adapter_folder.resolve(adapter)
    multi, tokenizer = load_multi(base, [AdapterSource("adapter", adapter, folder)],
                                  dtype=torch.float32)
    template = get_template(adapter_folder.template(folder), tokenizer)
    report = data_mod.DataReport(source=data)
    rows = data_mod.load_rows(data)[:limit]
    examples = data_mod.normalise(rows, data, template.name, False, report)
    prompts = [prompt_of(ex, template) for ex in examples]
    sides = [BASE, "adapter"]
    answers: list[str] = []
    with bar(total=2 * len(prompts), desc="base vs adapter", unit="answer") as progress:
        for chunk in greedy_rows(multi, tokenizer, [p for p in prompts for _ in sides],
                                 sides * len(prompts), max_new_tokens,
                                 template.add_special_tokens):
            answers += [template.response_of(text) for text in chunk]
            progress.update(len(chunk))
    results = []
    for k, (ex, prompt) in enumerate(zip(examples, prompts)):
        row = {"row": ex.row, "prompt": prompt, "reference": ex.completion,
               "question": single_question(ex)}
        for side, answer in zip(("base", "adapter"), answers[2 * k:2 * k + 2]):
            row[side] = {"answer": answer, **score(answer, ex.completion)}
        results.append(row)
    totals = {side: {k: sum(r[side][k] for r in results) / max(len(results), 1)
                     for k in SCORES} for side in ("base", "adapter")}
    return {"adapter": adapter, "adapter_sha256": adapter_folder.weights_sha256(folder),
            "data": data, "n": len(results), "scores": totals, "changes": changes(results),
            "rows": results}


def single_question(ex: data_mod.Example) -> str | None:
    """The row's question as written when it is one exchange (what a person would type into a
    one-turn prompt box, e.g. the Space's Compare tab); None for a multi-turn conversation."""
    if ex.messages is not None and sum(m["role"] == "user" for m in ex.messages) != 1:
        return None
    return ex.question.strip()


def changes(rows: list[dict]) -> dict[str, dict[str, list[int]]]:
    """Per score, the rows the adapter ``gained`` (base wrong, adapter right) and ``lost``
    (base right, adapter wrong): a net rate hides a loss behind a gain."""
    return {key: {"gained": [r["row"] for r in rows if r["adapter"][key] and not r["base"][key]],
                  "lost": [r["row"] for r in rows if r["base"][key] and not r["adapter"][key]]}
            for key in SCORES}


def format_report(result: dict, examples: int = 3) -> str:
    """A short table of scores with the rows gained and lost, the lost answers side by side,
    then a few more side-by-side answers."""
    s, ch = result["scores"], result.get("changes") or changes(result["rows"])
    lines = [f"held-out prompts: {result['n']} ({result['data']})",
             f"{'':10}{'base':>10}{'adapter':>10}{'delta':>10}{'gained':>8}{'lost':>6}"]
    for key in SCORES:
        b, a = s["base"][key], s["adapter"][key]
        lines.append(f"{key:10}{b:>10.1%}{a:>10.1%}{a - b:>+10.1%}"
                     f"{len(ch[key]['gained']):>8}{len(ch[key]['lost']):>6}")
    by_row = {r["row"]: r for r in result["rows"]}
    lost = [by_row[n] for n in ch["correct"]["lost"]]
    if lost:
        lines += ["", f"correct answers the adapter lost ({len(lost)}):"]
    for row in lost:
        lines += _side_by_side(row)
    shown = [r for r in result["rows"] if r not in lost][:examples]
    if shown:
        lines += ["", "examples:"]
    for row in shown:
        lines += _side_by_side(row)
    return "\n".join(lines)


def _side_by_side(row: dict) -> list[str]:
    return [f"  row {row['row']}: reference {row['reference']}",
            f"    base:    {row['base']['answer'][:100]!r}",
            f"    adapter: {row['adapter']['answer'][:100]!r}"]
