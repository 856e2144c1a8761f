"""The About tab's record of the default adapter: its eval table (`a3duck eval`) and its
held-out comparison (`a3duck compare --output`), each shown only when the file beside the
adapter was made with these very weights (its recorded sha256), as the model card does."""

from __future__ import annotations

from pathlib import Path

from a3duck import adapter_folder
from a3duck.errors import A3DuckError
from a3duck.files import public_name


def results_lines(folder: Path | None, base: str) -> list[str]:
    """Markdown sections for the About tab ([] without a local adapter folder)."""
    if folder is None or not Path(folder).is_dir():
        return []
    return _eval_lines(Path(folder), base) + _compare_lines(Path(folder))


def _eval_lines(folder: Path, base: str) -> list[str]:
    from a3duck.publish.card_results import eval_table, load_eval_results

    try:
        table = eval_table(load_eval_results(None, folder, base))
    except A3DuckError as exc:  # another base's results, a damaged file: said, not shown
        return [f"- **Evaluation:** not shown ({exc})"]
    if table is None:
        return [f"- **Evaluation:** not evaluated (no `{adapter_folder.EVAL_RESULTS}` for these "
                "weights in or beside the adapter folder)"]
    lines = ["", f"### Evaluation (`a3duck eval`, {table['date']})", "",
             "| Task | Metric | Shots | Base | Adapter | Δ |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {r['task']}{'*' if r['partial'] else ''} | {r['metric']} | {r['shots']} | "
              f"{r['base']} | {r['adapter']} | {r['delta']} |" for r in table["rows"]]
    if table["partial"]:
        lines.append("\n\\* part of the documents only (`--limit` or a partial benchmark)")
    return lines


def _compare_lines(folder: Path) -> list[str]:
    from a3duck.compare import SCORES

    result, problem = _verified_compare(folder)
    if problem:
        return [f"- **Held-out comparison:** {problem}"]
    if result is None:
        return []
    scores, changes = result["scores"], result.get("changes") or {}
    lines = ["", f"### Held-out comparison (`a3duck compare`: {result['n']} prompts of "
                 f"`{public_name(result.get('data'))}`, greedy)", "",
             "| Score | Base | Adapter | Δ | Gained | Lost |", "|---|---:|---:|---:|---:|---:|"]
    for key in SCORES:
        b, a = scores["base"][key], scores["adapter"][key]
        won, lost = (len(changes.get(key, {}).get(k, [])) for k in ("gained", "lost"))
        lines.append(f"| {key} | {b:.1%} | {a:.1%} | {a - b:+.1%} | {won} | {lost} |")
    return lines


def domain_prompt(folder: Path | None) -> str | None:
    """A held-out question of the adapter's own domain for the Compare tab to open on: from its
    `a3duck compare` results (these weights' only), the first one-exchange row the adapter
    answers in the reference's format and correctly where the base does not (so the tab shows
    what the adapter changes), else the first one-exchange row; None without such results."""
    if folder is None or not Path(folder).is_dir():
        return None
    result, _problem = _verified_compare(Path(folder))
    rows = [r for r in (result or {}).get("rows", []) if r.get("question")]

    def shows_change(row: dict) -> bool:
        adapter, base = row["adapter"], row["base"]
        return adapter["format"] and adapter["correct"] and not (base["format"] and
                                                                 base["correct"])

    best = next((r for r in rows if shows_change(r)), rows[0] if rows else None)
    return best["question"] if best else None


def _verified_compare(folder: Path) -> tuple[dict | None, str | None]:
    """(results, problem) of the adapter's `a3duck compare --output` file: results only
    when it was made with these very weights (its recorded sha256); problem says why not."""
    path = next((p for p in adapter_folder.compare_results_candidates(folder) if p.is_file()),
                None)
    if path is None:
        return None, None
    try:
        result = adapter_folder.read_json(path)
        mine = adapter_folder.weights_sha256(folder)
    except A3DuckError as exc:
        return None, f"not shown ({exc})"
    if result.get("adapter_sha256") != mine:
        return None, (f"`{path.name}` is not for these weights (another run's, made before "
                      "compare recorded the weights' sha256, or the adapter changed since): "
                      "run `a3duck compare --output` again")
    return result, None
