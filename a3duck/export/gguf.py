"""A merged Llama model as one GGUF file, written the way llama.cpp's ``convert_hf_to_gguf.py``
writes a Llama: the same metadata keys (``llama.*`` hyperparameters, ``tokenizer.ggml.*``, the
chat template), the same tensor names (``gguf.TensorNameMap``) and its permutation of the
``q_proj``/``k_proj`` rows (llama.cpp's rotary embedding pairs dimensions differently from
transformers; transformers' GGUF loader undoes the permutation on read).

Writing uses the ``gguf`` package, the llama.cpp project's own writer. Outtypes: ``f32`` (exact),
``f16``, ``bf16`` and ``q8_0`` (llama.cpp's 8-bit blocks of 32); one-dimensional tensors (norms)
stay f32 in every outtype, as llama.cpp keeps them.
"""

from __future__ import annotations

import logging
from hashlib import sha256
from pathlib import Path

import numpy as np

from a3duck.errors import ExportError

log = logging.getLogger(__name__)

OUTTYPES = ("f32", "f16", "bf16", "q8_0")
# llama.cpp's own test string for recognising a BPE pre-tokenizer (convert_hf_to_gguf.py's
# get_vocab_base_pre): the sha256 of the token ids of this text names the pre-tokenizer.
CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
    "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not "
    "sure I'll make it, 'D you like some tea? We'Ve a'lL")
# The Llama-family BPE pre-tokenizers (hash -> tokenizer.ggml.pre), from that function's table.
KNOWN_PRE = {
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Llama 3
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # SmolLM(2)
}


def write_gguf(model, tokenizer, tokenizer_dir: Path, path: Path, outtype: str,
               name: str) -> Path:
    """Write ``model`` (a transformers Llama, merged) and its tokenizer (saved in
    ``tokenizer_dir``) to ``path`` as GGUF in ``outtype``. ExportError for what cannot be."""
    import gguf

    if outtype not in OUTTYPES:
        raise ExportError(f"--outtype must be one of {', '.join(OUTTYPES)}, got {outtype!r}")
    config = model.config
    check_architecture(config)
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    _hparams(writer, config, name, outtype)
    _vocab(writer, tokenizer, Path(tokenizer_dir), config.vocab_size)
    _tensors(writer, model, outtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    return path


def check_architecture(config) -> None:
    """ExportError unless the model is a plain Llama (what this writer and llama.cpp's
    ``llama`` architecture describe)."""
    if config.model_type != "llama":
        raise ExportError(f"GGUF export writes the Llama architecture; this base is "
                          f"{config.model_type!r}. Use --format safetensors and llama.cpp's "
                          "convert_hf_to_gguf.py")
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ExportError(f"GGUF export does not write rope scaling ({rope.get('rope_type')!r});"
                          " use --format safetensors and llama.cpp's convert_hf_to_gguf.py")


def _hparams(writer, config, name: str, outtype: str) -> None:
    import gguf

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // (
        config.num_attention_heads)
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 1e4))))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(_FILE_TYPES[outtype])
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(head_dim)
    if outtype == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


_FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7, "bf16": 32}  # gguf.LlamaFileType values


# ----------------------------------------------------------------------------- tokenizer

def _vocab(writer, tokenizer, folder: Path, vocab_size: int) -> None:
    """llama.cpp's Llama set_vocab: a SentencePiece-style BPE (Llama 1/2, byte fallback) is
    ``llama``, a byte-level BPE (Llama 3, SmolLM) is ``gpt2`` with its pre-tokenizer."""
    import gguf

    try:
        tokens, scores, types = _llama_hf_tokens(folder)
        model, pre = "llama", "default"
    except (FileNotFoundError, TypeError):  # what LlamaHfVocab raises for a byte-level BPE
        tokens, types = _bpe_tokens(tokenizer, vocab_size)
        model, pre, scores = "gpt2", pre_tokenizer(tokenizer), None
    writer.add_tokenizer_model(model)
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    if scores is not None:
        writer.add_token_scores(scores)
    writer.add_token_types(types)
    # Merges for both kinds: llama.cpp's sentencepiece path ignores them, transformers' GGUF
    # loader rebuilds the exact BPE from them.
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    # What the tokenizer really does, not what a config may say: does encoding add BOS?
    bos = tokenizer.bos_token_id
    special.add_special_token["bos"] = bos is not None and tokenizer("a")["input_ids"][:1] == [bos]
    if special.chat_template is None and getattr(tokenizer, "chat_template", None):
        special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)


