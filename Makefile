# Two commands matter to a newcomer (see README.md):
#   make demo   - the local demo on the bundled emulator (moto)
#   make test   - every check CI runs (the demo included)
# Everything they need beyond the Rust toolchain and python3 is installed by the project's own
# scripts: Python tools into ./.venv, cargo tools into ./.tools, the MQTT broker with apt-get.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
# Cargo's output directory: $CARGO_TARGET_DIR when set, as cargo itself does.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# cargo-lambda (and zig) come from the virtualenv.
WITH_VENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
# Deployment architecture for `make build`; only x86_64 can be built on machines without the
# aarch64 standard library.
ARCH ?= arm64
EVENT ?= events/sns-num-messages-sent-in-alarm.json
FUNCTION ?= quarantine-group
# The Lambda functions (cargo lambda builds and packages these).
FUNCTIONS := quarantine-group quarantine-shadow quarantine-certificate stack-setup
LAMBDA_PACKAGES := $(foreach f,$(FUNCTIONS),-p $(f))

.PHONY: help venv tools broker demo test unit-test lint check-infra check-package build \
        bench fuzz watch invoke fleet-indexing check-bootstrap clean

help:
	@echo "make demo             local demo: moto emulator, sample things, replay events/ through the functions' handler"
	@echo "make test             everything CI runs: unit, integration, broker and fault tests, lints, cfn-lint, packaging"
	@echo "make bench            benchmarks against a local AWS stand-in, side by side with the seed's Python handler"
	@echo "make build ARCH=...   cargo lambda build --release of the functions (arm64 by default, x86_64 possible)"
	@echo "make watch / make invoke EVENT=file FUNCTION=name   local Lambda loop with cargo lambda"
	@echo "make fuzz             fuzz the decoder and the handler (scripts/fuzz.sh)"

venv:
	@scripts/ensure-venv.sh

tools:
	@scripts/ensure-tools.sh >/dev/null

# The device agent's tests run against a real MQTT broker (mosquitto) with mutual TLS.
broker:
	@scripts/ensure-mosquitto.sh

# moto has no DeleteConnection: the demo leaves live connections alone (DISCONNECT=false).
# The demo runs replay and quarantinectl against moto, the ledger's DynamoDB table included.
demo: venv
	cargo build -p replay -p quarantinectl
	DISCONNECT=false $(VENV)/bin/python scripts/demo.py --replay $(TARGET_DIR)/debug/replay

# The integration tests get the binaries from Cargo (CARGO_BIN_EXE_*): no build step first.
unit-test: venv broker
	cargo test --workspace

lint: tools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	# After clippy, which has already checked the dependencies: the API docs, broken links denied.
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
	.tools/bin/cargo-machete
	python3 scripts/check-docs.py

check-infra: venv
	scripts/check-infra.sh

# Packaging: cargo lambda builds each bootstrap (x86_64 here; see ARCH for deployment), and
# every bootstrap must run on provided.al2023 (glibc 2.34 or older). What this checks (cargo
# lambda's build and zig link for the Lambda target, the glibc each bootstrap needs) does not
# depend on optimisation, so it builds with the package-check profile (Cargo.toml): the same
# packaging in half the time of the release profile's fat LTO, which `make build` and
# `make bench` keep using.
check-package: venv
	$(WITH_VENV) cargo lambda build --profile package-check --x86-64 $(LAMBDA_PACKAGES)
	scripts/check-bootstrap-glibc.sh $(foreach f,$(FUNCTIONS),$(TARGET_DIR)/lambda/$(f)/bootstrap)

check-bootstrap:
	scripts/check-bootstrap-glibc.sh

# The demo too: the README promises it works on a fresh clone, and it takes half a minute.
test: lint unit-test check-infra check-package demo
	@echo "make test: all checks passed"

build: venv
	$(WITH_VENV) cargo lambda build --release $(if $(filter x86_64,$(ARCH)),--x86-64,--arm64) $(LAMBDA_PACKAGES)

bench: venv
	cargo build --release -p quarantine-group -p quarantine-shadow -p quarantine-certificate -p test-harness
	$(TARGET_DIR)/release/lambda-bench --group $(TARGET_DIR)/release/quarantine-group \
	  --shadow $(TARGET_DIR)/release/quarantine-shadow \
	  --certificate $(TARGET_DIR)/release/quarantine-certificate \
	  --floor $(TARGET_DIR)/release/lambda-floor $(BENCH_ARGS)

fuzz:
	scripts/fuzz.sh $(FUZZ_ARGS)

# The local Lambda loop: `make watch` in one terminal, `make invoke EVENT=...` in another.
watch: venv
	$(WITH_VENV) cargo lambda watch

invoke: venv
	$(WITH_VENV) cargo lambda invoke $(FUNCTION) --data-file $(EVENT)

fleet-indexing:
	scripts/fleet-indexing.sh $(FLEET_INDEXING_ARGS)

clean:
	cargo clean
	rm -rf $(VENV) .tools
