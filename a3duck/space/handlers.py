"""The Space's request handlers: what each button and the chat do, with the model runtime.

Layout lives in :mod:`a3duck.space.ui`; the model in :mod:`a3duck.space.runtime`; generation in
:mod:`a3duck.generation` (prompts: :mod:`a3duck.space.chat`); few-shot scoring in :mod:`a3duck.space.scoring`. Every handler turns user
errors into ``gr.Error`` (one clear message, one line in the server's log) and unexpected
failures into a short ``gr.Error`` plus one logged traceback, so one failed request never breaks
the next.
"""

from __future__ import annotations

import functools
import inspect
import logging

from a3duck.errors import USER_ERRORS, InputError
from a3duck.generation import LIMITS, Settings, Stats
from a3duck.multi_adapter import BASE
from a3duck.space.about_results import results_lines
from a3duck.space.chat import build_chat_prompt, check_message
from a3duck.space.runtime import Runtime
from a3duck.space.scheduler import answer_together
from a3duck.space.scoring import check_cost, item_json, parse_item, score_item, score_outputs
from a3duck.space.zerogpu import gpu, gpu_seconds, prompt_tokens
from a3duck.space.zoo import about_lines

log = logging.getLogger(__name__)

CHAT_EXAMPLES = [
    "Explain in two sentences why the sky is blue.",
    "Write a haiku about a duck learning to code.",
    "List three tips for writing a clear bug report.",
]
EMPTY_ANSWER = "_(the model ended its answer without producing text)_"
CUSTOM = "custom"
STOP_AT = ("\n\n", "\n")  # few-shot free-form answers stop at a blank line or a line end


