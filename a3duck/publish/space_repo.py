"""`a3duck space push`: stage, check and upload a minimal Hugging Face Space serving adapters.

The Space repository holds only what the app needs: ``app.py`` (a3duck/space/app.py, the same
file as the repository's app.py), ``a3duck_space.yaml`` (base, adapters, revision, MCP),
``requirements.txt`` (a3duck's dependencies pinned to the versions installed here, plus
``spaces`` and Gradio's MCP extra), ``README.md`` (the Space's front matter) and a3duck itself,
vendored under ``a3duck/`` because it is not on PyPI. The staged folder is checked (no token, no
local path, the app imports from the folder alone) and uploaded in one commit with
:func:`a3duck.publish.hub.upload` (same token rules, retries and failure report as ``push``);
remote files that are no longer staged are deleted in that commit, and an unchanged Space gets
no commit at all. A dry run stages from the ids as given, without contacting the Hub.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from a3duck.files import atomic_write_text, is_hub_id
from a3duck.hub_defaults import SPACE_ADAPTER, SPACE_BASE_MODEL, SPACE_CONFIG_FILE
from a3duck.publish.hub import HubError, check_text_files

ZERO_GPU = "zero-a10g"  # huggingface_hub.SpaceHardware.ZERO_A10G: ZeroGPU (H200 slices today)
# Python of the Space image: ZeroGPU documents 3.10.13 (hub-docs spaces-zerogpu.md); a3duck is
# developed on 3.11, which dedicated hardware runs.
PYTHON_VERSION = {ZERO_GPU: "3.10"}
DEFAULT_PYTHON = "3.11"
VENDORED = "a3duck"
VENDOR_PATTERNS = ("*.py", "*.json", "*.yaml", "*.jinja", "py.typed")
# Needed by the Space beyond a3duck's declared dependencies: ZeroGPU's decorator, Gradio's MCP
# server (its extra caps pydantic at 2.12.5: pinned here to the version it resolved to), and
# protobuf, which converts Llama-2's SentencePiece model file to a fast tokenizer.
SPACE_REQUIREMENTS = ("spaces", "mcp", "pydantic", "protobuf")
EXTRAS = {"gradio": "gradio[mcp]"}


@dataclass
class SpaceSpec:
    """What the Space serves and where it goes."""

    space_id: str
    base_model: str = SPACE_BASE_MODEL
    adapters: list[str] = field(default_factory=lambda: [SPACE_ADAPTER])
    revision: str | None = None  # adapter revision the app loads
    hardware: str = ZERO_GPU
    mcp: bool = True

    def check(self) -> None:
        from huggingface_hub import SpaceHardware

        bad = [problem for name, value in
               [("--space-id", self.space_id), ("--base-model", self.base_model)]
               + [("--adapter", a) for a in self.adapters]
               if (problem := _not_a_hub_id(name, value))]
        names = sorted(h.value for h in SpaceHardware)
        if self.revision and len(self.adapters) > 1:
            bad.append("--revision names one adapter's revision; give one --adapter with it")
        if self.hardware not in names:
            bad.append(f"--hardware {self.hardware!r} is not a Space hardware ({', '.join(names)})")
        if bad:
            raise HubError("; ".join(bad))


def load_line(spec: SpaceSpec, defaults: bool) -> str:
    """What the pushed Space will load, in one sentence (``defaults``: the user named neither
    --base-model nor --adapter, so the published recipe's models are used)."""
    adapters = ", ".join(spec.adapters) + (f" @ {spec.revision}" if spec.revision else "")
    line = (f"the Space will load {spec.base_model} with adapter{'s' * (len(spec.adapters) > 1)}"
            f" {adapters} on {spec.hardware}")
    if defaults:
        line += (" (the published defaults: pass --base-model and --adapter OWNER/NAME for the "
                 "adapter you pushed)")
    return line


def _not_a_hub_id(flag: str, value: str) -> str | None:
    """Why ``value`` cannot be given to a Space, and what to give instead; None when it can. A
    local folder is refused even when its path looks like OWNER/NAME (``out/adapter``)."""
    if flag != "--space-id" and value and Path(value).expanduser().exists():
        how = ("upload it first (`a3duck push FOLDER --repo-id OWNER/NAME`)" if flag ==
               "--adapter" else "upload it to the Hub first")
        return (f"{flag} {value!r} is a local folder, but a Space loads its models "
                f"from the Hub: {how}, then pass {flag} OWNER/NAME")
    return None if is_hub_id(value) else f"{flag} {value!r} is not a Hub id (owner/name)"


def requirements() -> list[str]:
    """a3duck's dependencies and the Space's extras, pinned to the installed versions."""
    from packaging.requirements import Requirement

    names = [Requirement(r).name for r in metadata.requires("a3duck") or []
             if "extra ==" not in r]
    lines = []
    for name in dict.fromkeys([*names, *SPACE_REQUIREMENTS]):
        version = metadata.version(name).split("+")[0]  # 2.13.0+cpu -> 2.13.0 (any build)
        lines.append(f"{EXTRAS.get(name, name)}=={version}")
    return lines


def front_matter(spec: SpaceSpec, preload: list[str]) -> dict:
    import gradio

    n = len(spec.adapters)
    short = (f"{n} IA3 adapters of one base, live" if n > 1 else
             f"IA3 adapter {spec.adapters[0]} live" if n else f"{spec.base_model} live")
    meta = {
        "title": spec.space_id.split("/")[-1], "emoji": "🦆", "colorFrom": "yellow",
        "colorTo": "green", "sdk": "gradio", "sdk_version": gradio.__version__,
        "python_version": PYTHON_VERSION.get(spec.hardware, DEFAULT_PYTHON),
        "app_file": "app.py", "pinned": False, "license": "mit",
        "suggested_hardware": spec.hardware, "short_description": short[:60],
        "models": [spec.base_model, *spec.adapters], "preload_from_hub": preload,
        "tags": ["a3duck", "ia3", "peft"] + (["mcp-server"] if spec.mcp else []),
    }
    if spec.hardware != ZERO_GPU:
        meta["startup_duration_timeout"] = "1h"  # a 13B base takes a while to load
    return meta


def preload_entries(spec: SpaceSpec, api=None) -> tuple[list[str], list[str]]:
    """(preload_from_hub lines, notes). With the Hub: the base's loadable files only, and a
    gated base left out (it downloads at start with the HF_TOKEN secret). Without: whole repos."""
    from huggingface_hub.errors import RepositoryNotFoundError

    from a3duck.models import BASE_FILE_PATTERNS

    adapters = list(spec.adapters)
    if api is None:
        return [spec.base_model, *adapters], [
            "dry run: preload_from_hub names whole repos (the Hub is not asked which files the "
            "base holds; a real push preloads only its loadable files, and leaves a gated base "
            "to download at start)"]
    missing = [a for a in adapters if not api.repo_exists(a)]
    try:
        info = api.model_info(spec.base_model)
    except RepositoryNotFoundError:
        missing.insert(0, spec.base_model)
    if missing:
        raise HubError(f"not on the Hub (or not readable with this token): {', '.join(missing)}"
                       "; push the adapter first (`a3duck push`) or fix the id")
    if info.gated:
        return adapters, [(f"{spec.base_model} is gated: not preloaded; the Space downloads "
                           "it at start with its HF_TOKEN secret")]
    files = [s.rfilename for s in info.siblings or []
             if any(fnmatch.fnmatch(s.rfilename, p) for p in BASE_FILE_PATTERNS)]
    return [f"{spec.base_model} {','.join(files)}" if files else spec.base_model,
            *adapters], []


def space_readme(spec: SpaceSpec, preload: list[str]) -> str:
    meta = yaml.safe_dump(front_matter(spec, preload), sort_keys=False, allow_unicode=True)
    models = "\n".join(f"- [`{m}`](https://huggingface.co/{m})" for m in
                       [spec.base_model, *spec.adapters])
    return (f"---\n{meta}---\n\n# {spec.space_id.split('/')[-1]}\n\nAn (IA)³ adapter served by "
            "[a3duck](https://github.com/DopeorNope-Lee/a3duck): chat, few-shot scoring as the "
            f"Open LLM Leaderboard does it, base vs adapter.\n\n{models}\n\n"
            "Staged by `a3duck space push`; `a3duck/` is a vendored copy of the toolkit. "
            "A gated base needs a secret `HF_TOKEN` (Settings → Variables and secrets)."
            + (f"\n\nMCP server: `{space_host(spec.space_id)}/gradio_api/mcp/`." if spec.mcp
               else "") + "\n")


def space_host(space_id: str) -> str:
    """The address a Space is served at (``owner/my_space`` -> https://owner-my-space.hf.space)."""
    return "https://" + re.sub(r"[^a-z0-9]+", "-", space_id.lower()) + ".hf.space"


def stage_space(spec: SpaceSpec, out: str | Path, api=None) -> tuple[Path, list[str]]:
    """Write the Space repository into ``out``, a new or empty folder (the command's comes from
    :func:`a3duck.publish.hub.staging_folder`); returns (folder, notes)."""
    spec.check()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise HubError(f"staging folder {out} is not empty: pass an empty or new --staging-dir")
    out.mkdir(parents=True, exist_ok=True)
    package = Path(__file__).resolve().parents[1]
    for src in sorted(package.rglob("*")):
        rel = src.relative_to(package)
        if src.is_file() and "__pycache__" not in rel.parts and any(
                fnmatch.fnmatch(src.name, p) for p in VENDOR_PATTERNS):
            (out / VENDORED / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / VENDORED / rel)
    shutil.copyfile(package / "space" / "app.py", out / "app.py")
    preload, notes = preload_entries(spec, api)
    config = {"base_model": spec.base_model, "adapters": spec.adapters,
              "revision": spec.revision, "mcp": spec.mcp}
    atomic_write_text(out / SPACE_CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
    atomic_write_text(out / "requirements.txt", "\n".join(requirements()) + "\n")
    atomic_write_text(out / "README.md", space_readme(spec, preload))
    return out, notes


def check_space(staged: Path, spec: SpaceSpec, token: str | None = None) -> None:
    """Raise HubError listing every problem that keeps ``staged`` from running as a Space."""
    problems = [f"{name} is missing" for name in ("app.py", "requirements.txt", "README.md",
                                                   SPACE_CONFIG_FILE, f"{VENDORED}/__init__.py")
                if not (staged / name).is_file()]
    if not problems:
        problems += check_text_files(staged, token, source_dir=VENDORED)
        problems += _check_syntax(staged, PYTHON_VERSION.get(spec.hardware, DEFAULT_PYTHON))
    if not problems:  # the slow check last, on an otherwise sound folder
        problems += _check_imports(staged)
    if problems:
        raise HubError(f"staged Space {staged} is not ready to publish: " + "; ".join(problems))


def _check_syntax(staged: Path, python: str) -> list[str]:
    """Every staged Python file parses for the Space's Python version."""
    version = tuple(int(x) for x in python.split(".")[:2])
    problems = []
    for path in sorted(staged.rglob("*.py")):
        try:
            ast.parse(path.read_text(encoding="utf-8"), feature_version=version)
        except SyntaxError as exc:
            problems.append(f"{path.relative_to(staged)} does not parse on Python {python} "
                            f"(line {exc.lineno}: {exc.msg})")
    return problems


IMPORT_CHECK = ("import sys, pathlib, app, a3duck, a3duck.space.ui, a3duck.space.access; "
                "here = pathlib.Path.cwd().resolve(); "
                "sys.exit(0 if pathlib.Path(a3duck.__file__).resolve().is_relative_to(here) "
                "else 'a3duck was imported from ' + a3duck.__file__)")


def _check_imports(staged: Path) -> list[str]:
    """app.py and the vendored a3duck import from the folder alone (not from this checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", IMPORT_CHECK], cwd=staged, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return [f"app.py does not import from the staged folder alone: {tail}"]
    return []


def describe_space(staged: Path, notes: list[str]) -> str:
    files = sorted(p for p in staged.rglob("*") if p.is_file())
    vendored = [p for p in files if p.relative_to(staged).parts[0] == VENDORED]
    lines = [f"staged Space: {staged}", "files:"]
    lines += [f"  {p.relative_to(staged).as_posix():<28} {p.stat().st_size:>10,} bytes"
              for p in files if p not in vendored]
    lines.append(f"  {VENDORED}/ (vendored)             {len(vendored)} files, "
                 f"{sum(p.stat().st_size for p in vendored):,} bytes")
    text = (staged / "README.md").read_text(encoding="utf-8")
    lines += ["front matter:", text.split("---\n")[1].rstrip(), *notes]
    return "\n".join(lines)
