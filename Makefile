# One place for every command a user or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STAGE ?= dev
VENV := .venv
PY := $(VENV)/bin/python
# checkov pins boto3, packaging and networkx below this project's versions: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
# Names and stage settings come from cdk.json through the one naming module the CDK app and the ops
# commands use (ops/voice_agent_ops/naming.py), so a new stage needs no Makefile change.
NAMING := $(PY) -m voice_agent_ops.naming
STAGES = $(shell $(NAMING) stages)
# The CDK stage holding STAGE's stacks, for `cdk deploy`.
STAGE_ID = $(shell $(NAMING) stage-id $(STAGE))
# The stage's region from cdk.json (REGION=... overrides), for the commands that talk to AWS directly.
REGION ?= $(shell $(NAMING) region $(STAGE) 2>/dev/null)
# The stage's AgentCore runtime name (cdk.json's runtimeName, else the app's default): destroy finds the
# runtime's log groups by it once the agent stack, and its outputs, are gone.
RUNTIME_NAME ?= $(shell $(NAMING) runtime-name $(STAGE) 2>/dev/null)
# Node 20 is past jsii's support window: without this every synth prints a large banner.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CDK := npx --no-install cdk

.PHONY: help setup deps test-deps system-packages web up synth test check bench bootstrap deploy deploy-pipeline destroy smoke capacity clean

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: system-packages test-deps  ## Everything the tests need: Debian's coturn, chromium and libnss3-tools, then `make test-deps`

test-deps: deps $(CHECKOV_VENV)/.installed  ## `make deps`, and checkov in .venv-checkov for the template checks

deps: $(VENV)/.installed node_modules/.installed web_client/node_modules/.installed  ## Create .venv and install the pinned Python and npm dependencies (all `make up` needs)

system-packages:  ## Install Debian's coturn, chromium and libnss3-tools when missing (as root or passwordless sudo)
	@scripts/system-packages.sh

$(VENV)/.installed: requirements.txt runtime_image/requirements.txt runtime_image/constraints.txt \
		runtime_image/pyproject.toml ops/pyproject.toml
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "Node.js 20+ with npm is required for the CDK CLI: install it (for example 'apt-get install nodejs npm')." >&2; exit 1; }
	@python=$$(scripts/find-python.sh) && { [ -x $(PY) ] || $$python -m venv $(VENV); }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r runtime_image/requirements.txt \
		-c runtime_image/constraints.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e runtime_image -e ops
	@touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@python=$$(scripts/find-python.sh) && { [ -x $(CHECKOV_VENV)/bin/python ] || $$python -m venv $(CHECKOV_VENV); }
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is required for the CDK CLI: install Node.js 20+ with npm (for example 'apt-get install nodejs npm')." >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web_client/node_modules/.installed: web_client/package.json web_client/package-lock.json
	npm --prefix web_client ci --no-audit --no-fund --loglevel=error
	@touch $@

web: deps  ## Build the browser client into web_client/dist
	npm --prefix web_client run build

up: web  ## Run the agent and web client locally (http://localhost:7860; VOICE=nova-sonic for the model)
	$(PY) scripts/local_up.py

synth: web  ## Synthesize every stage (or STAGE=name, or PIPELINE=1) offline into cdk.out/
ifdef PIPELINE
	$(CDK) synth --quiet -c pipeline=1 -o cdk.out/pipeline
else
	@set -e; stages="$(if $(filter command line environment,$(origin STAGE)),$(STAGE),$(STAGES))"; \
	for s in $$stages; do echo "synth $$s"; $(CDK) synth --quiet -c stage=$$s -o cdk.out/$$s; done
endif

deploy-pipeline: web  ## Deploy the CI pipeline stack (see "Deploy through a pipeline")
	$(CDK) deploy --all -c pipeline=1 --require-approval broadening

test: setup check  ## Run the static checks, then every test suite (the web client's vitest units, then pytest)
	npm --prefix web_client test
	$(VENV)/bin/pytest

bench: setup  ## Measure the agent: latency, CPU, memory, start-up (table + bench/results/latest.json)
	$(PY) -m bench $(BENCH_ARGS)

check: deps  ## Static checks: ruff (lint and format), mypy, and tsc on the web client
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	npm --prefix web_client run check

bootstrap: deps  ## Bootstrap CDK in every stage's account and region from cdk.json (PIPELINE=1: the pipeline's too)
	@envs=$$($(PY) -m cdk.bootstrap $(if $(PIPELINE),--pipeline)) && set -x && $(CDK) bootstrap $$envs

deploy: web  ## Deploy STAGE (default dev) into the current AWS account
	$(CDK) deploy '$(STAGE_ID)/*' -c stage=$(STAGE) --require-approval broadening

destroy: deps  ## Destroy STAGE: agent stack, its log groups, then the network stack (WAIT=1 waits for AgentCore)
	$(VENV)/bin/voice-agent-destroy --stage $(STAGE) $(if $(REGION),--region $(REGION)) $(if $(RUNTIME_NAME),--runtime-name $(RUNTIME_NAME)) $(if $(WAIT),--wait $(if $(MAX_WAIT),--max-wait-minutes $(MAX_WAIT)))

smoke: deps  ## One timed call to STAGE's deployed agent (URL=... local; HOLD=600 soaks; TRANSPORT=ws for /ws)
	$(VENV)/bin/voice-agent-smoke $(if $(URL),--url $(URL),--stage $(STAGE) $(if $(REGION),--region $(REGION))) $(if $(HOLD),--hold-seconds $(HOLD)) $(if $(TRANSPORT),--transport $(TRANSPORT))

capacity: deps  ## STAGE's capacity plan: TURN channels and their load at peak, quotas to request, NAT, an hour's cost
	$(PY) -m cdk.capacity $(STAGE)

clean:  ## Remove build output (keeps .venv and node_modules)
	rm -rf cdk.out .pytest_cache test-results web_client/dist
