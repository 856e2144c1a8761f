"""`a3duck eval`'s results rows from lm-eval outputs, the MMLU subject means, and the printed table.

Row schema (values are fractions in [0, 1]):
``{model: "base"|"adapter", task, metric, value, stderr, num_fewshot, n_docs, limited}`` with
``task`` a name of the task table (evaluation/leaderboard.py), plus ``average`` per model when
every task of the table ran. MMLU is the PLAIN mean over subjects (the Open LLM Leaderboard v1 figure); the
size-weighted mean that lm-eval's ``mmlu`` group reports is kept in ``details``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS, TASK_ORDER, subject_of


def _metric(task_result: dict, metric: str) -> tuple[float, float | None]:
    value = float(task_result[f"{metric},none"])
    stderr = task_result.get(f"{metric}_stderr,none")
    return value, float(stderr) if isinstance(stderr, int | float) else None


def mmlu_means(per_subject: dict[str, tuple[float, float | None, int]]) -> dict:
    """Plain and size-weighted means of per-subject (acc, stderr, n_docs).

    The plain mean's stderr treats subjects as independent: sqrt(sum se_i^2) / k.
    """
    k = len(per_subject)
    n_total = sum(n for _, _, n in per_subject.values())
    plain = sum(acc for acc, _, _ in per_subject.values()) / k
    weighted = sum(acc * n for acc, _, n in per_subject.values()) / n_total
    ses = [se for _, se, _ in per_subject.values()]
    plain_se = math.sqrt(sum(se * se for se in ses)) / k if None not in ses else None
    return {"plain_mean": plain, "plain_stderr": plain_se, "size_weighted_mean": weighted,
            "n_subjects": k, "n_docs": n_total,
            "subjects": {s: {"acc": a, "n_docs": n} for s, (a, _, n) in per_subject.items()}}


def rows_for_model(model: str, out: dict, task_names: dict[str, list[str]],
                   partial: set[str] = frozenset()) -> tuple[list[dict], dict]:
    """Result rows for one model from ``simple_evaluate`` output ``out``.

    ``task_names`` maps each benchmark to the lm-eval task names that ran for it (57 subject
    tasks for mmlu). A row is ``limited`` when lm-eval evaluated fewer docs than the task has
    (``--limit``) or the benchmark is in ``partial`` (e.g. MMLU with missing subjects).
    Returns (rows, details) where details holds the MMLU per-subject breakdown.
    """
    rows, details = [], {}
    for bench in (b for b in TASK_ORDER if b in task_names):
        spec = LEADERBOARD_TASKS[bench]
        names = task_names[bench]
        counts = {n: int(out["n-samples"][n]["effective"]) for n in names}
        cut = any(counts[n] < int(out["n-samples"][n]["original"]) for n in names)
        if spec.per_subject:
            per = {subject_of(bench, n): (*_metric(out["results"][n], spec.metric), counts[n])
                   for n in names}
            details[bench] = mmlu_means(per)
            value, stderr = details[bench]["plain_mean"], details[bench]["plain_stderr"]
        else:
            value, stderr = _metric(out["results"][names[0]], spec.metric)
        rows.append({"model": model, "task": bench, "metric": spec.leaderboard_metric,
                     "value": value, "stderr": stderr, "num_fewshot": spec.num_fewshot,
                     "n_docs": sum(counts.values()), "limited": cut or bench in partial})
    if {r["task"] for r in rows} == set(TASK_ORDER):
        rows.append({"model": model, "task": "average", "metric": "mean",
                     "value": sum(r["value"] for r in rows) / len(rows), "stderr": None,
                     "num_fewshot": None, "n_docs": sum(r["n_docs"] for r in rows),
                     "limited": any(r["limited"] for r in rows)})
    return rows, details


def build_document(base_model: str, adapter: str | None, rows: list[dict], **extra) -> dict:
    """The results document of `a3duck eval` (top-level keys of the issue, then ``extra``)."""
    import lm_eval

    import a3duck

    doc = {"base_model": base_model, "adapter": adapter,
           "lm_eval_version": getattr(lm_eval, "__version__", None) or _dist_version("lm_eval"),
           "a3duck_version": a3duck.__version__,
           "date": datetime.now(UTC).isoformat(timespec="seconds"), "results": rows}
    doc.update(extra)
    return doc


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name.replace("_", "-"))
    except PackageNotFoundError:
        return None


def write_results(path: Path, document: dict) -> Path:
    """Write ``document`` as JSON, atomically."""
    from a3duck.files import atomic_write_text

    return atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def format_table(rows: list[dict], missing: dict[str, str] | None = None) -> str:
    """Leaderboard-style table in percent: one line per task and AVG; base, adapter, delta.
    With several adapters: one line per model, a column per task, the Δ to the base beside
    each adapter's value."""
    by = {(r["model"], r["task"]): r for r in rows}
    labels = list(dict.fromkeys(r["model"] for r in rows))
    if len(labels) > 2:
        return _model_table(labels, by, any(r["limited"] for r in rows))
    models = [m for m in ("base", "adapter") if any(r["model"] == m for r in rows)]
    header = ["Task", "Metric", "Shots", *(m.capitalize() for m in models)]
    if len(models) == 2:
        header.append("Delta")
    lines = [header]
    for task in (*TASK_ORDER, "average"):
        cells = [by.get((m, task)) for m in models]
        if not any(cells):
            if task in (missing or {}):
                lines.append([LEADERBOARD_TASKS[task].title, "-", "-", *["missing"] * len(models)])
            continue
        first = next(c for c in cells if c)
        title = "AVG" if task == "average" else LEADERBOARD_TASKS[task].title
        shots = "" if first["num_fewshot"] is None else str(first["num_fewshot"])
        line = [title + ("*" if first["limited"] else ""), first["metric"], shots,
                *(f"{100 * c['value']:.2f}" if c else "-" for c in cells)]
        if len(models) == 2:
            line.append(f"{100 * (cells[1]['value'] - cells[0]['value']):+.2f}"
                        if all(cells) else "-")
        lines.append(line)
    return _render(lines, any(r["limited"] for r in rows))


def _model_table(labels: list[str], by: dict, limited: bool) -> str:
    tasks = [t for t in (*TASK_ORDER, "average") if any((m, t) in by for m in labels)]
    head = ["Model", *(("AVG" if t == "average" else LEADERBOARD_TASKS[t].title)
                       + ("*" if any(by.get((m, t), {}).get("limited") for m in labels) else "")
                       for t in tasks)]
    lines = [head]
    for label in labels:
        cells = []
        for task in tasks:
            row, base = by.get((label, task)), by.get(("base", task))
            text = f"{100 * row['value']:.2f}" if row else "-"
            if row and base and label != "base":
                text += f" ({100 * (row['value'] - base['value']):+.2f})"
            cells.append(text)
        lines.append([label, *cells])
    return _render(lines, limited, left=1)


def _render(lines: list[list[str]], limited: bool, left: int = 3) -> str:
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    text = ["  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in
                      enumerate(zip(row, widths, strict=True))) for row in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    if limited:
        text.append("* not every document evaluated (--limit or a partial benchmark)")
    return "\n".join(text)