def _llama_hf_tokens(folder: Path):
    """Tokens, scores and types of a Llama byte-fallback BPE (gguf.vocab.LlamaHfVocab, as
    llama.cpp's _set_vocab_llama_hf). LlamaHfVocab scores every token -1000; llama.cpp's
    sentencepiece tokenizer merges the best-scored pair first, so normal tokens get ``-id``
    here instead: a Llama BPE numbers its tokens in merge order, as its SentencePiece model file does."""
    import gguf

    vocab = gguf.vocab.LlamaHfVocab(folder)
    tokens, scores, types = [], [], []
    for i, (text, score, kind) in enumerate(vocab.all_tokens()):
        tokens.append(text)
        scores.append(-float(i) if kind == gguf.TokenType.NORMAL else score)
        types.append(kind)
    return tokens, scores, types


def _bpe_tokens(tokenizer, vocab_size: int):
    """llama.cpp's get_vocab_base: every id's token, CONTROL for special added tokens,
    USER_DEFINED for other added ones and for ids without a token ([PADn])."""
    import gguf

    reverse = {i: tok for tok, i in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.USER_DEFINED)
        elif reverse[i] in added:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.CONTROL if decoder[i].special
                         else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def pre_tokenizer(tokenizer) -> str:
    """``tokenizer.ggml.pre`` for a byte-level BPE, recognised as llama.cpp does (the hash of
    CHKTXT's ids); ExportError for one llama.cpp's Llama table does not list."""
    digest = sha256(str(tokenizer.encode(CHKTXT)).encode()).hexdigest()
    if digest not in KNOWN_PRE:
        raise ExportError(
            f"this tokenizer's BPE pre-tokenizer is not one a3duck can name for llama.cpp "
            f"(chkhsh {digest[:16]}...); use --format safetensors and llama.cpp's "
            "convert_hf_to_gguf.py, which knows more")
    return KNOWN_PRE[digest]


# ----------------------------------------------------------------------------- tensors

def permute(weights, n_head: int, n_head_kv: int | None):
    """llama.cpp's LlamaModel.permute of q/k rows (undone by transformers' GGUF loader)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _tensors(writer, model, outtype: str) -> None:
    import gguf

    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reads the embeddings for a tied output
        data = tensor.detach().float().cpu()
        if hf_name.endswith("q_proj.weight"):
            data = permute(data, config.num_attention_heads, config.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            data = permute(data, config.num_attention_heads, config.num_key_value_heads)
        new_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise ExportError(f"tensor {hf_name} has no llama.cpp name; this is not a plain "
                              "Llama (use --format safetensors)")
        array, qtype = encode(data.numpy(), outtype)
        writer.add_tensor(new_name, array, raw_dtype=qtype)


def encode(array: np.ndarray, outtype: str):
    """(data, GGML type) of one tensor in ``outtype``; 1-D tensors stay f32, and q8_0 falls
    back to f16 for rows that are not whole blocks of 32 (as llama.cpp does)."""
    import gguf

    kinds = gguf.GGMLQuantizationType
    if array.ndim <= 1 or outtype == "f32":
        return array.astype(np.float32), kinds.F32
    if outtype == "q8_0" and array.shape[-1] % gguf.GGML_QUANT_SIZES[kinds.Q8_0][0] == 0:
        return gguf.quants.quantize(array, kinds.Q8_0), kinds.Q8_0
    if outtype == "bf16":
        return gguf.quants.quantize(array, kinds.BF16), kinds.BF16
    return array.astype(np.float16), kinds.F16
