"""`a3duck push` (and push_to_hub.py): stage, check and upload an adapter folder to the Hub.

The upload is exactly the staged folder: an allow-list of adapter files copied from the adapter
folder (regular files inside it only: no symbolic links, no folders beyond the allow-list), the
model card (rendered unless the folder already has an a3duck card) and, with
``--include-merged``, a merged standalone model under ``merged/``. Every staged text file has its
local paths replaced by their file names (listed in a note). The repo id is checked before
anything is staged; the staged folder is checked before anything is sent (adapter loadable, base
recorded as a Hub id, no local paths or tokens in any text file), then uploaded as ONE commit;
transient errors are retried with backoff. A temporary staging folder is removed afterwards
(dry runs included). The token comes from ``HF_TOKEN`` or the Hub login and is never printed;
``HF_ENDPOINT`` selects a Hub-compatible server.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import time
from pathlib import Path

import yaml

from a3duck import adapter_folder as af
from a3duck.errors import A3DuckError
from a3duck.files import atomic_write_text, find_local_paths, is_hub_id, scrub_local_paths
from a3duck.publish import readme as readmes
from a3duck.publish.card import check_repo_id, render_card
from a3duck.scratch import temp_folder

# Written by the tokenizers library (no path fields); a vocabulary entry that looks like a path
# must not be rewritten, or the published tokenizer would differ from the trained one.
VOCABULARIES = (af.VOCABULARY,)
TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
TOKEN_RE = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")


class HubError(A3DuckError):
    """Staging, checking or uploading failed; the message says what to fix."""


@contextlib.contextmanager
def staging_folder(staging_dir: str | None):
    """``--staging-dir`` (kept; must be empty or absent) or a temporary folder (removed)."""
    if staging_dir is None:
        with temp_folder("push") as tmp:
            yield tmp
        return
    out = Path(staging_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HubError(f"staging folder {out} is not empty: pass an empty or new --staging-dir")
    out.mkdir(parents=True, exist_ok=True)
    yield out


def require_token() -> str:
    """The write token from HF_TOKEN or the Hub login; HubError (naming the fix) if none."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login` "
                       "(nothing was sent to the Hub)")
    return token


def stage(adapter_dir: str | Path, out: str | Path, repo_id: str, *, lang: str = "en",
          include_merged: bool = False, overwrite_readme: bool = False) -> list[str]:
    """Fill the empty folder ``out`` with exactly what will be uploaded; returns notes for the
    user (files left out, local paths replaced, a hand-written README kept). The adapter
    folder itself is never changed."""
    check_repo_id(repo_id)
    adapter_dir, out = Path(adapter_dir), Path(out)
    af.require(adapter_dir, HubError)
    notes = []
    for rel, why in _uploadable(adapter_dir):
        if why:
            notes.append(f"not uploaded: {rel} ({why})")
            continue
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(adapter_dir / rel, out / rel)  # contents only: no modes, no links
    readme = out / af.CARD
    found = readmes.kind(readme)
    if found == "hand-written" and not overwrite_readme:
        notes.append(f"{af.CARD} is hand-written: uploaded as it is (pass --overwrite-readme "
                     "to upload a3duck's card instead)")
    elif found != "a3duck":  # none yet, PEFT's placeholder, or asked to replace: render one
        atomic_write_text(readme, str(render_card(adapter_dir, repo_id=repo_id, lang=lang)))
    if include_merged:
        from a3duck.models import merge_adapter

        merge_adapter(str(adapter_dir), out / "merged")
    return notes + _scrub_staged(out)


def _uploadable(adapter_dir: Path) -> list[tuple[str, str | None]]:
    """(relative path, None or why it is left out) for every allow-listed name in the folder."""
    root = adapter_dir.resolve()
    found = []
    for src in sorted(adapter_dir.rglob("*")):
        rel = src.relative_to(adapter_dir).as_posix()
        if not _allowed(rel):
            continue
        if src.is_symlink() or not src.resolve().is_relative_to(root):
            found.append((rel, "a symbolic link; copy the file itself into the adapter folder"))
        elif src.is_file():
            found.append((rel, None))
    return found


def _allowed(rel: str) -> bool:
    """``rel`` matches an allow-list entry part by part (``plots/*.png`` is one level only)."""
    parts = rel.split("/")
    return any(len(pat.split("/")) == len(parts) and all(
        fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pat.split("/"), strict=True))
        for pat in af.UPLOAD_FILES)


