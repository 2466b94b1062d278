# Joinery: `make run` provisions a sample joiner end to end on the loopback
# dev stack; `make test` runs unit and integration tests against it. Both
# install what a fresh machine lacks (see scripts/tools.sh).
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

PKGS_BUILD := ./worker ./starter ./internal/cmd/devstack ./internal/cmd/demo ./internal/cmd/refhris

.PHONY: all tools build stack stack-down stack-status env run worker test test-unit vet fmt-check clean-state

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

## test: static checks, then unit + integration tests on the real stack
test: tools fmt-check vet
	@$(GO) build -o $(BIN)/ $(PKGS_BUILD)
	@$(BIN)/devstack up
	$(GO) test -count=1 -timeout 40m ./...

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
