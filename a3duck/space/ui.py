"""The Gradio Space (chat, few-shot prompts, compare adapters, about) and `a3duck serve`.

Layout only: what the buttons do is in :mod:`a3duck.space.handlers`. ``build_demo(runtime)``
returns the Blocks; ``launch(config)`` loads the model once and serves it behind a bounded
queue. ``app.py`` at the repository root is the Space's entry point; its flags (and those of
`a3duck serve`) are in :mod:`a3duck.space.serve`.
"""

from __future__ import annotations

import logging

from a3duck.evaluation.leaderboard import ARC
from a3duck.generation import LIMITS
from a3duck.space.about_results import domain_prompt
from a3duck.space.handlers import (
    CHAT_EXAMPLES,
    CUSTOM,
    STOP_AT,
    about_markdown,
    chat_handler,
    compare_handler,
    compare_order,
    fewshot_handlers,
)
from a3duck.space.runtime import Runtime, ServeConfig
from a3duck.space.scoring import TASK_TITLES, item_json, load_examples

log = logging.getLogger(__name__)
# the Compare tab's opening instruction when the adapter has no `a3duck compare` results
GENERIC_COMPARE_PROMPT = "Give three reasons to learn a second language."
DEFAULT_FORMAT = ARC.name  # the Few-shot tab opens on the leaderboard's first column
TITLE = "A3Duck: (IA)³ adapters, live"  # the app's name (app.py --help, a banner page)


def page_title(base_model: str) -> str:
    """The page's title, naming the base actually served (its last path part: a local folder's
    path stays off the page) rather than a model family it may not be."""
    from a3duck.files import public_name

    return f"A3Duck: (IA)³ adapters for {public_name(base_model).rsplit('/', 1)[-1]}, live"


# Below this many parameters the chat starts greedy: a small model sampled at 0.7 wanders off
# facts it knows (SmolLM2-135M: "capital of Peru?" -> Santiago at 0.7, Lima greedy).
SMALL_MODEL_PARAMS = 1_000_000_000


def chat_temperature(info) -> tuple[float, str]:
    """The chat's default temperature for the served base, and the slider label saying why."""
    if 0 < info.total_params < SMALL_MODEL_PARAMS:
        return 0.0, "Temperature (0 = greedy: the default for a small model, which wanders " \
                    "off facts when sampled)"
    return 0.7, "Temperature (0 = greedy)"


def _sliders(gr, max_new_tokens=256, temperature=0.7,
             temperature_label="Temperature (0 = greedy)"):
    """Unrendered: ChatInterface places them in its settings accordion."""
    lim = LIMITS
    return [
        gr.Slider(*lim.max_new_tokens, value=max_new_tokens, step=1, label="Max new tokens",
                  render=False),
        gr.Slider(*lim.temperature, value=temperature, step=0.05, label=temperature_label,
                  render=False),
        gr.Slider(*lim.top_p, value=0.9, step=0.01, label="Top-p", render=False),
        gr.Slider(*lim.top_k, value=50, step=1, label="Top-k (0 = off)", render=False),
        gr.Slider(*lim.repetition_penalty, value=1.1, step=0.01, label="Repetition penalty",
                  render=False),
    ]


def adapter_inputs(gr, rt: Runtime, elem_id: str, render_switch: bool = True):
    """The adapter picker (exactly the loaded names; no free text) and, hidden, the old API's
    "adapter on" switch (False = base), kept so that old clients still work."""
    switch = gr.Checkbox(value=True, label="Adapter on", visible=False, render=render_switch)
    picker = gr.Dropdown(rt.choices, value=rt.choices[0], label="Adapter",
                         allow_custom_value=False, interactive=len(rt.choices) > 1,
                         info=None if rt.can_toggle or not rt.info.adapter
                         else rt.toggle_explanation(), elem_id=elem_id)
    return switch, picker