def _scrub_staged(out: Path) -> list[str]:
    """Replace local paths by their file names in every staged text file; one note per file."""
    notes = []
    for path, text in _text_files(out):
        if path.name in VOCABULARIES:
            continue
        scrubbed, found = scrub_local_paths(text)
        if found:
            atomic_write_text(path, scrubbed)
            notes.append(f"local path(s) replaced by their file names in "
                         f"{path.relative_to(out).as_posix()}: {', '.join(found[:3])}"
                         + (f" and {len(found) - 3} more" if len(found) > 3 else ""))
    return notes


def check_staged(staged: Path, token: str | None = None) -> None:
    """Raise HubError listing every problem that makes ``staged`` unfit to publish."""
    problems = _check_adapter(staged) + _check_card(staged) + check_text_files(staged, token)
    if problems:
        raise HubError(f"staged folder {staged} is not ready to publish: " + "; ".join(problems))


def _check_adapter(staged: Path) -> list[str]:
    from peft import PeftConfig

    problems = [f"{name} is missing" for name in (af.ADAPTER_WEIGHTS, af.ADAPTER_CONFIG)
                if not (staged / name).is_file()]
    if problems:
        return problems
    try:
        af.tensors(staged)
    except A3DuckError as exc:
        return [str(exc)]
    try:
        PeftConfig.from_pretrained(str(staged))
        base = af.recorded_base(staged) or ""
    except Exception as exc:  # noqa: BLE001 - any failure here means "not loadable"
        return [f"{af.ADAPTER_CONFIG} does not load ({type(exc).__name__}: {exc})"]
    if not is_hub_id(base) or Path(base).expanduser().exists():
        problems.append(f"{af.ADAPTER_CONFIG} records {af.RECORDED_BASE}={base!r}, which is "
                        "not a Hub id (owner/name); retrain from a Hub id or fix the field")
    return problems


def _check_card(staged: Path) -> list[str]:
    from huggingface_hub import ModelCard

    try:
        card = ModelCard.load(staged / af.CARD)
    except Exception as exc:  # noqa: BLE001 - an unparsable card is one problem to report
        return [f"{af.CARD} does not parse as a model card ({exc})"]
    base = af.recorded_base(staged)
    problems = []
    if card.data.base_model != base:
        problems.append(f"the card names base_model={card.data.base_model!r} but the adapter "
                        f"was trained on {base!r}; re-render it with `a3duck card` (or, for "
                        "a hand-written README, fix its front matter or pass "
                        "--overwrite-readme)")
    if card.data.library_name != "peft":
        problems.append("the card's library_name is not 'peft'")
    return problems


def _text_files(folder: Path, binaries: bool = False):
    """(path, text) of every UTF-8 file under ``folder``; with ``binaries``, also the text that
    PNGs and safetensors files carry (:mod:`a3duck.publish.binary_text`); others skipped."""
    from a3duck.publish.binary_text import embedded_text

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = embedded_text(path) if binaries else None
            if text:
                yield path, text


def check_text_files(staged: Path, token: str | None, source_dir: str | None = None
                     ) -> list[str]:
    """Tokens and local paths in any text file. Under ``source_dir`` (vendored source code,
    whose strings name example paths such as ~/.cache) only this machine's paths count."""
    problems = []
    for path, text in _text_files(staged, binaries=True):
        rel = path.relative_to(staged).as_posix()
        if (token and token in text) or TOKEN_RE.search(text):
            problems.append(f"{rel} contains what looks like an access token")
        if path.name in VOCABULARIES:
            found = []
        elif source_dir and rel.startswith(source_dir + "/"):
            found = _own_paths(text)
        else:
            found = find_local_paths(text)
        if found:
            problems.append(f"{rel} contains local path(s) {', '.join(found[:3])}")
    return problems


def _own_paths(text: str) -> list[str]:
    """This machine's home and working folders, wherever they sit in ``text``."""
    own = {str(Path.home()), str(Path.cwd())} - {"/", ""}
    return sorted(p for p in own if len(p) > 4 and p in text)


def describe(staged: Path, notes: list[str] = ()) -> str:
    """The staged folder, its files with sizes and the card's metadata, for people to read."""
    from huggingface_hub import ModelCard

    lines = [f"staged folder: {staged}", *(f"note: {n}" for n in notes), "files:"]
    files = sorted(p for p in staged.rglob("*") if p.is_file())
    for p in files:
        lines.append(f"  {p.relative_to(staged).as_posix():<40} {p.stat().st_size:>14,} bytes")
    lines.append(f"  total: {len(files)} files, {sum(p.stat().st_size for p in files):,} bytes")
    meta = ModelCard.load(staged / af.CARD).data.to_dict()
    lines += ["card metadata:", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)]
    return "\n".join(lines)


