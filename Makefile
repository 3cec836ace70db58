# Two commands matter to a newcomer (see README.md):
#   make demo   - the local demo on the bundled emulator (moto)
#   make test   - every check CI runs
# Everything they need beyond the Rust toolchain and python3 is installed into ./.venv.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
# cargo-lambda (and zig) come from the virtualenv.
WITH_VENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
# Deployment architecture for `make build`; only x86_64 can be built on machines without the
# aarch64 standard library.
ARCH ?= arm64
EVENT ?= events/sns-num-messages-sent-in-alarm.json
FUNCTION ?= quarantine-group

.PHONY: help venv demo test unit-test lint check-infra check-package check-bootstrap build \
        bench fuzz watch invoke fleet-indexing attach-quarantine-policy clean

help:
	@echo "make demo             local demo: moto emulator, sample things, replay events/ through both functions"
	@echo "make test             everything CI runs: unit, integration and fault tests, clippy, fmt, cfn-lint, packaging"
	@echo "make bench            benchmarks against a local AWS stand-in, side by side with the seed's Python handler"
	@echo "make build ARCH=...   cargo lambda build --release of both functions (arm64 by default, x86_64 possible)"
	@echo "make watch / make invoke EVENT=file FUNCTION=name   local Lambda loop with cargo lambda"
	@echo "make fuzz             fuzz the decoder (scripts/fuzz.sh)"

venv:
	@scripts/ensure-venv.sh

demo: venv
	cargo build -p replay
	$(VENV)/bin/python scripts/demo.py --replay target/debug/replay

# The binaries are built first: the integration tests run them as real processes.
unit-test: venv
	cargo build --workspace --bins
	cargo test --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

check-infra: venv
	scripts/check-infra.sh

# Packaging: cargo lambda builds each bootstrap (x86_64 here; see ARCH for deployment), and
# every bootstrap must run on provided.al2023 (glibc 2.34 or older).
check-package: venv
	$(WITH_VENV) cargo lambda build --release --x86-64 -p quarantine-group -p quarantine-shadow
	scripts/check-bootstrap-glibc.sh

test: lint unit-test check-infra check-package
	@echo "make test: all checks passed"

build: venv
	$(WITH_VENV) cargo lambda build --release $(if $(filter x86_64,$(ARCH)),--x86-64,--arm64) -p quarantine-group -p quarantine-shadow

check-bootstrap:
	scripts/check-bootstrap-glibc.sh

bench: venv
	cargo build --release -p quarantine-group -p quarantine-shadow -p integration-tests
	cargo run --release -p integration-tests --bin lambda-bench -- $(BENCH_ARGS)

fuzz:
	scripts/fuzz.sh $(FUZZ_ARGS)

# The local Lambda loop: `make watch` in one terminal, `make invoke EVENT=...` in another.
watch: venv
	$(WITH_VENV) cargo lambda watch

invoke: venv
	$(WITH_VENV) cargo lambda invoke $(FUNCTION) --data-file $(EVENT)

fleet-indexing:
	scripts/fleet-indexing.sh $(FLEET_INDEXING_ARGS)

# Attach the deny-all IoT policy to the Quarantine thing group (CloudFormation cannot).
attach-quarantine-policy:
	@test -n "$(STACK)" || { echo "usage: make attach-quarantine-policy STACK=<stack name>" >&2; exit 2; }
	aws iot attach-policy \
	  --policy-name "$$(aws cloudformation describe-stacks --stack-name $(STACK) --query "Stacks[0].Outputs[?OutputKey=='QuarantinePolicyName'].OutputValue" --output text)" \
	  --target "$$(aws cloudformation describe-stacks --stack-name $(STACK) --query "Stacks[0].Outputs[?OutputKey=='QuarantineGroupArn'].OutputValue" --output text)"

clean:
	cargo clean
	rm -rf $(VENV)