def _chat_tab(gr, rt: Runtime):
    status = gr.Markdown("", elem_id="chat-status", render=False)
    switch, picker = adapter_inputs(gr, rt, "chat-adapter", render_switch=False)
    temperature, label = chat_temperature(rt.info)
    inputs = _sliders(gr, temperature=temperature, temperature_label=label) + [switch, picker]
    gr.ChatInterface(
        chat_handler(rt), additional_inputs=inputs, additional_outputs=[status],
        additional_inputs_accordion=gr.Accordion("Generation settings", open=False,
                                                 render=False),
        examples=[[m] for m in CHAT_EXAMPLES], cache_examples=False, api_name="chat",
        description=(f"Instruction template **{rt.template.name}** (the adapter's training "
                     f"format); answers stop at {_stops(rt.template)}."),
        fill_height=False,
    )
    status.render()  # under the conversation: speed of the answer, trimming warnings


def _stops(template) -> str:
    """Where an answer in ``template`` ends, in words."""
    if not template.stop_markers:
        return "the end of the model's turn (end-of-text)"
    return "end-of-text or at the next " + " or ".join(f"`{m}`" for m in template.stop_markers)


def _fewshot_tab(gr, rt: Runtime):
    formats = [(title, key) for key, title in TASK_TITLES.items()] + [("Your own examples",
                                                                        CUSTOM)]
    with gr.Row():
        task = gr.Dropdown(formats, value=DEFAULT_FORMAT, label="Format")
        item = gr.Dropdown([(f"item {i + 1}", i) for i in range(3)], value=0, label="Example")
        k = gr.Slider(0, 5, value=3, step=1, label="k shots (from the bundled examples)")
        adapter = adapter_inputs(gr, rt, "fewshot-adapter")
    item_box = gr.Code(item_json(DEFAULT_FORMAT, 0, 3), language="json", lines=8, max_lines=16,
                        label='Item: {"shots": [...], "doc": {...}} in the benchmark\'s format '
                              "(edit it to write your own k examples)")
    with gr.Row():
        score_btn = gr.Button("Score choices", variant="primary", elem_id="score-btn")
        gen_btn = gr.Button("Generate (free-form)", elem_id="fewshot-gen-btn")
        stop_at = gr.Radio([("blank line", STOP_AT[0]), ("end of line", STOP_AT[1])],
                           value=STOP_AT[0],
                           label="Free-form answer stops at")
        max_new = gr.Slider(1, 256, value=32, step=1, label="Max new tokens (free-form)")
    verdict = gr.Markdown(elem_id="fewshot-verdict")
    with gr.Row():
        probs = gr.Label(label="Choice probabilities (softmax over the scores the task's metric "
                         "ranks by)", elem_id="fewshot-probs", scale=2)
        table = gr.Dataframe(headers=["#", "choice", "log-lik", "per char", "prob", "gold"],
                             label="Scores: log-likelihood, per character, and the probability "
                                   "(softmax over what the task's metric ranks by)",
                             interactive=False, scale=3, wrap=True,
                             column_widths=["6%", "44%", "14%", "12%", "14%", "10%"])
    prompt = gr.Textbox(label="Full prompt (as the evaluation builds it; editable for "
                        "free-form generation)", lines=10, max_lines=30, elem_id="fewshot-prompt")
    answer = gr.Textbox(label="Free-form answer", lines=3, elem_id="fewshot-answer")

    _wire_fewshot(gr, rt, task, item, k, adapter, item_box, prompt, (score_btn, gen_btn),
                  (max_new, stop_at), (probs, table, verdict, answer))


def _wire_fewshot(gr, rt, task, item, k, adapter, item_box, prompt, buttons, gen_inputs,
                  outputs):
    """Events of the few-shot tab: picking an item fills the editor; the buttons run it."""
    ex = load_examples()
    probs, table, verdict, answer = outputs

    def pick(task_key, index, shots):
        if task_key == CUSTOM:
            return gr.Code(value="{}"), ex[CUSTOM][int(index or 0) % len(ex[CUSTOM])]["prompt"]
        return gr.Code(value=item_json(task_key, index, shots)), gr.Textbox()

    def items_for(task_key):
        entries = ex[CUSTOM] if task_key == CUSTOM else ex[task_key]["items"]
        names = [e["name"] if task_key == CUSTOM else f"item {i + 1}" for i, e in
                 enumerate(entries)]
        return gr.Dropdown([(n, i) for i, n in enumerate(names)], value=0)

    task.change(items_for, task, item, api_visibility="private").then(
        pick, [task, item, k], [item_box, prompt], api_visibility="private")
    gr.on([item.change, k.release], pick, [task, item, k], [item_box, prompt],
          api_visibility="private")
    # Results of another item, format or k never stay beside the new inputs.
    gr.on([task.change, item.change, k.release, item_box.input],
          lambda: (None, None, "", ""), None, [probs, table, verdict, answer],
          api_visibility="private", queue=False)
    score_fn, gen_fn = fewshot_handlers(rt)
    buttons[0].click(score_fn, [task, item_box, *adapter], [prompt, probs, table, verdict],
                     api_name="fewshot_score")
    max_new, stop_at = gen_inputs  # in the order of the handler's parameters
    buttons[1].click(gen_fn, [prompt, max_new, stop_at, *adapter], answer,
                     api_name="fewshot_generate")


