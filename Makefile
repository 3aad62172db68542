# The two commands a new user runs are `make demo` and `make test`; both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_READY := $(VENV)/.ready
NODE_READY := node_modules/.ready
CDK := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 node_modules/.bin/cdk

# Debian packages the tests drive for real; installed by `make test` when missing.
TEST_DEBIAN_PACKAGES := nginx prometheus chromium buildah debootstrap

.PHONY: setup extension debian-packages lint test test-fast demo serve synth deploy destroy nag image image-test fuzz soak bench bench-quick proto lock clean

setup: $(PY_READY) $(NODE_READY) extension

# The compiled decoder (receiver/formats/_decode.pyx), built in place with the venv's Cython (the
# lock's). Without a C compiler, or with RECEIVER_NO_EXTENSIONS=1, it is skipped with a warning and
# the receiver runs the careful pure-Python decoder (`serve` logs which one runs).
extension: $(PY_READY)
	$(PY) setup.py --quiet build_ext --inplace

debian-packages:
	scripts/debian-packages.sh $(TEST_DEBIAN_PACKAGES)

# The venv is rebuilt from the lock whenever the dependencies change. The project installs
# without build isolation, so what builds it (setuptools, and Cython for the compiled decoder)
# is the venv's, at the lock's versions, not the newest a build environment would fetch.
$(PY_READY): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(NODE_READY): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ruff (lint, and the format check) over the tree and mypy (strict) over receiver/, as configured in pyproject.toml.
lint: $(PY_READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Test files run on every core (at most 4), each file on one worker: a file's module-scoped
# servers and browsers stay shared, and tests within it run in order.
test: setup debian-packages lint
	$(PY) -m pytest --numprocesses=auto --maxprocesses=4 --dist=loadfile

# The edit-test loop: the stages' unit tests, under a minute on 2 cores. Left out: end-to-end
# tests (slow), the CDK, browser, image and fault folders, DynamoDB (moto, dynalite), the
# property round trips and the socket-timing tests. `make test` runs all of them.
FAST_TESTS := tests/formats tests/rules tests/receiver tests/views tests/alarms tests/scripts tests/store tests/inventory \
	tests/benchmarks
FAST_LEFT_OUT := --ignore=tests/formats/test_formats_roundtrip.py --ignore=tests/receiver/test_server_limits.py \
	--ignore=tests/receiver/test_two_receivers.py --ignore=tests/store/test_store_dynamodb.py \
	--ignore=tests/store/test_store_dynamodb_retry.py --ignore=tests/store/test_store_dynamodb_quarantine.py \
	--ignore=tests/inventory/test_inventory_moto.py --ignore=tests/inventory/test_inventory_endpoint.py
test-fast: $(PY_READY)
	$(PY) -m pytest -q --numprocesses=auto --maxprocesses=4 --dist=loadfile -m "not slow and not aws" \
		$(FAST_LEFT_OUT) $(FAST_TESTS)

demo: $(PY_READY)
	$(PY) -m receiver demo

serve: $(PY_READY)
	$(PY) -m receiver serve

# Extra CDK CLI arguments, e.g. CDK_ARGS='-c domainName=metrics.example.com'.
CDK_ARGS ?=

synth: setup
	$(CDK) synth $(CDK_ARGS)

deploy: setup
	$(CDK) deploy --all $(CDK_ARGS)

destroy: setup
	$(CDK) destroy --all $(CDK_ARGS)

# cdk-nag's AwsSolutions checks as their own synth (findings fail it).
nag: setup
	$(CDK) synth --quiet -c nag=true $(CDK_ARGS)

# The receiver's container image, built with buildah (no Docker engine needed); the
# image test also runs inside `make test`.
image:
	image/build.sh

image-test: $(PY_READY)
	image/test.sh

# Speed and memory, printed as a table; JSON results in out/bench/. bench-quick: small bodies.
bench: $(PY_READY)
	$(PY) -m benchmarks.run

bench-quick: $(PY_READY)
	$(PY) -m benchmarks.run --quick

# At least 100,000 mutated inputs against the envelope parser, the decoders and the HTTP handler.
fuzz: $(PY_READY)
	$(PY) -m fuzzing.run

# The emulator drives a real receiver (SQLite) with restarts, then checks every value; SOAK_MINUTES=2 for a short run.
SOAK_MINUTES ?= 10
soak: $(PY_READY)
	$(PY) -m soak.run --minutes $(SOAK_MINUTES)

# Regenerate the OpenTelemetry 0.7 modules and the decode-only summary view from their .proto files.
proto: $(PY_READY)
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. receiver/proto/otel07/*.proto receiver/proto/summary_view.proto

# Re-pin every Python package after changing pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet '.[cdk,dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^dynamodb-metric-stream-receiver' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .hypothesis build receiver/formats/_decode.c receiver/formats/_decode.*.so
