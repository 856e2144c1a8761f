"""Can this Space read its models? One clear message instead of a crash log when it cannot.

Before loading, :func:`access_problem` asks the Hub (``auth_check``) whether the base model and
the adapter can be read with the token the process has (``HF_TOKEN``; on a Space, a secret of
that name). A gated base without access, or an adapter repo that does not exist, gives a
message saying what to set and where; :func:`banner_demo` shows it as the whole page, so the
Space starts (and can be fixed from its settings) instead of crashing at import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

SECRETS_HELP = ("the Space's **Settings → Variables and secrets → New secret** (name `HF_TOKEN`, "
                "value a read token from https://huggingface.co/settings/tokens); the Space "
                "restarts by itself")


def _gated_message(role: str, repo: str) -> str:
    if os.environ.get("HF_TOKEN"):
        fix = (f"The `HF_TOKEN` secret is set, but its account has no access: accept the "
               f"license at https://huggingface.co/{repo} with the account that owns the token, "
               "or replace the token in")
        return f"**The {role} `{repo}` is gated and this Space cannot read it.** {fix} " + \
            SECRETS_HELP + "."
    return (f"**The {role} `{repo}` is gated and this Space has no token to read it.** Accept "
            f"its license at https://huggingface.co/{repo}, then add a token of that account "
            f"as a secret named `HF_TOKEN` in {SECRETS_HELP}.")


def _missing_message(role: str, repo: str) -> str:
    return (f"**The {role} repo `{repo}` does not exist on the Hub (or is private).** Fix the id "
            "in `a3duck_space.yaml` (or set the variable `A3DUCK_ADAPTER` / "
            "`A3DUCK_BASE_MODEL` in the Space's **Settings → Variables and secrets**); for a "
            f"private repo, add a token that can read it as a secret named `HF_TOKEN` in "
            f"{SECRETS_HELP}.")


def _check(role: str, repo: str | None) -> str | None:
    """The message for ``repo`` (a Hub id), or None when it is readable or not on the Hub."""
    from huggingface_hub import auth_check
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    from a3duck.files import is_hub_id

    if not repo or not is_hub_id(repo) or Path(repo).expanduser().exists():
        return None
    try:
        auth_check(repo)
    except GatedRepoError:
        return _gated_message(role, repo)
    except RepositoryNotFoundError:
        return _missing_message(role, repo)
    except Exception as exc:  # noqa: BLE001 - network trouble: loading will report it
        log.info("could not check access to %s (%s)", repo, type(exc).__name__)
    return None


def access_problem(base_model: str | None, adapter: str | None,
                   revision: str | None = None) -> str | None:
    """What stops the Space from reading its base model or adapter, or None."""
    from a3duck import adapter_folder
    from a3duck.hub_access import hub_offline

    if hub_offline():
        return None
    problem = _check("adapter", adapter)
    if problem or base_model:
        return problem or _check("base model", base_model)
    if adapter:  # no base given: the adapter's recorded base is the one that will load
        recorded = adapter_folder.recorded_base(adapter_folder.resolve(adapter, revision))
        return _check("base model", recorded)
    return None


def banner_demo(title: str, message: str):
    """A page that only says what to fix (the model could not be loaded)."""
    import gradio as gr

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}")
        gr.Markdown(f"⚠️ {message}", elem_id="banner")
    return demo
