"""Few-shot multiple-choice scoring for the Space, the way the evaluation scores it.

The prompt comes from :func:`a3duck.evaluation.formats.build_mc_prompt` (lm-eval's own
prompt); each choice's log-likelihood comes from the evaluation backend itself
(:class:`a3duck.evaluation.fast_backend.A3DuckLM` wrapped around the already loaded model), so
it equals what ``a3duck eval`` computes for the same request. The chosen answer
follows the leaderboard metric of the task: ``acc`` (highest log-likelihood), ``acc_norm``
(highest log-likelihood per character), or TruthfulQA's ``mc2`` (probability mass on true
answers).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from a3duck.errors import InputError
from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS, acc_norm_scores
from a3duck.space.chat import check_message

EXAMPLES_FILE = Path(__file__).resolve().parent / "examples.json"
# Cost bounds of one few-shot request (each choice is one forward pass over prompt + choice):
# TruthfulQA's mc2 items have at most 20 answers of under 200 characters; a 25-shot ARC prompt
# is about 2,500 Llama tokens.
MAX_CHOICES = 20
MAX_CHOICE_CHARS = 500
MAX_PROMPT_TOKENS = 4096


@cache
def load_examples(path: Path = EXAMPLES_FILE) -> dict:
    """The bundled few-shot items: {task: {shots: [...], items: [...]}, custom: [...]}."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


# The Space's formats: the leaderboard tasks (in table order) that have bundled examples.
TASK_TITLES = {name: spec.long_title for name, spec in LEADERBOARD_TASKS.items()
               if name in load_examples()}


def check_doc(task: str, doc, what: str = "doc") -> dict:
    """InputError naming the missing field when ``doc`` is not in ``task``'s format."""
    if not isinstance(doc, dict):
        raise InputError(f"{what} must be a JSON object in the {TASK_TITLES[task]} format")
    required = LEADERBOARD_TASKS[task].fields
    missing = [k for k in required if k not in doc]
    if missing:
        raise InputError(f"{what} lacks field(s) {', '.join(missing)} "
                         f"(a {TASK_TITLES[task]} doc has {', '.join(required)})")
    return doc


def gold_indices(task: str, doc: dict) -> list[int]:
    """Index (indices, for TruthfulQA's true answers) of the correct choice(s)."""
    try:
        return LEADERBOARD_TASKS[task].gold(doc)
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"cannot find the correct answer of this {TASK_TITLES[task]} doc: "
                         f"{type(exc).__name__} {exc}") from None


def build_prompt(task: str, shots: list, doc: dict) -> tuple[str, list[str]]:
    """(context, continuations) from the evaluation's prompt builder, after checking the docs."""
    from a3duck.evaluation.formats import build_mc_prompt

    if task not in TASK_TITLES:
        raise InputError(f"unknown format {task!r}; pick one of {', '.join(TASK_TITLES)}")
    if not isinstance(shots, list):
        raise InputError("shots must be a JSON list of docs")
    shots = [check_doc(task, s, f"shot {i + 1}") for i, s in enumerate(shots)]
    check_doc(task, doc)
    try:
        return build_mc_prompt(task, shots, doc)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed doc fails inside lm-eval's templates
        raise InputError(f"cannot build the {TASK_TITLES[task]} prompt from this doc: "
                         f"{type(exc).__name__}: {exc}") from None


def scorer(model, tokenizer, max_length: int):
    """The evaluation backend (``a3duck eval``'s own scoring code) on an already loaded model:
    lm-eval's pair encoding, left-truncation and the a3duck backend's scoring."""
    from a3duck.evaluation.fast_backend import A3DuckLM

    return A3DuckLM(pretrained=model, tokenizer=tokenizer, batch_size=1, max_length=max_length)


def loglikelihoods(lm, context: str, continuations: list[str]) -> list[float]:
    """Log-likelihood of each continuation after ``context``, as ``a3duck eval`` scores it."""
    try:
        return lm.choice_loglikelihoods(context, continuations)
    except ValueError:
        empty = [c for c in continuations if not lm.tok_encode(c, add_special_tokens=False)]
        raise InputError(f"choice {(empty or continuations)[0]!r} encodes to no tokens") from None


