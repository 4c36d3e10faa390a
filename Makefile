# The few commands people type. `make run` and `make test` do all setup on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
ASL_FILES := $(shell find statemachines tests -name '*.asl.json' 2>/dev/null)
PIP_QUIET := --quiet --quiet --disable-pip-version-check

.PHONY: run test lint typecheck static unit integration e2e chaos fuzz bench build deploy validate clean openapi \
	docker-engine sam-image sam-local

# The project environment, rebuilt whenever a pyproject.toml changes: the server with its dev tools,
# and the client (its own distribution, client/pyproject.toml) beside it, editable.
$(BIN)/.installed: pyproject.toml client/pyproject.toml layers/common/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) -e '.[dev]' -e ./client
	@touch $@

# SAM CLI pins boto3[crt]; it lives in its own environment so it cannot change ours.
$(SAM_VENV)/.installed:
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

venv: $(BIN)/.installed

# The local stack expands each function's IAM role with the SAM CLI's aws-sam-translator.
run: $(BIN)/.installed $(SAM_VENV)/.installed ## start the local stack on 127.0.0.1 (Ctrl-C stops it)
	$(BIN)/python -m batchops_local

test: $(BIN)/.installed $(SAM_VENV)/.installed ## every static check and every test
	$(MAKE) static
	# tests/e2e/test_sam_local.py installs and starts a Docker engine and builds the offline stand-in
	# for SAM's base image itself (engine.sh, build.sh: ~105 s on a fresh machine, ~1 s cached), in
	# its pytest worker while the other runs other files, rather than serially here before them all.
	# Two workers, a file each at a time (a file's tests share its fixtures; each worker starts its
	# own local stack for the e2e files): 10.5 min instead of 15 on 2 cores.
	$(BIN)/pytest -q -n 2 --dist loadfile tests

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The client runs on Python 3.9-3.13: mypy checks it against the oldest version it supports (3.10)
# and vermin proves no syntax or library call newer than 3.9 is in it.
typecheck: $(BIN)/.installed
	$(BIN)/mypy layers/common/batchops local/batchops_local functions
	$(BIN)/mypy --python-version 3.10 client/batchops_client
	$(BIN)/vermin --target=3.9- --violations --eval-annotations --backport typing_extensions --no-tips client/batchops_client

static: lint typecheck validate
	$(BIN)/lint-imports

validate: $(BIN)/.installed $(SAM_VENV)/.installed ## template and state machine checks, then a build
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --template-file template.yaml
	@for f in $(ASL_FILES); do echo "statelint $$f"; $(BIN)/statelint $$f || exit 1; done
	$(MAKE) build

unit: $(BIN)/.installed
	$(BIN)/pytest -q tests/unit

integration: $(BIN)/.installed $(SAM_VENV)/.installed
	$(BIN)/pytest -q tests/integration

e2e: $(BIN)/.installed $(SAM_VENV)/.installed
	$(BIN)/pytest -q tests/e2e

# The fault-injection suites with ten times the schedules of `make test`, drawn at random (a
# failure prints the seed that reproduces it).
chaos: $(BIN)/.installed $(SAM_VENV)/.installed
	BATCHOPS_CHAOS=1 POWERTOOLS_LOG_LEVEL=CRITICAL $(BIN)/pytest -q -n 2 --dist loadfile tests/integration/test_faults_*.py

# Schemathesis against the local stack with ten times the examples of `make test` and a random
# seed (the report prints it; `--seed` in tests/e2e/test_schemathesis.py replays it).
fuzz: $(BIN)/.installed $(SAM_VENV)/.installed
	BATCHOPS_FUZZ=1 $(BIN)/pytest -q tests/e2e/test_schemathesis.py

# The OpenAPI document OpenApiFunction serves, written from the route table (a unit test fails
# when routes or models change and this was not run).
openapi: $(BIN)/.installed
	$(BIN)/python -c 'from batchops.api.system import write_document; write_document()'

bench: $(BIN)/.installed
	$(BIN)/python -m bench

# ARCH picks template.yaml's Architecture parameter and the platform of the layers' wheels
# (layers/layer.mk's LAYER_ARCH). SAM's build cache does not key on either, so another
# architecture builds into a directory and cache of its own: .aws-sam/build-x86_64.
ARCH ?= arm64
ARCH_SUFFIX := $(if $(filter-out arm64,$(ARCH)),-$(ARCH),)
BUILD_DIR := .aws-sam/build$(ARCH_SUFFIX)
build: $(SAM_VENV)/.installed ## sam build (offline: uses the local python3.11); ARCH=x86_64 for x86 hosts
	LAYER_ARCH=$(if $(filter x86_64,$(ARCH)),x86_64,aarch64) $(SAM) build --template-file template.yaml \
		--build-dir $(BUILD_DIR) --cache-dir .aws-sam/cache$(ARCH_SUFFIX) --parallel --cached \
		--parameter-overrides Architecture=$(ARCH)

deploy: build ## first time: make deploy GUIDED=1 (sam deploy --guided)
	$(SAM) deploy $(if $(GUIDED),--guided,) $(if $(ENV),--config-env $(ENV),) --template-file .aws-sam/build/template.yaml

# `sam local` (Docker): SAM's emulator on template.yaml with the local stack behind it for DynamoDB,
# SQS (and its triggers), S3 and Step Functions; functions built for this machine's architecture.
# OFFLINE=1 (Linux, root): use the stand-in base image instead of pulling public.ecr.aws's.
HOST_ARCH := $(if $(filter arm64 aarch64,$(shell uname -m)),arm64,x86_64)
docker-engine:
	@local/sam_image/engine.sh

sam-image: $(BIN)/.installed docker-engine ## the offline stand-in for public.ecr.aws/lambda/python:3.11-<arch>
	PYTHON=$(BIN)/python local/sam_image/build.sh

sam-local: $(BIN)/.installed $(SAM_VENV)/.installed $(if $(OFFLINE),sam-image) ## sam local start-api on :3000 (Ctrl-C stops)
	$(MAKE) build ARCH=$(HOST_ARCH)
	$(BIN)/python -m batchops_local.sam_local --arch $(HOST_ARCH) $(if $(OFFLINE),-- --skip-pull-image)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache
