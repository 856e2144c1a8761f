"""A leaderboard task is one declaration (evaluation/leaderboard.py): no other module of the
package or of bench/ types a task's name, data folder or shot count (tests aside)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS, TaskSpec

ROOT = Path(__file__).resolve().parent.parent
DECLARATIONS = {"a3duck/evaluation/leaderboard.py"}
# Still typing a task name, with the reason; this set only shrinks.
NOT_YET: dict[str, str] = {}
SHOTS = re.compile(r"\b\d+-shot\b")
SHOT_KEYWORDS = {"num_fewshot", "shots", "fewshot"}


def _task_words() -> set[str]:
    return {w for t in LEADERBOARD_TASKS.values() for w in (t.name, t.data_folder, t.lm_eval_task)}


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, kinds) and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}


def typed_task_facts(source: str) -> list[str]:
    """Each string constant (docstrings aside) that is a task's name or folder or says
    ``N-shot``, and each ``num_fewshot=<int>``-like keyword, as 'line: value'."""
    tree, words = ast.parse(source), _task_words()
    docs, found = _docstrings(tree), []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docs and (node.value in words or SHOTS.search(node.value))):
            found.append(f"{node.lineno}: {node.value!r}")
        if (isinstance(node, ast.keyword) and node.arg in SHOT_KEYWORDS
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int)):
            found.append(f"{node.value.lineno}: {node.arg}={node.value.value}")
    return found


def _modules() -> list[Path]:
    return sorted([*(ROOT / "a3duck").rglob("*.py"), *(ROOT / "bench").rglob("*.py"),
                   ROOT / "app.py", ROOT / "push_to_hub.py"])


def test_no_module_types_a_task_name_or_shot_count():
    offenders = {}
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        if rel in DECLARATIONS or rel in NOT_YET:
            continue
        found = typed_task_facts(path.read_text(encoding="utf-8"))
        if found:
            offenders[rel] = found
    assert not offenders, ("task facts typed outside evaluation/leaderboard.py (read them from "
                           f"LEADERBOARD_TASKS / ARC, HELLASWAG, MMLU, TRUTHFULQA): {offenders}")


def test_not_yet_list_is_current():
    """An entry leaves NOT_YET as soon as its module stops typing task facts."""
    for rel in NOT_YET:
        assert typed_task_facts((ROOT / rel).read_text(encoding="utf-8")), f"{rel}: drop it"


def test_the_scan_sees_names_shots_and_folders_but_not_docstrings():
    src = ('"""mmlu in a docstring is prose."""\n'
           'X = "hellaswag"\nY = root / "truthfulqa"\nZ = f"{n}" + "(25-shot)"\n'
           'run(num_fewshot=5)\nOK = "mc2"\n')
    assert typed_task_facts(src) == ["2: 'hellaswag'", "3: 'truthfulqa'", "4: '(25-shot)'",
                                     "5: num_fewshot=5"]


def test_a_task_is_declared_by_keywords_only():
    spec = next(iter(LEADERBOARD_TASKS.values()))
    with pytest.raises(TypeError):  # positional: refused, so no field can be misplaced
        TaskSpec(spec.name, spec.title)
