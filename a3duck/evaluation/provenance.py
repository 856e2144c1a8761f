"""How each result row was obtained: harness version, backend, dtype, batch size, limit, data.

Every row of `a3duck eval`'s results file carries a ``provenance`` object::

    {lm_eval_version, backend, dtype, batch_size, limit, partial, n_docs, data, date}

``data`` is ``{kind: "hub", dataset, config, revision}`` for lm-eval's Hub datasets (``revision``
as pinned by the task config, else ``null``: the Hub's main branch on that date) or
``{kind: "local", files: {relative path: sha256}}`` for ``--data-dir`` runs (every file of the
benchmark's folder).
"""

from __future__ import annotations

from pathlib import Path

from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS
from a3duck.files import sha256_file


def local_source(data_dir: Path, bench: str) -> dict:
    folder = Path(data_dir) / LEADERBOARD_TASKS[bench].data_folder
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    return {"kind": "local",
            "files": {p.relative_to(data_dir).as_posix(): sha256_file(p) for p in files}}


def hub_source(task, one_of: int = 1) -> dict:
    """The Hub dataset an lm-eval task object reads, with the revision its config pins.
    ``one_of`` > 1: the benchmark spans that many lm-eval tasks, one dataset config each (MMLU's
    subjects), so no single config is named; ``configs`` gives their count."""
    config = task.config
    kwargs = getattr(config, "dataset_kwargs", None) or {}
    source = {"kind": "hub", "dataset": config.dataset_path, "config": config.dataset_name,
              "revision": kwargs.get("revision")}
    if one_of > 1:
        source.update(config=None, configs=one_of)
    return source


def data_sources(names: dict[str, list[str]], objects: dict, data_dir: Path | None) -> dict:
    """Per benchmark: where its documents came from."""
    if data_dir is not None:
        return {bench: local_source(Path(data_dir), bench) for bench in names}
    return {bench: hub_source(objects[tasks[0]], len(tasks))
            for bench, tasks in names.items() if tasks}


def stamp(rows: list[dict], sources: dict, **common) -> list[dict]:
    """Add ``provenance`` to every row: ``common`` (lm_eval_version, backend, dtype, batch_size,
    limit, date) plus the row's own partial flag, document count and data source (the average
    row names the tasks whose sources it averages)."""
    for row in rows:
        data = sources.get(row["task"]) or {"kind": "tasks", "tasks": list(sources)}
        row["provenance"] = {**common, "partial": bool(row["limited"]), "n_docs": row["n_docs"],
                             "data": data}
    return rows
