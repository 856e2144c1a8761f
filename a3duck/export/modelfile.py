"""The Ollama ``Modelfile`` next to an exported GGUF: ``FROM``, a ``TEMPLATE`` in Ollama's Go
template syntax for the adapter's prompt template, its stop strings and a3duck's chat defaults (generation.Settings: what
`a3duck chat` and the Space sample with).

A chat template (Jinja) is not translated by parsing it: it is *rendered* on marker strings and
the text around the markers becomes the Go template's literal parts (system block, user and
assistant turns, the generation prompt, a default system prompt the template adds by itself).
Templates whose pieces do not compose that way (rare) get no ``TEMPLATE`` line and a warning:
Ollama then falls back on the chat template stored in the GGUF.
"""

from __future__ import annotations

import logging

from a3duck.generation import Settings
from a3duck.prompts import ALPACA, CHAT_NAME

log = logging.getLogger(__name__)

S, U, A, U2 = "\x01SYS\x01", "\x01USER\x01", "\x01ANSWER\x01", "\x01USER2\x01"
_LAST = "{{ $last := eq (len (slice $.Messages $i)) 1 }}"


def modelfile(gguf_name: str, template_name: str, tokenizer) -> str:
    """The Modelfile text for ``gguf_name`` (a file beside it)."""
    if template_name == CHAT_NAME:
        parts = chat_parts(tokenizer)
        stops = [tokenizer.eos_token] if tokenizer.eos_token else []
        body, system = (go_chat_template(parts), parts["default_system"]) if parts else (None,
                                                                                        None)
    else:
        body, system, stops = go_alpaca_template(), None, list(ALPACA.stop_markers)
    lines = [f"FROM ./{gguf_name}", ""]
    if body is not None:
        lines += [f'TEMPLATE """{body}"""', ""]
    if system:
        lines += [f'SYSTEM """{system}"""', ""]
    lines += [f"PARAMETER stop {_quote(s)}" for s in stops]
    d = Settings()
    lines += [f"PARAMETER temperature {d.temperature}", f"PARAMETER top_p {d.top_p}",
              f"PARAMETER top_k {d.top_k}", f"PARAMETER repeat_penalty {d.repetition_penalty}",
              f"PARAMETER num_predict {d.max_new_tokens}"]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render(tokenizer, messages, generation: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=generation)


def chat_parts(tokenizer) -> dict[str, str] | None:
    """The literal pieces of the tokenizer's chat template, or None if they do not compose."""
    sys_, user, ans = ({"role": r, "content": c} for r, c in
                       (("system", S), ("user", U), ("assistant", A)))
    try:
        gen = _render(tokenizer, [sys_, user], True)  # a S b U g
        no_gen = _render(tokenizer, [sys_, user], False)  # a S b U user_suffix
        one = _render(tokenizer, [sys_, user, ans], False)  # ... A d
        two = _render(tokenizer, [sys_, user, ans, {"role": "user", "content": U2}], True)
        alone = _render(tokenizer, [user], True)  # y U g
        a, rest = gen.split(S)
        b, g = rest.split(U)
        user_suffix = no_gen.split(U)[1]
        d = one.split(A)[1]
        e = two.split(A)[1].split(U2)[0]
        y = alone.split(U)[0]
    except ValueError:  # a marker missing or repeated
        return _untranslatable()
    if not (g.startswith(user_suffix) and e.startswith(d) and b.endswith(e[len(d):])):
        return _untranslatable()
    user_prefix = e[len(d):]
    sys_suffix = b[: len(b) - len(user_prefix)]
    default = None
    if y != user_prefix:
        if not (y.startswith(a) and y.endswith(sys_suffix + user_prefix)):
            return _untranslatable()
        default = y[len(a): len(y) - len(sys_suffix + user_prefix)]
    return {"sys_prefix": a, "sys_suffix": sys_suffix, "user_prefix": user_prefix,
            "user_suffix": user_suffix, "assistant_prefix": g[len(user_suffix):],
            "assistant_suffix": d, "default_system": default}


def _untranslatable() -> None:
    log.warning("the chat template could not be written in Ollama's template syntax; the "
                "Modelfile has no TEMPLATE (Ollama uses the template stored in the GGUF)")
    return None


def go_chat_template(p: dict[str, str]) -> str:
    """Ollama's ``.Messages`` form: system block, each turn, the generation prompt. One line,
    no ``{{-`` trimming: the literal parts keep their own newlines."""
    return ("{{ if .System }}" + p["sys_prefix"] + "{{ .System }}" + p["sys_suffix"] + "{{ end }}"
            "{{ range $i, $_ := .Messages }}" + _LAST
            + '{{ if eq .Role "user" }}' + p["user_prefix"] + "{{ .Content }}" + p["user_suffix"]
            + '{{ else if eq .Role "assistant" }}' + p["assistant_prefix"] + "{{ .Content }}"
            + p["assistant_suffix"] + "{{ end }}"
            + '{{ if and (ne .Role "assistant") $last }}' + p["assistant_prefix"] + "{{ end }}"
            "{{ end }}")


def go_alpaca_template() -> str:
    """The Alpaca prompt (a3duck's ``alpaca`` template, no-input form) per user turn; answers
    follow ``### Response:`` directly and are separated from the next turn by a blank line."""
    head, tail = ALPACA.prompt_no_input.split("{instruction}")
    return ("{{ if .System }}{{ .System }}\n\n{{ end }}{{ range $i, $_ := .Messages }}" + _LAST
            + '{{ if eq .Role "user" }}' + head + "{{ .Content }}" + tail
            + '{{ else if eq .Role "assistant" }}{{ .Content }}{{ if not $last }}\n\n{{ end }}'
            "{{ end }}{{ end }}")
