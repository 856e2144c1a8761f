"""Hub access for the core: offline mode, snapshot downloads, and why the Hub said no.

Every download of a base model or adapter goes through :func:`snapshot`; every "the Hub did not
provide X" message is built by :func:`hub_problem` from the error's kind.
"""

from __future__ import annotations

import os


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def looks_like_path(name: str) -> bool:
    """A name that can only mean a local folder (never a Hub id)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep + os.sep in name


def snapshot(repo_id: str, revision: str | None = None, allow_patterns=None) -> str:
    """A local folder with the repo's files (the HF cache first; only it when offline)."""
    from huggingface_hub import snapshot_download

    return snapshot_download(
        repo_id, revision=revision, allow_patterns=allow_patterns, local_files_only=hub_offline()
    )


def hub_problem(repo_id: str, revision: str | None, exc: Exception) -> str:
    """Why the Hub did not provide ``repo_id``, and what to do, from the error's kind (its text
    is not repeated: it can name library arguments a user cannot pass)."""
    from huggingface_hub import errors as hub

    at = f" at revision {revision!r}" if revision else ""
    login = "log in with `hf auth login` or set HF_TOKEN"
    if isinstance(exc, hub.GatedRepoError):  # a subclass of RepositoryNotFoundError
        return f"{repo_id} is gated on the Hub: accept its terms on its page, then {login}"
    if isinstance(exc, hub.RepositoryNotFoundError):
        return f"there is no Hub repo {repo_id} (check the id; for a private repo, {login})"
    if isinstance(exc, hub.RevisionNotFoundError):
        return f"{repo_id} has no revision {revision!r} on the Hub (a branch, tag or commit)"
    if isinstance(exc, hub.LocalEntryNotFoundError):
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hub could not be reached"
        return f"{repo_id}{at} is not in the local Hugging Face cache and {why}"
    if isinstance(exc, hub.HFValidationError):
        return f"{repo_id!r} is neither a local folder nor a valid Hub repo id (OWNER/NAME)"
    return f"the Hugging Face Hub did not provide {repo_id}{at} ({type(exc).__name__})"