@dataclass
class ChoiceScores:
    """Everything the few-shot tab shows for one scored item."""

    task: str
    context: str
    choices: list[str]
    loglikelihoods: list[float]
    gold: list[int]

    @property
    def metric(self) -> str:
        return LEADERBOARD_TASKS[self.task].leaderboard_metric

    @property
    def probabilities(self) -> list[float]:
        """Softmax over the choices' log-likelihoods."""
        return _softmax(self.loglikelihoods)

    @property
    def metric_probabilities(self) -> list[float]:
        """Softmax over what the metric ranks by (per-character scores for acc_norm), so the
        most probable choice shown is the chosen one."""
        return _softmax(self.per_char) if self.metric == "acc_norm" else self.probabilities

    @property
    def per_char(self) -> list[float]:
        """acc_norm's score (:func:`a3duck.evaluation.leaderboard.acc_norm_scores`)."""
        return acc_norm_scores(self.loglikelihoods, self.choices)

    @property
    def chosen(self) -> int:
        scores = self.per_char if self.metric == "acc_norm" else self.loglikelihoods
        return max(range(len(scores)), key=scores.__getitem__)

    @property
    def mc2(self) -> float | None:
        """TruthfulQA mc2: probability mass of the true answers (None for other tasks)."""
        if self.metric != "mc2":
            return None
        p = self.probabilities
        return sum(p[i] for i in self.gold)

    @property
    def correct(self) -> bool:
        return self.chosen in self.gold


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    weights = [math.exp(x - top) for x in values]
    return [w / sum(weights) for w in weights]


def check_cost(tokenizer, context: str, continuations: list[str] = ()) -> None:
    """InputError naming the limit when a request would cost more than one Space request may."""
    if len(continuations) > MAX_CHOICES:
        raise InputError(f"{len(continuations)} choices: at most {MAX_CHOICES} are scored "
                         "per request (MAX_CHOICES)")
    longest = max((len(c) for c in continuations), default=0)
    if longest > MAX_CHOICE_CHARS:
        raise InputError(f"a choice has {longest:,} characters: at most {MAX_CHOICE_CHARS} per "
                         "choice (MAX_CHOICE_CHARS)")
    n_tokens = len(tokenizer(context)["input_ids"])
    if n_tokens > MAX_PROMPT_TOKENS:
        raise InputError(f"the few-shot prompt is {n_tokens:,} tokens: at most "
                         f"{MAX_PROMPT_TOKENS:,} (MAX_PROMPT_TOKENS); use fewer or shorter shots")


def score_item(runtime, task: str, shots: list, doc: dict, adapter_on: bool = True
               ) -> ChoiceScores:
    """Build the prompt and score every choice with the loaded model (within the cost bounds)."""
    context, continuations = build_prompt(task, shots, doc)
    check_cost(runtime.tokenizer, context, continuations)
    with runtime.scoring_session(adapter_on) as model:
        if runtime.scorer is None:  # built on first use; the adapter is chosen per call
            runtime.scorer = scorer(model, runtime.tokenizer, runtime.info.context_window)
        lls = loglikelihoods(runtime.scorer, context, continuations)
    return ChoiceScores(task, context, continuations, lls, gold_indices(task, doc))


def item_json(task: str, index: int, k: int) -> str:
    """A bundled item with its first k shots, one doc per line (readable in the editor)."""
    data = load_examples()[task]
    doc = data["items"][int(index or 0) % len(data["items"])]
    shots = ",\n    ".join(json.dumps(s, ensure_ascii=False) for s in data["shots"][: int(k)])
    return ('{\n  "shots": [' + (f"\n    {shots}\n  " if shots else "") + '],\n  "doc": '
            + json.dumps(doc, ensure_ascii=False) + "\n}")


def parse_item(text: str) -> tuple[list, dict]:
    try:
        value = json.loads(check_message(text, "item JSON"))
    except json.JSONDecodeError as exc:
        raise InputError(f"the item is not valid JSON: {exc}") from None
    if not isinstance(value, dict) or "doc" not in value:
        raise InputError('the item must be a JSON object {"shots": [...], "doc": {...}}')
    return value.get("shots") or [], value["doc"]


def score_outputs(result) -> tuple:
    """The Score button's outputs for a scored item: (prompt, {choice: probability}, table rows
    [index, choice, loglik, per char, probability, gold mark], verdict markdown)."""
    letters = [c.strip() for c in result.choices]
    # One probability on the tab: the softmax of what the task's metric ranks by (per-character
    # scores for acc_norm), in the label and the table alike; the choice's whole text.
    chance = result.metric_probabilities
    rows = [[i, c, round(ll, 4), round(pc, 4), round(p, 4), "✓" if i in result.gold else ""]
            for i, (c, ll, pc, p) in enumerate(zip(letters, result.loglikelihoods,
                                                   result.per_char, chance))]
    label = {f"{i}: {c}": p for i, (c, p) in enumerate(zip(letters, chance))}
    verdict = (f"**Chosen ({result.metric}): {result.chosen} — {letters[result.chosen]!s}** · "
               f"{'correct ✓' if result.correct else 'wrong ✗'} "
               f"(correct: {', '.join(str(g) for g in result.gold)})")
    if result.mc2 is not None:
        verdict += f" · mc2 = {result.mc2:.3f}"
    return result.context, label, rows, verdict