def upload(staged: Path, repo_id: str, token: str, *, private: bool = False,
           revision: str | None = None, create_pr: bool = False,
           commit_message: str = "Upload IA3 adapter with a3duck", retries: int = 3,
           wait: float = 2.0, repo_type: str = "model", space_sdk: str | None = None,
           delete_patterns: str | None = None) -> str:
    """Create the repo if needed and upload ``staged`` as one commit; returns the commit URL
    (or the pull request URL). On failure, says whether the remote changed. A Space passes
    ``repo_type="space"`` and its SDK; ``delete_patterns="*"`` makes the remote exactly the
    staged folder (remote files no longer staged are deleted in the same commit)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    branch = revision or "main"
    kind = {"repo_type": repo_type}
    try:
        existed = _retry(lambda: api.repo_exists(repo_id, **kind), retries, wait)
        _retry(lambda: api.create_repo(repo_id, private=private, exist_ok=True,
                                       space_sdk=space_sdk, **kind), retries, wait)
        if branch != "main" and not create_pr:
            _retry(lambda: api.create_branch(repo_id, branch=branch, exist_ok=True, **kind),
                   retries, wait)
        before = _retry(lambda: api.repo_info(repo_id, revision=branch, **kind).sha, retries,
                        wait)
    except Exception as exc:  # noqa: BLE001 - nothing was uploaded yet: say why and what to do
        raise HubError(f"push to {repo_id} failed before any upload: "
                       f"{explain(exc, repo_id, token)}") from None
    try:
        info = _retry(lambda: api.upload_folder(
            folder_path=str(staged), repo_id=repo_id, revision=branch, create_pr=create_pr,
            commit_message=commit_message, delete_patterns=delete_patterns, **kind),
            retries, wait)
    except Exception as exc:  # noqa: BLE001 - reported with the state of the remote
        raise HubError(_failure_message(api, repo_id, branch, before, existed, exc,
                                        repo_type)) from None
    return info.pr_url or info.commit_url


def explain(exc: BaseException, repo_id: str, token: str | None = None) -> str:
    """One line for a failed Hub call: the HTTP status (or network failure) and what to do;
    never the token."""
    from huggingface_hub.errors import HfHubHTTPError

    status = getattr(getattr(exc, "response", None), "status_code", None)
    first = (str(exc).splitlines() or [""])[0]
    if isinstance(exc, HfHubHTTPError) and status in HTTP_ADVICE:
        text = f"HTTP {status}: {HTTP_ADVICE[status].format(repo=repo_id)}"
    elif isinstance(exc, HfHubHTTPError) and status is not None:
        text = f"HTTP {status} from the Hub ({first}); try again later"
    elif _transient(exc):
        endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        text = (f"cannot reach {endpoint} ({type(exc).__name__}): check the network connection "
                "(or HF_ENDPOINT), then push again")
    else:
        text = f"{type(exc).__name__}: {first}"
    text = TOKEN_RE.sub("hf_***", text)
    return text.replace(token, "***") if token else text


HTTP_ADVICE = {
    401: "the Hub rejected the token; create a write token at "
         "https://huggingface.co/settings/tokens and set HF_TOKEN or run `hf auth login`",
    403: "the token may not write to {repo}; use a token with write access to that namespace, "
         "or pick a --repo-id in your own namespace",
    404: "{repo} or its branch was not found; check --repo-id and --revision",
}


def _failure_message(api, repo_id, branch, before, existed, exc, repo_type="model") -> str:
    reason = explain(exc, repo_id, getattr(api, "token", None))
    try:
        after = api.repo_info(repo_id, revision=branch, repo_type=repo_type).sha
    except Exception:  # noqa: BLE001 - the server may be down; say we could not verify
        after = None
    if after == before:
        state = f"nothing was committed: {repo_id}@{branch} is unchanged (commit {before[:12]})"
        if not existed:
            state += "; the repo itself was created (empty) by this push"
    elif after is None:
        state = f"could not re-read {repo_id}@{branch} to confirm it is unchanged"
    else:
        state = f"{repo_id}@{branch} moved from {before[:12]} to {after[:12]}: check it"
    return f"upload to {repo_id} failed ({reason}); {state}"


def _retry(fn, retries: int, wait: float):
    """Call ``fn``; on transient errors (network, 408/429/5xx gateway) retry with backoff."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == retries or not _transient(exc):
                raise
            time.sleep(wait * 2 ** attempt)
    raise AssertionError("unreachable")


def _transient(exc: BaseException) -> bool:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code in TRANSIENT_STATUS
    return isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError))
