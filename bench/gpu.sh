#!/usr/bin/env bash
# bench/gpu.sh OUTDIR — the training and generation benches at the real Llama-2-13B shape
# (random init, bf16, nothing downloaded) on one CUDA GPU, in under 10 minutes on an H200.
# Writes OUTDIR/{train,train_auto,generate,serve}.json (generate_compile.json with
# GENERATE_COMPILE=1), their logs, and OUTDIR/machine.txt.
#
# What it needs on the GPU machine:
#   - a Python with torch (CUDA build), transformers, peft, trl, accelerate, datasets, pyyaml
#     (PYTHON=/path/to/python to choose one; default: .venv/bin/python if present, else python3);
#   - a tokenizer folder for the data path (ids are folded into the 32,000-token vocabulary) and,
#     for the realistic length mix, the instruction set. Prepare both on the CPU side with
#         bench/gpu.sh --prepare
#     which copies them into bench/.carry/ (git-ignored); pass carry=["bench/.carry"] to the run.
#     Without the instruction set the mix falls back to the (short) demo rows, said in train.json.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
  mkdir -p bench/.carry/tokenizer
  printf '*\n' > bench/.carry/.gitignore   # never committed: a copy of shared data + tokenizer
  HOME_DIR="${A3DUCK_HOME:-$HOME/.cache/a3duck}/models/SmolLM2-135M-Instruct"
  cp -f "$HOME_DIR"/tokenizer.json "$HOME_DIR"/tokenizer_config.json bench/.carry/tokenizer/
  cp -f ../shared/data/instruct/codegen-instruct.json bench/.carry/ 2>/dev/null \
    || echo "note: ../shared/data/instruct/codegen-instruct.json not found; demo rows only"
  du -sh bench/.carry
  exit 0
fi

OUT="${1:?usage: bench/gpu.sh OUTDIR   (or: bench/gpu.sh --prepare)}"
mkdir -p "$OUT"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # a3duck from this checkout

{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PY" -c "import torch, transformers, peft, trl; print('torch', torch.__version__, 'cuda', \
torch.version.cuda, torch.cuda.is_available()); print('transformers', transformers.__version__, \
'peft', peft.__version__, 'trl', trl.__version__)"
} > "$OUT/machine.txt" 2>&1 || { cat "$OUT/machine.txt"; echo "gpu.sh: $PY lacks torch/transformers/peft/trl or CUDA" >&2; exit 2; }
cat "$OUT/machine.txt"

TOK=(--tokenizer bench/.carry/tokenizer)
[[ -f bench/.carry/tokenizer/tokenizer_config.json ]] || TOK=()
SHAPE=(--model-shape llama2-13b --device cuda --dtype bfloat16 "${TOK[@]}")
status=0

# Training at the 13B shape, bf16 (~7.5 min on an H200): the original script's path
# (reference: micro-batch 1, full-vocabulary logits) against a3duck's fast path on the published
# 13B recipe with packing on (4096-token padding-free rows, loss at answer positions only), once
# per attention implementation installed here, then with the run's automatic choices (auto
# attention + torch.compile, compilation time included). 384 examples: 24 reference steps of 16.
ATTNS=$("$PY" -c "from a3duck.fastpath import installed_attention as f; \
print(','.join('fast@' + a for a in f('cuda') if a != 'eager'))")
sed 's/^packing: false.*/packing: true/' recipes/a3duck-llama2-13b.yaml > "$OUT/fast-recipe.yaml"
TRAIN=("${SHAPE[@]}" --recipe "$OUT/fast-recipe.yaml" --examples 384 --steps 24 --rounds 1
       --pack-len 4096 --check-examples 4 --learning-rate 4e-4)
timeout 300 "$PY" bench/train.py "${TRAIN[@]}" --variants "reference,$ATTNS" \
  --output "$OUT/train.json" > "$OUT/train.log" 2>&1 \
  || { status=$?; echo "train bench failed or timed out (rc $status): see $OUT/train.log"; }
tail -n 12 "$OUT/train.log"
timeout 140 "$PY" bench/train.py "${TRAIN[@]}" --variants "fast" \
  --output "$OUT/train_auto.json" > "$OUT/train_auto.log" 2>&1 \
  || { status=$?; echo "auto (compiled) train failed or timed out (rc $status): see $OUT/train_auto.log"; }
tail -n 4 "$OUT/train_auto.log"

# Generation: 512-token prompt, 64 new tokens; three 13B models (78 GB) side by side (~1.5 min).
timeout 90 "$PY" bench/generate.py "${SHAPE[@]}" --prompt-tokens 512 --new-tokens 64 \
  --rounds 2 --modes dynamic,static --output "$OUT/generate.json" > "$OUT/generate.log" 2>&1 \
  || { status=$?; echo "generate bench failed or timed out (rc $status): see $OUT/generate.log"; }
tail -n 10 "$OUT/generate.log"
# Static cache + torch.compile (minutes of compiling): only with GENERATE_COMPILE=1, as it does
# not fit the 10-minute budget together with the training benches.
if [[ "${GENERATE_COMPILE:-0}" == 1 ]]; then
  timeout 150 "$PY" bench/generate.py "${SHAPE[@]}" --prompt-tokens 512 --new-tokens 64 \
    --rounds 1 --modes compile --output "$OUT/generate_compile.json" \
    > "$OUT/generate_compile.log" 2>&1 \
    || { status=$?; echo "compiled generate failed or timed out (rc $status): see $OUT/generate_compile.log"; }
  tail -n 10 "$OUT/generate_compile.log"
fi

# Serving a zoo: 1 / 100 / 1,000 adapters (3.9 MB each at 13B) against the base alone, 32
# requests in flight; PEFT swapping only at 1 and 100 (loading 1,000 into PEFT takes too long).
timeout 240 "$PY" bench/serve.py "${SHAPE[@]}" --adapters 1,100,1000 --concurrency 32 \
  --requests 96 --new-tokens 64 --max-batch 32 --peft-max 100 \
  --output "$OUT/serve.json" > "$OUT/serve.log" 2>&1 \
  || { status=$?; echo "serve bench failed or timed out (rc $status): see $OUT/serve.log"; }
tail -n 13 "$OUT/serve.log"

ls -l "$OUT"
exit $status
