"""A wheel that works: built from a copy of the sources, it carries the card templates and the
Space's few-shot examples, and, installed (not editable) into a fresh virtualenv, `a3duck --help`,
`a3duck card` and the Space's examples work from another folder."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from adapter_factory import make_adapter

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ("README.en.md.jinja", "README.ko.md.jinja", "reference_results.yaml")


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of what it is built from (the checkout stays untouched)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("a3duck", "model_card"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-cache-dir", "-q", "-w", str(out), str(src)])
    (whl,) = out.glob("a3duck-*.whl")
    return whl


def test_listed_packages_are_every_package(wheel):
    """pyproject lists the packages (model_card/ is mapped into one): none may be forgotten."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "a3duck").rglob(
        "__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to pyproject's packages"
    names = zipfile.ZipFile(wheel).namelist()
    for package in found:
        assert f"{package.replace('.', '/')}/__init__.py" in names


def test_wheel_carries_templates_and_examples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in TEMPLATES:  # byte-identical to the top-level model_card/ the project promises
        packed = zipfile.ZipFile(wheel).read(f"a3duck/publish/model_card/{name}")
        assert packed == (ROOT / "model_card" / name).read_bytes()
    examples = zipfile.ZipFile(wheel).read("a3duck/space/examples.json")
    assert examples == (ROOT / "a3duck" / "space" / "examples.json").read_bytes()
    assert "a3duck/cli.py" in names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    assert b"a3duck = a3duck.cli:main" in entry


@pytest.mark.slow  # spawns a subprocess
def test_installed_wheel_works_from_another_folder(wheel, tiny_llama_dir, tmp_path):
    """Installed with --no-deps into a fresh venv; the dependencies come from this interpreter's
    site-packages through a plain path line (so its editable a3duck, if any, is not seen)."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = Path(_run([str(python), "-c", ("import sysconfig; print(sysconfig.get_path("
                         "'purelib'))")]).stdout.strip())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the venv's a3duck
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          "--no-cache-dir", str(wheel)], env=env)
    # after the install: pip would take the deps' (editable) a3duck for an installed one
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "zz_a3duck_test_deps.pth").write_text("\n".join(deps) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    where = _run([str(python), "-c", "import a3duck; print(a3duck.__file__)"], cwd=elsewhere,
                 env=env).stdout.strip()
    assert Path(where).is_relative_to(purelib), where  # the wheel's copy, not the checkout
    assert "card" in _run([str(env_dir / "bin" / "a3duck"), "--help"], cwd=elsewhere,
                          env=env).stdout
    adapter = make_adapter(tiny_llama_dir, tmp_path / "adapter", base_id="test-org/tiny-llama")
    _run([str(env_dir / "bin" / "a3duck"), "card", "--adapter", str(adapter), "--output",
          str(elsewhere / "card.md")], cwd=elsewhere, env=env)
    card = (elsewhere / "card.md").read_text(encoding="utf-8")
    assert "### Published numbers for comparison" in card and "test-org/tiny-llama" in card
    tasks = _run([str(python), "-c", ("from a3duck.space.scoring import load_examples; "
                  "print(sorted(load_examples()))")], cwd=elsewhere, env=env).stdout
    assert "arc_challenge" in tasks and "mmlu" in tasks
