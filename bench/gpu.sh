#!/usr/bin/env bash
# bench/gpu.sh OUTDIR — the training and generation benches at the real Llama-2-13B shape
# (random init, bf16, nothing downloaded) on one CUDA GPU, in under 8 minutes on an H200.
# Writes OUTDIR/{train,generate,generate_compile}.json, their logs, and OUTDIR/machine.txt.
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

# Training: 256 examples per variant, 16 per optimizer step for the original recipe, rows of
# 4096 tokens for the fast path (the issue's target shape). ~2.5 min on an H200.
timeout 210 "$PY" bench/train.py "${SHAPE[@]}" --examples 256 --steps 16 --rounds 1 \
  --pack-len 4096 --check-examples 4 --output "$OUT/train.json" > "$OUT/train.log" 2>&1 \
  || { status=$?; echo "train bench failed or timed out (rc $status): see $OUT/train.log"; }
tail -n 8 "$OUT/train.log"

# Generation: 512-token prompt, 64 new tokens; three 13B models (78 GB) side by side.
# Without compilation first (quick), then static cache + torch.compile (minutes of compiling).
timeout 100 "$PY" bench/generate.py "${SHAPE[@]}" --prompt-tokens 512 --new-tokens 64 \
  --rounds 2 --modes dynamic,static --output "$OUT/generate.json" > "$OUT/generate.log" 2>&1 \
  || { status=$?; echo "generate bench failed or timed out (rc $status): see $OUT/generate.log"; }
tail -n 10 "$OUT/generate.log"
timeout 150 "$PY" bench/generate.py "${SHAPE[@]}" --prompt-tokens 512 --new-tokens 64 \
  --rounds 1 --modes compile --output "$OUT/generate_compile.json" \
  > "$OUT/generate_compile.log" 2>&1 \
  || { status=$?; echo "compiled generate failed or timed out (rc $status): see $OUT/generate_compile.log"; }
tail -n 10 "$OUT/generate_compile.log"

# Serving a zoo: 32 concurrent chats over base + 2 adapters, mixed batches vs one at a time.
timeout 150 "$PY" bench/serve.py "${SHAPE[@]}" --chats 32 --new-tokens 64 --rounds 1 \
  --output "$OUT/serve.json" > "$OUT/serve.log" 2>&1 \
  || { status=$?; echo "serve bench failed or timed out (rc $status): see $OUT/serve.log"; }
tail -n 4 "$OUT/serve.log"

ls -l "$OUT"
exit $status
