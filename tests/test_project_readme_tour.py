"""The README's five-minute tour, run as a newcomer runs it right after `make demo`: every
offline line of its code block, in order, as written, on the embedded model (in a scratch copy
of the repository's data, recipes and entry points, beside a `shared/` like the checkout's).

`make demo`'s own training (12 steps) is stood in for by 2 steps: the tour only needs
`out/adapter` to exist. The lines after "# Hub only" need the network and are not run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import require

from a3duck import adapter_folder

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def tour_lines() -> list[str]:
    """The tour block's command lines up to "# Hub only" (comments and blanks dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Five-minute tour.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = []
    for line in block.splitlines():
        if line.startswith("# Hub only"):
            break
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    return lines


@pytest.fixture
def scratch(tmp_path):
    """A folder laid out like the checkout (its data, recipes, app.py, push_to_hub.py) with
    ``../shared`` beside it, and `make demo`'s out/adapter trained (2 steps)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("data", "recipes", "app.py", "push_to_hub.py"):
        (repo / name).symlink_to(ROOT / name)
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent)
    run(repo, "a3duck train --recipe recipes/smollm2-demo.yaml --output-dir out --max-steps 2")
    return repo


def environment() -> dict:
    """What `source .venv/bin/activate` gives: this interpreter's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False")
    return env


def run(cwd: Path, line: str) -> str:
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=environment(), text=True,
                          capture_output=True, timeout=1800, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{line}\n{output[-3000:]}"
    assert "Traceback" not in output, f"{line}\n{output[-3000:]}"
    return output


def serve_until_up(cwd: Path, line: str) -> str:
    """Start a Space line, wait for its page, stop it; its output."""
    port = int(re.search(r"--port (\d+)", line).group(1))
    proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=cwd, env=environment(),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).close()
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(f"{line} did not serve: {proc.stdout.read()[-3000:]}")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0]
    assert "Traceback" not in output, output[-3000:]
    return output


def test_the_tour_runs_top_to_bottom_after_make_demo(scratch):
    require(SHARED_DATA.is_dir(), f"the tour's eval line reads {SHARED_DATA}")
    lines = tour_lines()
    assert lines[0] == "source .venv/bin/activate" and len(lines) >= 8
    outputs = {}
    for line in lines[1:]:
        outputs[line] = (serve_until_up(scratch, line) if line.startswith("python app.py")
                         else run(scratch, line))
    tour = scratch / "tour"
    adapter = tour / "adapter"
    assert (adapter / adapter_folder.ADAPTER_WEIGHTS).is_file()
    compared = json.loads((tour / "compare.json").read_text())
    assert compared["n"] == 40 and compared["adapter_sha256"] == adapter_folder.weights_sha256(
        adapter)
    evaluated = json.loads((tour / "eval_results.json").read_text())
    assert {r["task"] for r in evaluated["results"]} >= {"arc_challenge", "hellaswag",
                                                          "truthfulqa_mc2"}
    card = (adapter / "README.md").read_text()
    assert "| task | shots | metric | base | adapter | Δ | documents |" in card  # attached
    assert (tour / "hub-staging" / adapter_folder.ADAPTER_WEIGHTS).is_file()
    assert (tour / "mix" / adapter_folder.ADAPTER_WEIGHTS).is_file()
    assert not (scratch / "out" / "eval_results.json").exists()  # the demo's files untouched