def _compare_tab(gr, rt: Runtime):
    if not rt.can_toggle:
        gr.Markdown(f"**Compare is not available here.** {rt.toggle_explanation()}")
    gr.Markdown("The same prompt answered by the base model and the chosen adapters **side by "
                "side in one batch** (one model in memory; every row of the batch uses its own "
                "IA3 vectors, and other visitors' answers share it). Greedy decoding by default "
                "so that differences come from the adapters, not from sampling.")
    order = compare_order(rt)
    held_out = domain_prompt(rt.default_folder)
    with gr.Row():
        instruction = gr.Textbox(
            label="Instruction", lines=3, elem_id="cmp-instruction",
            value=held_out or GENERIC_COMPARE_PROMPT,
            info=("a held-out question of the adapter's own data (its `a3duck compare` "
                  "results)" if held_out else None))
        context = gr.Textbox("", label="Input (optional context)", lines=3)
    with gr.Row():
        chosen = gr.CheckboxGroup(order, value=order, label="Models", elem_id="cmp-models")
        max_new = gr.Slider(*LIMITS.max_new_tokens, value=128, step=1, label="Max new tokens")
        temperature = gr.Slider(*LIMITS.temperature, value=0.0, step=0.05,
                                label="Temperature (0 = greedy)")
        button = gr.Button("Answer side by side", variant="primary",
                           interactive=rt.can_toggle, elem_id="cmp-btn")
    boxes = {}
    with gr.Row():
        for i, name in enumerate(order or [rt.choices[0], "base"]):
            elem = {0: "cmp-adapter", 1: "cmp-base"}.get(i, f"cmp-{i}")
            boxes[name] = gr.Textbox(label=name if name != "base" else "base (no adapter)",
                                     lines=10, elem_id=elem)
    status = gr.Markdown(elem_id="cmp-status")
    values = list(boxes.values())
    button.click(compare_handler(rt), [instruction, context, max_new, temperature, chosen],
                 values[:2] + [status] + values[2:], api_name="compare")


def _about_tab(gr, rt: Runtime):
    about = gr.Markdown(about_markdown(rt), elem_id="about")
    with gr.Row():
        for i, adapter in enumerate(a for a in rt.adapters if a.ia3_plot):
            gr.Image(adapter.ia3_plot, label=f"What `{adapter.name}` learned: mean |scale - 1| "
                     "of the IA3 vectors per layer and module (a3duck inspect)",
                     interactive=False, elem_id="ia3-plot" if i == 0 else f"ia3-plot-{i}")
    refresh = gr.Button("Refresh", size="sm")
    refresh.click(lambda: about_markdown(rt), None, about, api_visibility="private", queue=False)
    return about


def build_demo(rt: Runtime):
    """The Space's Blocks for an already loaded runtime (no queue configured yet)."""
    import gradio as gr

    title = page_title(rt.info.base_model)
    with gr.Blocks(title=title) as demo:
        names = ", ".join(f"`{a.name}`" for a in rt.adapters) or "`none`"
        gr.Markdown(f"# {title}\nBase `{rt.info.base_model}` · "
                    f"adapter{'s' if len(rt.adapters) > 1 else ''} {names}"
                    + (" (merged)" if rt.info.merged else ""))
        if rt.unavailable:
            gr.Markdown("⚠️ **Not served** (the others are): " + "; ".join(
                f"`{name}`: {reason}" for name, reason in rt.unavailable), elem_id="banner")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                _chat_tab(gr, rt)
            with gr.Tab("Few-shot", id="fewshot"):
                _fewshot_tab(gr, rt)
            with gr.Tab("Compare", id="compare"):
                _compare_tab(gr, rt)
            with gr.Tab("About", id="about") as about_tab:
                about = _about_tab(gr, rt)
        about_tab.select(lambda: about_markdown(rt), None, about, api_visibility="private",
                         queue=False)
    return demo


