# Thin targets; the logic lives in cargo and in deploy/dev/run.sh.
CARGO ?= cargo
BUF ?= npx --yes @bufbuild/buf@1.75.0
PROMTOOL ?= promtool

.PHONY: build run test unit lint fmt fmt-check buf-lint buf-breaking deploy-lint alerts-check bench load-setup soak fuzz

build:
	$(CARGO) build --bin certd --bin certctl

## Start NATS (unless NATS_URL is set) and every service, gateway on 127.0.0.1:50051.
run: build
	deploy/dev/run.sh

## Measure: its own NATS and certd (release build), every figure beside its baseline.
bench:
	$(CARGO) build --release --bin certd --bin certflow-bench
	bin=$$(deploy/nats/server.sh) && NATS_SERVER_BIN=$$bin $(CARGO) run --release --bin certflow-bench -- suite $(BENCH_ARGS)

## With `make run` going: certificates to load-test on, and the data and token files that
## tests/load/*.json name (target/load/), so `ghz --config tests/load/revoke.json` runs as is.
LOAD_CERTIFICATES ?= 1000
load-setup:
	$(CARGO) build --bin certflow-bench
	token=$${CERTFLOW_TOKEN:-$$(cat .run/tokens/alice)} && $(CARGO) run --bin certflow-bench -- setup --token "$$token" -n $(LOAD_CERTIFICATES) --out target/load

## Every flow, round after round, with a random service or nats-server killed in each
## (SOAK_SECONDS, default 120; SOAK_SEED repeats a run); then every fuzz target (FUZZ_SECONDS).
SOAK_SECONDS ?= 120
FUZZ_SECONDS ?= 60
soak:
	bin=$$(deploy/nats/server.sh) && NATS_SERVER_BIN=$$bin SOAK_SECONDS=$(SOAK_SECONDS) $(CARGO) test -p certd --test blackbox -- --ignored --nocapture crashes::soak
	$(MAKE) fuzz

## Each fuzz target for FUZZ_SECONDS with libFuzzer (fuzz/run.sh; no nightly or cargo-fuzz).
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

## What CI runs: formatting, lints (proto and deploy files too), every test.
test: fmt-check lint buf-lint unit deploy-lint alerts-check

## Tests start their own nats-server: 2.12 or newer, found or installed by deploy/nats/server.sh.
## The console's accessibility checks read axe-core from deploy/dev/axe-core.sh; the
## notifier's tests send email to aiosmtpd, run by the Python deploy/dev/aiosmtpd.sh prints.
unit:
	bin=$$(deploy/nats/server.sh) && axe=$$(deploy/dev/axe-core.sh) && smtpd=$$(deploy/dev/aiosmtpd.sh) && NATS_SERVER_BIN=$$bin AXE_CORE_JS=$$axe AIOSMTPD_PYTHON=$$smtpd $(CARGO) test --workspace

lint: buf-breaking
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## The API and event schema against the last release (proto/LAST_RELEASE: tag and commit):
## fields are added, never renumbered or reused.
buf-breaking:
	cd proto && $(BUF) breaking --against "../.git#ref=$$(cut -d' ' -f2 LAST_RELEASE),subdir=proto"

## Kubernetes manifests (kubernetes-validate), systemd units, certd settings named in deploy/.
deploy-lint:
	deploy/check.sh

## The Prometheus alerting rules (deploy/prometheus/alerts.yml): promtool checks them and runs
## their unit tests, alerts.test.yml (promtool: Debian's prometheus package).
alerts-check:
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	$(PROMTOOL) test rules deploy/prometheus/alerts.test.yml

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

buf-lint:
	cd proto && $(BUF) lint