def _user_errors(fn):
    """Show A3Duck/model/input errors as gr.Error; hide tracebacks of everything else."""
    import gradio as gr

    def convert(exc):
        # A visitor's mistake is one log line, not Gradio's ~30-line traceback; a real failure
        # is logged once, with its traceback, by log.exception below.
        if isinstance(exc, gr.Error):
            exc.print_exception = False
            log.info("request refused: %s", exc.message)
            return exc
        if isinstance(exc, USER_ERRORS):
            log.info("request refused: %s", exc)
            return gr.Error(str(exc), print_exception=False)
        log.exception("request failed")
        return gr.Error(f"the request failed ({type(exc).__name__}); please try again",
                        print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure must reach the visitor
                raise convert(exc) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the visitor
            raise convert(exc) from None
    return wrapper


def speed_line(stats: Stats) -> str:
    return (f"{stats.new_tokens} tokens in {stats.seconds:.2f} s = "
            f"**{stats.tokens_per_second:.1f} tokens/s** (stopped at {stats.stopped_by})")


def fit_settings(rt: Runtime, prompt_ids, settings: Settings) -> Settings:
    """``settings`` with max_new_tokens cut to the room left in the context window."""
    room = rt.info.context_window - len(prompt_ids)
    return Settings(**{**settings.__dict__, "max_new_tokens":
                       max(1, min(settings.max_new_tokens, room))})


def _generate(rt: Runtime, prompt_ids, settings: Settings, name: str, markers):
    """Stream one answer (batched with other visitors' by the scheduler); yields (text, stats)
    and records the speed for the About panel."""
    stats = Stats()
    text = ""
    for text in rt.stream(prompt_ids, fit_settings(rt, prompt_ids, settings), markers, stats,
                          name):
        yield text, stats
    rt.last_stats = stats
    yield text or EMPTY_ANSWER, stats


def chat_handler(rt: Runtime):
    """The ChatInterface function (API name /chat)."""
    def seconds(message, history=None, max_new_tokens=256, *_rest):
        turns = [str(m.get("content", "")) for m in history or () if isinstance(m, dict)]
        return gpu_seconds(prompt_tokens(rt.tokenizer, str(message or ""), *turns),
                           _number(max_new_tokens, LIMITS.max_new_tokens[1]))

    @gpu(seconds)
    @_user_errors
    def chat(message: str, history: list | None = None, max_new_tokens: int = 256,
             temperature: float = 0.7, top_p: float = 0.9, top_k: int = 50,
             repetition_penalty: float = 1.1, adapter_on: bool = True,
             adapter: str | None = None):
        """Chat with the model (the adapter's instruction template); streams the answer.

        Args:
            message: the user's message.
            history: earlier turns as [{"role": "user" | "assistant", "content": str}].
            max_new_tokens: most tokens to generate (1-1024).
            temperature: sampling temperature; 0 = greedy decoding.
            top_p: nucleus sampling probability mass (0.01-1).
            top_k: sample among the k most likely tokens; 0 = off.
            repetition_penalty: 1 = none; higher discourages repeats (1-2).
            adapter_on: answer with the IA3 adapter (True) or the base model alone (False).
            adapter: which served adapter answers (a name from the Adapter menu, or "base");
                None: the first adapter (adapter_on=False still means the base).
        Returns:
            the answer text and a status line with the generation speed.
        """
        settings = Settings.checked(max_new_tokens=max_new_tokens, temperature=temperature,
                                    top_p=top_p, top_k=top_k,
                                    repetition_penalty=repetition_penalty)
        name = rt.pick(adapter_on, adapter)
        template = rt.template_for(name)
        prompt, note = _chat_prompt(rt, template, check_message(message), history, settings)
        mode = f"`{name}`" + (" (merged)" if rt.info.merged else "")
        for answer, stats in _generate(  # noqa: B007 - the last stats are shown below
                rt, prompt.input_ids, settings, name, template.stop_markers):
            yield answer, f"{note}{mode} · generating…"
        yield answer, f"{note}{mode} · {speed_line(stats)}"

    return chat


def _chat_prompt(rt: Runtime, template, text: str, history, settings: Settings):
    """(prompt, note): the conversation in ``template`` within the context window, leaving room
    for the answer; note = the warning shown above the answer when old turns were dropped."""
    import gradio as gr

    window = rt.info.context_window
    budget = max(window - settings.max_new_tokens, window // 2)
    prompt = build_chat_prompt(template, rt.tokenizer, text, history, budget)
    if prompt.warning:
        gr.Warning(prompt.warning)
    return prompt, (f"⚠️ {prompt.warning}\n\n" if prompt.warning else "")


def fewshot_handlers(rt: Runtime):
    """(score, generate) functions of the few-shot tab."""
    return fewshot_score_handler(rt), fewshot_generate_handler(rt)


def fewshot_score_handler(rt: Runtime):
    """The few-shot tab's Score function (API name /fewshot_score)."""
    import gradio as gr

    def score_seconds(task, item_text=None, *_rest):
        return gpu_seconds(4 * prompt_tokens(rt.tokenizer, str(item_text or "")), 0)

    @gpu(score_seconds)
    @_user_errors
    def fewshot_score(task: str, item_text: str | None = None, adapter_on: bool = True,
                      adapter: str | None = None):
        """Score a multiple-choice item the way the Open LLM Leaderboard does (lm-eval's prompt,
        log-likelihood of each choice, the task's metric picks the answer).

        Args:
            task: the benchmark format: mmlu, arc_challenge, hellaswag or truthfulqa_mc2.
            item_text: JSON {"shots": [docs...], "doc": {...}} in that benchmark's Hub dataset
                format (the shots are the k examples shown before the question); None:
                the task's first example with 3 shots.
            adapter_on: score with the IA3 adapter (True) or the base model alone (False).
            adapter: which served adapter answers (a name from the Adapter menu, or "base");
                None: the first adapter (adapter_on=False still means the base).
        Returns:
            the full prompt, the probability of each choice, a table of scores (log-likelihood,
            per character, probability, gold) and a verdict naming the chosen answer.
        """
        if task == CUSTOM:
            raise gr.Error("Your own examples are scored by generation: use Generate.")
        shots, doc = parse_item(item_json(task, 0, 3) if item_text is None else item_text)
        return score_outputs(score_item(rt, task, shots, doc, rt.pick(adapter_on, adapter)))

    return fewshot_score


def fewshot_generate_handler(rt: Runtime):
    """The few-shot tab's free-form Generate function (API name /fewshot_generate)."""
    def generate_seconds(prompt_text, max_new_tokens=32, *_rest):
        return gpu_seconds(prompt_tokens(rt.tokenizer, str(prompt_text or "")),
                           _number(max_new_tokens, LIMITS.max_new_tokens[1]))

    @gpu(generate_seconds)
    @_user_errors
    def fewshot_generate(prompt_text: str, max_new_tokens: int = 32, stop_at: str = "\n\n",
                         adapter_on: bool = True, adapter: str | None = None):
        """Continue a few-shot prompt greedily (free-form answer); streams the text.

        Args:
            prompt_text: the full prompt to continue.
            max_new_tokens: most tokens to generate (1-256).
            stop_at: stop at a blank line ("\n\n") or at the end of the line ("\n").
            adapter_on: generate with the IA3 adapter (True) or the base model alone (False).
            adapter: which served adapter answers (a name from the Adapter menu, or "base");
                None: the first adapter (adapter_on=False still means the base).
        Returns:
            the generated continuation.
        """
        text = check_message(prompt_text, "prompt")
        if stop_at not in STOP_AT:
            raise InputError(f"stop_at must be one of {', '.join(map(repr, STOP_AT))}, "
                             f"got {stop_at!r}")
        settings = Settings.checked(max_new_tokens=max_new_tokens, temperature=0, top_p=1,
                                    top_k=0, repetition_penalty=1)
        ids = _prompt_ids(rt, text, settings.max_new_tokens)
        for answer, _ in _generate(rt, ids, settings, rt.pick(adapter_on, adapter), (stop_at,)):
            yield answer

    return fewshot_generate


def _prompt_ids(rt: Runtime, text: str, max_new_tokens: int) -> list[int]:
    """A free-form prompt's token ids, its start cut (with a warning) so that the answer fits
    the context window."""
    import gradio as gr

    check_cost(rt.tokenizer, text)
    ids = rt.tokenizer(text)["input_ids"]
    keep = rt.info.context_window - max_new_tokens
    if len(ids) > keep:
        gr.Warning(f"Prompt too long for the context window: its first {len(ids) - keep} "
                   "token(s) were cut.")
        ids = ids[-keep:]
    return ids


def compare_order(rt: Runtime) -> list[str]:
    """The Compare tab's output boxes: first adapter, base (the old API's order), the rest."""
    return [rt.choices[0], BASE] + rt.choices[1:-1] if rt.can_toggle else []


def compare_handler(rt: Runtime):
    def seconds(instruction, context="", max_new_tokens=128, *_rest):
        return gpu_seconds(prompt_tokens(rt.tokenizer, str(instruction or ""),
                                         str(context or "")),
                           _number(max_new_tokens, LIMITS.max_new_tokens[1]), passes=2)

    @gpu(seconds)
    @_user_errors
    def compare(instruction: str, context: str = "", max_new_tokens: int = 128,
                temperature: float = 0.0, chosen: list[str] | None = None):
        """Answer one instruction with the base model and the chosen adapters in one mixed
        batch, to see what each adapter changes; streams every answer.

        Args:
            instruction: the instruction (task) to answer.
            context: optional input/context for the instruction ("" for none).
            max_new_tokens: most tokens to generate per answer (1-1024).
            temperature: sampling temperature; 0 = greedy, so differences come from the adapter.
            chosen: the models that answer (served adapter names and "base"); leave it out
                for all of them.
        Returns:
            the answer of the first adapter, the answer of the base, a status line, then the
            answers of the further adapters.
        """
        if not rt.can_toggle:
            raise InputError(rt.toggle_explanation())
        text = check_message(instruction, "instruction")
        extra = check_message(context, "input") if (context or "").strip() else None
        settings = Settings.checked(max_new_tokens=max_new_tokens, temperature=temperature,
                                    top_p=0.9, top_k=50, repetition_penalty=1.1)
        order = compare_order(rt)
        names = [n for n in order if n in (order if chosen is None else chosen)]
        if not names:
            raise InputError("choose at least one model to answer")
        rows = [_compare_row(rt, name, text, extra) for name in names]
        texts, stats = dict.fromkeys(order, ""), {n: Stats() for n in names}
        for name, value in answer_together(rt, rows, settings, stats, fit_settings):
            texts[name] = value
            yield (*_compare_outputs(order, texts, "generating side by side in one batch…"),)
        status = "<br>".join(f"`{n}`: {speed_line(stats[n])}" for n in names)
        yield (*_compare_outputs(order, {n: texts[n] or (EMPTY_ANSWER if n in names else "")
                                         for n in order}, status),)

    return compare


def _compare_row(rt: Runtime, name: str, text: str, extra: str | None):
    """(name, prompt ids, stop markers) of one model's answer: its own template's prompt."""
    template = rt.template_for(name)
    ids = rt.tokenizer(template.render(text, extra),
                       add_special_tokens=template.add_special_tokens)["input_ids"]
    if len(ids) >= rt.info.context_window:
        raise InputError(f"the prompt is {len(ids)} tokens; the context window is "
                         f"{rt.info.context_window}. Shorten it.")
    return name, ids, template.stop_markers


def _compare_outputs(order, texts, status):
    values = [texts[n] for n in order]
    return values[:2] + [status] + values[2:]


def _number(value, default: int) -> int:
    """A slider value as an int for a GPU-time estimate (the handler validates it later)."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def about_markdown(rt: Runtime) -> str:
    """The About panel: what is loaded and how fast the last answer was."""
    info = rt.info
    if info.adapter:
        adapter = f"`{info.adapter}`" + (f" @ `{info.revision}`" if info.revision else "")
        url = rt.adapters[0].card_url if rt.adapters else info.card_url
        card = (f"[model card]({url})" if url else "no model card yet (`a3duck card --adapter "
                "FOLDER` writes README.md into the adapter folder)")
    else:
        adapter, card = "none (base model alone)", f"[base model](https://huggingface.co/{info.base_model})"
    last = rt.last_stats
    lines = [
        "### What this Space runs",
        f"- **Base model:** `{info.base_model}`",
        f"- **Adapter:** {adapter} · {card}",
        *([f"- **Adapters served ({len(rt.adapters)}, one batch can mix them all):**"]
          + ["  " + line for line in about_lines(rt.adapters)] if len(rt.adapters) > 1 else []),
        (f"- **Trainable (IA3) parameters:** {info.trainable_params:,} of {info.total_params:,} "
         f"({100 * info.trainable_params / max(1, info.total_params):.4f} %)"),
        (f"- **Instruction template:** `{info.template}` · context window "
         f"{info.context_window:,} tokens"),
        f"- **Weights:** {info.dtype} on {info.device}"
        + (" · adapter merged into the weights (--merge)" if info.merged else ""),
        f"- **Compare:** {'available' if rt.can_toggle else rt.toggle_explanation()}",
        "- **Last answer:** " + (speed_line(last) + (f", first token after "
                                 f"{last.first_token_seconds:.2f} s" if last.first_token_seconds
                                 is not None else "") if last else "none yet"),
    ]
    return "\n".join(lines + results_lines(rt.default_folder, info.base_model))