def prepare(config: ServeConfig, banner_on_error: bool = False):
    """Load the model once and return the queued Blocks (bounded queue, limited concurrency).

    A model the Hub will not give (gated without a token, missing repo) raises ModelError with
    what to fix; with ``banner_on_error`` (a Space) the page shows that message instead and the
    runtime is None."""
    from a3duck.errors import ModelError
    from a3duck.space.access import access_problem, banner_demo

    try:
        problem = access_problem(config.base_model, config.adapter, config.revision)
        if problem:
            raise ModelError(problem.replace("**", ""))
        runtime = Runtime.load(config)
    except ModelError as exc:
        if not banner_on_error:
            raise
        log.error("the Space cannot load its model: %s", exc)
        return banner_demo(TITLE, problem or str(exc)), None
    demo = build_demo(runtime)
    demo.queue(max_size=config.queue_size, default_concurrency_limit=config.concurrency)
    return demo, runtime


def app_routes(runtime: Runtime | None, api=None) -> list:
    """The HTTP routes served beside the Space's page: each served local adapter's model card
    (``/card/NAME``) and, with ``api`` (a :class:`a3duck.serving.service.ApiConfig`), the OpenAI API
    at ``/v1`` on the runtime's model (it sets ``runtime.service``)."""
    from a3duck.space.card_page import card_routes

    if runtime is None:  # the banner page of a model that could not load
        return []
    routes = card_routes({a.name: a.card for a in runtime.adapters if a.card})
    if api is not None:
        from a3duck.adapter_names import default_name
        from a3duck.serving.openai_api import build_routes
        from a3duck.serving.service import service_for

        info = runtime.info
        merged = (default_name(info.adapter), info.template) if info.merged else None
        engine = None if runtime.scheduler.inline else runtime.scheduler.engine  # one engine
        runtime.service = service_for(runtime.multi, runtime.tokenizer, info.context_window,
                                      api, merged, engine)
        routes += build_routes(runtime.service)
    return routes


def launch(config: ServeConfig, banner_on_error: bool = False, api=None) -> None:
    """Load the model once, then serve until interrupted (``banner_on_error``: see prepare).
    The OpenAI API (:mod:`a3duck.serving`, configured by ``api``) is served at /v1 on the
    same port, through Gradio's FastAPI app (its ``app_kwargs`` routes)."""
    from a3duck.serving import body_limit

    check_port(config.host, config.port)  # before the model loads, not after
    demo, runtime = prepare(config, banner_on_error=banner_on_error)
    routes = app_routes(runtime, api)
    if runtime is not None and api is not None:
        log.info("OpenAI API at http://%s:%d/v1 (%s)", config.host, config.port,
                 "API key required" if api.api_key else "no API key")
    # quiet: Gradio's own start-up lines include a share-link hint that does not apply here
    # (the Space is published with `a3duck space push`); the address is said here instead.
    log.info("the Space: http://%s:%d (Ctrl-C stops it)%s", config.host, config.port,
             "; MCP server at /gradio_api/mcp/" if config.mcp else "")
    try:
        demo.launch(server_name=config.host, server_port=config.port, show_error=False,
                    mcp_server=config.mcp, quiet=True,
                    app_kwargs={"routes": routes, "middleware": [body_limit.middleware()]})
    except OSError:  # taken while the model loaded
        check_port(config.host, config.port)
        raise


def check_port(host: str, port: int) -> None:
    """ConfigError naming the fix when ``host:port`` cannot be listened on."""
    import socket

    from a3duck.errors import ConfigError

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): another "
                          "server probably uses it; pass --port N (or set GRADIO_SERVER_PORT) "
                          "or stop the other server") from None
