"""`a3duck compare`: batched answers equal PEFT's one-at-a-time answers, gained/lost rows, and
progress drawn on a real terminal (pty) and written as lines to a log."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
from multi_support import random_adapter

from a3duck import compare
from a3duck.progress import LogLines

REPO = Path(__file__).resolve().parent.parent


def test_batched_compare_equals_peft_one_row_at_a_time(tiny_llama_dir, tmp_path):
    adapter = random_adapter(tiny_llama_dir, tmp_path / "a", seed=7)
    data = tmp_path / "eval.jsonl"
    rows = [{"instruction": f"Say {w}.", "output": f"It is **{w}**."}
            for w in ("red", "a longer word here", "x", "blue sky", "seven")]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = compare.compare(str(adapter), str(data), max_new_tokens=10)
    model, tokenizer, template = compare.load_for_compare(str(adapter))
    answers = set()
    for row in result["rows"]:
        for side in ("base", "adapter"):
            alone = compare.generate_answer(model, tokenizer, row["prompt"], template, 10,
                                            side == "adapter")
            assert row[side]["answer"] == alone, (row["row"], side)
            answers.add(alone)
    assert len(answers) > 2  # real, differing generations


def test_changes_name_rows_gained_and_lost():
    def row(n, base, adapter):
        return {"row": n, "reference": "r",
                "base": {"answer": "b", "format": base, "correct": base, "exact": False},
                "adapter": {"answer": "a", "format": adapter, "correct": adapter,
                            "exact": False}}

    rows = [row(1, True, False), row(2, False, True), row(3, True, True), row(4, False, True)]
    ch = compare.changes(rows)
    assert ch["correct"] == {"gained": [2, 4], "lost": [1]}
    assert ch["exact"] == {"gained": [], "lost": []}
    text = compare.format_report({"n": 4, "data": "d", "scores": {
        s: {k: 0.5 for k in compare.SCORES} for s in ("base", "adapter")},
        "changes": ch, "rows": rows})
    assert "correct answers the adapter lost (1):" in text and "row 1:" in text


class _Sink:
    def __init__(self):
        self.text = ""

    def write(self, t):
        self.text += t

    def flush(self):
        pass


def test_log_gets_one_line_per_frame_rate_limited_and_the_last():
    sink, now = _Sink(), [0.0]
    log = LogLines(sink, every_s=10, clock=lambda: now[0])
    for n in range(6):
        now[0] = n * 4.0
        log.write(f"\rx: {n * 20:3d}%|##| {n}/5 [00:0{n}<00:00]")
    log.write("\n")
    log.write("done\n")
    lines = sink.text.splitlines()
    assert "\r" not in sink.text
    assert lines[0].startswith("x:   0%") and lines[-2].startswith("x: 100%")
    assert lines[-1] == "done" and len(lines) == 4  # frames at 0 s and 12 s, the last, text


def _pty_run(cmd: list[str], columns: int) -> str:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    assert proc.wait(timeout=600) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("columns", [100, 0])  # 0: a pty nobody sized (tqdm drew nothing)
def test_compare_draws_its_bar_on_a_terminal(embedded_model_dir, tmp_path, columns):
    adapter = random_adapter(embedded_model_dir, tmp_path / "a", seed=8)
    out = _pty_run([sys.executable, "-m", "a3duck", "compare", "--adapter", str(adapter),
                    "--limit", "1", "--max-new-tokens", "4"], columns)
    assert "base vs adapter: 100%|" in out and "2/2" in out, out
    assert "held-out prompts: 1" in out
