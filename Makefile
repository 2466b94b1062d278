# Joinery: `make run` provisions a sample joiner end to end on the loopback
# dev stack; `make test` runs unit and integration tests against it. Both
# install what a fresh machine lacks (see scripts/tools.sh).
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

PKGS_BUILD := ./worker ./starter ./internal/cmd/devstack ./internal/cmd/demo ./internal/cmd/refhris ./internal/cmd/cluster ./internal/cmd/bench

.PHONY: all tools build stack stack-down stack-status env run worker sweeper test test-unit vet fmt-check clean-state cluster cluster-down cluster-status bench reliability

all: build

## tools: pinned Temporal CLI, Vault (built from its Go module), slapd + ldap-utils; cached in ./bin
tools:
	@bash scripts/tools.sh all

## build: the worker, starter, dev stack launcher, demo and reference HRIS into ./bin
build:
	@$(GO) build -o $(BIN)/ $(PKGS_BUILD)

## stack / stack-down / stack-status: the loopback dev stack (reused when already up)
stack: tools build
	@$(BIN)/devstack up

stack-down:
	@$(GO) run ./internal/cmd/devstack down

stack-status:
	@$(GO) run ./internal/cmd/devstack status

## env: print the JOINERY_* exports that point the CLI at the dev stack
env:
	@$(GO) run ./internal/cmd/devstack env

## run: tools, stack, worker, then a sample new hire flows end to end; Ctrl-C stops
run: tools build
	@$(BIN)/demo

## worker: run only the worker against the dev stack (foreground)
worker: build
	@eval "$$($(BIN)/devstack env)" && $(BIN)/worker

## sweeper: run only the wrapping-token sweeper against the dev stack (foreground; its own Vault identity)
sweeper: build
	@eval "$$($(BIN)/devstack sweeper-env)" && $(BIN)/worker

## cluster / cluster-down / cluster-status: a Temporal cluster on PostgreSQL on loopback
## (frontend 127.0.0.1:7333; PostgreSQL 5439; five server processes), reused when up
cluster: tools build
	@$(BIN)/cluster up

cluster-down:
	@$(GO) run ./internal/cmd/cluster down

cluster-status:
	@$(GO) run ./internal/cmd/cluster status

## bench: joiner vs bare workflow, dev server and cluster (BENCH_FLAGS="-sequential 3 -burst 10" for a small run)
BENCH_FLAGS ?=
bench: stack cluster
	@$(BIN)/bench $(BENCH_FLAGS)

## test: static checks, then unit + integration tests on the real stack (and the cluster)
test: tools fmt-check vet cluster
	@$(GO) build -o $(BIN)/ $(PKGS_BUILD)
	@$(BIN)/devstack up
	$(GO) test -count=1 -timeout 40m ./...

## reliability: the full reliability suite (crash right after every side effect, kill -9 with
## 200 joiners in flight, Temporal restart, 30 s outages and LDAP/Vault outages past a step's
## 30 min retry window (~40 min each), races) on a PRIVATE stack of its own
## (temp state dir, free ports): it kills servers, never the dev stack's. A 20-joiner subset
## runs inside `make test`. Flags: RELIABILITY_JOINERS (200), RELIABILITY_CRASH_RUNS (3).
RELIABILITY_JOINERS ?= 200
RELIABILITY_CRASH_RUNS ?= 3
reliability: tools build
	$(GO) test -count=1 -tags reliability -timeout 150m -v ./internal/reliability/ \
		-joiners=$(RELIABILITY_JOINERS) -crash-runs=$(RELIABILITY_CRASH_RUNS)

## test-unit: the tests that need no server (workflow, policy, parsers)
test-unit:
	$(GO) test -count=1 ./workflows/... ./internal/policy/... ./internal/config/...

vet:
	@$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))"; \
	if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## clean-state: stop the stack and delete its data (joiners, directory, Vault)
clean-state: stack-down
	rm -rf .state
