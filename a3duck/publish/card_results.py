"""The card's evaluation part: this adapter's rows of `a3duck eval`'s results, the table, how the
numbers were obtained (provenance, shown under the table), the model-index entries and the Hub's
``.eval_results`` entries."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from a3duck import adapter_folder
from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS, task_named
from a3duck.evaluation.leaderboard import TASK_ORDER as LEADERBOARD_ORDER
from a3duck.files import scrub_local_paths
from a3duck.publish import CardError
from a3duck.publish.artifacts import read_json

log = logging.getLogger(__name__)

TASK_ORDER = (*LEADERBOARD_ORDER, "average")  # card rows: the tasks, then their mean
_TASKS_WORD = ("one", "two", "three", "four", "five", "six", "seven", "eight")[
    len(LEADERBOARD_ORDER) - 1]  # "mean of the four"


def load_eval_results(path, adapter_dir: Path, base: str) -> dict | None:
    """The eval results for this adapter, or None ('not evaluated')."""
    candidates = [Path(path)] if path else adapter_folder.eval_results_candidates(adapter_dir)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        if path:
            log.warning("%s not found: the card says 'not evaluated'", path)
        return None
    data = read_json(found)
    if not isinstance(data.get("results"), list):
        raise CardError(f"{found}: no 'results' list (is it from `a3duck eval`?)")
    label = _label_by_hash(data, adapter_dir, found, explicit=bool(path))
    if label is False:
        return None
    data = _rows_of(data, adapter_dir, label)
    from a3duck.evaluation.suite import portable_name  # how eval names a local base

    if data.get("base_model") and base and data["base_model"] not in (base, portable_name(base)):
        raise CardError(f"{found} evaluated base {data['base_model']!r}, but this adapter was "
                        f"trained on {base!r}; pass the eval results of this adapter")
    return data


def _label_by_hash(data: dict, adapter_dir: Path, found: Path, explicit: bool):
    """The row label whose recorded weights sha256 is this adapter's; None when the file records
    no hashes (older `a3duck eval`: matched by name, with a warning); False when a file found
    beside the adapter holds another adapter's results (left out, one line says why). A file
    passed explicitly that covers no adapter with this hash is a CardError."""
    digests = data.get("adapter_sha256")
    if not isinstance(digests, dict) or not digests:
        if data.get("adapter") or data.get("adapters"):
            log.warning("%s records no adapter weights sha256 (made before a3duck recorded "
                        "it): attached by name; re-run `a3duck eval` to attach by content",
                        found.name)
        return None
    mine = adapter_folder.weights_sha256(adapter_dir)
    label = next((k for k, v in digests.items() if v == mine), None)
    if label is not None:
        return label
    why = (f"{found.name} holds results for weights sha256 "
           f"{', '.join(v[:12] + '…' for v in digests.values())}, not this adapter's "
           f"{mine[:12]}… (another run's, or the adapter changed since it was evaluated)")
    if explicit:
        raise CardError(f"{why}; run `a3duck eval` on this adapter or pass its results")
    log.warning("%s: the card says 'not evaluated'", why)
    return False


def _rows_of(data: dict, adapter_dir: Path, label: str | None = None) -> dict:
    """A several-adapter run (``adapters``: row label -> name): keep the base and this adapter's
    rows (matched by weights hash, else by folder name), relabelled ``adapter``."""
    names = data.get("adapters")
    if not names:
        return data
    if label is None:
        label = next((k for k, v in names.items() if Path(str(v)).name == adapter_dir.name),
                     None)
    if label is None:
        raise CardError(f"the eval results cover adapters {', '.join(names.values())}, not "
                        f"{adapter_dir.name}; pass this adapter's eval results")
    rows = [dict(r, model="adapter") if r["model"] == label else r for r in data["results"]
            if r["model"] in ("base", label)]
    return {**data, "adapter": names[label], "results": rows}


def _local_run(data: dict) -> bool:
    """Scored on local benchmark files (other splits/subsets than the leaderboard's)."""
    return str((data.get("settings") or {}).get("data", "")).startswith("local")


def _scrub(text) -> str:
    """Notes may name files on the evaluating machine: keep only their base names."""
    return scrub_local_paths(str(text))[0]


def long_title(name: str) -> str:
    spec = task_named(name)
    return spec.long_title if spec else name


def _pct(value) -> str:
    return f"{100 * value:.2f}"


def eval_table(data: dict | None) -> dict[str, Any] | None:
    """Rows (task x base/adapter) for the card's evaluation table; None if not evaluated."""
    if data is None:
        return None
    by_key = {(r["model"], r["task"]): r for r in data["results"]}
    rows, partial = [], False
    for task in TASK_ORDER:
        base, adapter = by_key.get(("base", task)), by_key.get(("adapter", task))
        if base is None and adapter is None:
            continue
        cells = [_cell(r) for r in (base, adapter)]
        limited = any(r and r.get("limited") for r in (base, adapter))
        partial |= limited
        delta = (f"{100 * (adapter['value'] - base['value']):+.2f}"
                 if base and adapter else "–")
        any_row = adapter or base
        spec = LEADERBOARD_TASKS.get(task)
        rows.append({"task": spec.long_title if spec else "Average", "base": cells[0],
                     "adapter": cells[1], "delta": delta, "partial": limited,
                     "shots": dash(any_row.get("num_fewshot")) if task != "average" else "–",
                     "metric": spec.leaderboard_metric if spec else f"mean of the {_TASKS_WORD}",
                     "n_docs": dash(any_row.get("n_docs"))})
    settings = data.get("settings") or {}
    return {"rows": rows, "partial": partial, "date": data.get("date", "unknown"),
            "local_files": _local_run(data), "notes": [_scrub(n) for n in data.get("notes") or []],
            "backend": settings.get("backend"), "provenance": provenance_lines(data["results"]),
            "lm_eval_version": data.get("lm_eval_version", "unknown"),
            "a3duck_version": data.get("a3duck_version", "unknown")}


def provenance_lines(rows: list[dict]) -> list[str]:
    """How the numbers were obtained (from each row's ``provenance``): one line for the settings
    the rows share, one per task for its documents and data source."""
    shown = [r for r in rows if r.get("provenance")]
    if not shown:
        return []
    p = shown[0]["provenance"]
    limit = "none (every document)" if p.get("limit") is None else f"{p['limit']} per task"
    lines = [(f"lm-eval {p.get('lm_eval_version')}, backend `{p.get('backend')}`, "
              f"{p.get('dtype')}, batch size {p.get('batch_size')}, limit {limit}, "
              f"run {p.get('date')}")]
    seen = set()
    for row in shown:
        task, prov = row["task"], row["provenance"]
        if task in seen or task not in LEADERBOARD_TASKS:
            continue
        seen.add(task)
        lines.append(f"{long_title(task)}: {prov['n_docs']:,} documents"
                     f"{' (partial)' if prov.get('partial') else ''}; {_source(prov['data'])}")
    return lines


def _source(data: dict) -> str:
    if data.get("kind") == "hub":
        which = data.get("config") or (f"{data['configs']} configs" if data.get("configs") else "")
        name = data["dataset"] + (f" ({which})" if which else "")
        return f"Hub dataset {name}, revision {data.get('revision') or 'not pinned (main)'}"
    files = data.get("files") or {}
    if len(files) > 3:
        return f"{len(files)} local files (sha256 of each in {adapter_folder.EVAL_RESULTS})"
    return "local files " + ", ".join(f"{_scrub(n)} (sha256 {h[:12]}…)" for n, h in files.items())


def dash(value) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _cell(row: dict | None) -> str:
    if row is None:
        return "not evaluated"
    text = _pct(row["value"])
    if row.get("stderr") is not None:
        text += f" ± {_pct(row['stderr'])}"
    return text + (" †" if row.get("limited") else "")


def _published_rows(data: dict | None):
    """The adapter's rows that may be published as leaderboard results: full runs (no
    ``--limit``, no missing subjects) on the leaderboard's own (Hub) datasets."""
    for row in (data or {}).get("results", []):
        spec = LEADERBOARD_TASKS.get(row["task"])
        if row["model"] == "adapter" and spec and not row.get("limited") and not _local_run(data):
            yield row, spec


def model_index_results(data: dict | None) -> list:
    """The adapter's full (not ``--limit``) leaderboard results as Hub ``EvalResult``s."""
    from huggingface_hub import EvalResult

    results = []
    for row, spec in _published_rows(data):
        shots, hub = row.get("num_fewshot", spec.num_fewshot), spec.hub
        results.append(EvalResult(
            task_type="text-generation", task_name="Text Generation",
            dataset_type=hub.type, dataset_name=f"{hub.name} ({shots}-Shot)",
            dataset_config=hub.config, dataset_split=row.get("split", hub.split),
            dataset_args={"num_few_shot": shots}, metric_type=spec.leaderboard_metric,
            metric_name=spec.metric_name, metric_value=round(100 * row["value"], 2),
        ))
    return results


def hub_eval_entries(data: dict | None) -> list:
    """The same results as the Hub's newer ``.eval_results/*.yaml`` entries
    (huggingface_hub's ``EvalResultEntry``): only rows whose provenance names the Hub dataset."""
    from huggingface_hub import EvalResultEntry

    entries = []
    for row, spec in _published_rows(data):
        prov = row.get("provenance") or {}
        source = prov.get("data") or {}
        if source.get("kind") != "hub":
            continue
        entries.append(EvalResultEntry(
            dataset_id=source["dataset"], task_id=spec.hub.config or row["task"],
            value=round(100 * row["value"], 2), dataset_revision=source.get("revision"),
            date=prov.get("date"),
            notes=(f"{row.get('num_fewshot', spec.num_fewshot)}-shot {spec.leaderboard_metric}, "
                   f"lm-eval {prov.get('lm_eval_version')}, a3duck backend "
                   f"{prov.get('backend')}, {prov.get('dtype')}")))
    return entries


def write_hub_eval_results(folder: Path, data: dict | None) -> Path | None:
    """Write the Hub's eval-results entries (``adapter_folder.HUB_EVAL_DIR``/``HUB_EVAL_ENTRIES``)
    into ``folder`` when there is anything to publish."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    from a3duck.files import atomic_write_text

    entries = hub_eval_entries(data)
    if not entries:
        return None
    path = Path(folder) / adapter_folder.HUB_EVAL_DIR / adapter_folder.HUB_EVAL_ENTRIES
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(eval_result_entries_to_yaml(entries),
                                           sort_keys=False))
    return path
