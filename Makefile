# mapquake's set-up and front door. Every target is idempotent; `demo` and `test`
# both start from `setup`, so a fresh machine needs nothing but `make demo` or `make test`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GOBIN := $(CURDIR)/$(VENV)/gobin
BIN := bin
# Pinned code generators: regenerating must give the committed files byte for byte.
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# Debian packages the runs and tests use (iproute2: network namespaces; gcc: go test -race;
# prometheus: the server binary each local run starts itself; its packaged service is not used;
# chromium: the headless browser the report test opens report.html in; python3-nftables: the chaos
# agent's in-process libnftables binding, chaos/engines/nftlib.py).
APT_PACKAGES := gcc iproute2 nftables python3-nftables prometheus chromium mmdebstrap
# The Go modules: go_targets (maptarget, mapload), mapprobe (the library services import; go_targets
# builds it from ../mapprobe), the example service and the verdict matrix's sessions service
# (bench/services/sessions). lint and test-go cover all of them.
GO_MODULES := go_targets mapprobe examples/inventory bench/services/sessions
GO_SOURCES := $(shell find go_targets mapprobe -name '*.go' -o -name 'go.mod' -o -name 'go.sum')
# The single-node test cluster's node (python -m cluster, tests/k8s): container runtime and CNI plugins.
APT_PACKAGES += containerd runc containernetworking-plugins

.PHONY: help setup system python tools toolchains build proto proto-check lint test test-python test-go demo smoke clean cluster-binaries

help:
	@echo "make demo   set everything up and run the quickstart scenario (needs root: network namespaces)"
	@echo "make smoke  set everything up, start one Go target on loopback, load it, print heap and entries"
	@echo "make test   set everything up and run every test (pytest and go test -race)"
	@echo "make setup  only the set-up: Debian packages, Go toolchains, Python venv, Go build"
	@echo "make lint   ruff, import layers (import-linter), types (mypy), gofmt, go vet, generated-code freshness"
	@echo "make proto  regenerate Go and Python code from go_targets/proto"

setup: system toolchains python tools build

system:
	@scripts/install-system-packages.sh $(APT_PACKAGES)
	@go version >/dev/null 2>&1 || { echo "Go 1.26 is required on PATH (https://go.dev/doc/install)"; exit 1; }

toolchains:
	@if [ -x scripts/install-go-toolchains.sh ]; then scripts/install-go-toolchains.sh; fi

python: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

tools: $(GOBIN)/protoc-gen-go $(GOBIN)/protoc-gen-go-grpc

$(GOBIN)/protoc-gen-go:
	cd go_targets && GOBIN=$(GOBIN) go install $(PROTOC_GEN_GO)

$(GOBIN)/protoc-gen-go-grpc:
	cd go_targets && GOBIN=$(GOBIN) go install $(PROTOC_GEN_GO_GRPC)

build: $(BIN)/maptarget $(BIN)/mapload $(BIN)/go1.23/maptarget

$(BIN)/maptarget $(BIN)/mapload &: $(GO_SOURCES)
	cd go_targets && go build -o ../$(BIN)/ ./cmd/maptarget ./cmd/mapload

# Scenario targets with go: "1.23" run maptarget built by Debian's Go 1.23 against the dependency
# versions pinned in go_targets/go1.23.mod (go.mod needs Go 1.26). Building it here also keeps
# the sources buildable with Go 1.23. Skipped (with a note) where that toolchain is missing.
$(BIN)/go1.23/maptarget: $(GO_SOURCES) go_targets/go1.23.mod go_targets/go1.23.sum
	@if [ -x /usr/lib/go-1.23/bin/go ]; then \
		cd go_targets && GOTOOLCHAIN=local /usr/lib/go-1.23/bin/go build -modfile=go1.23.mod -o ../$(BIN)/go1.23/ ./cmd/maptarget; \
	else echo "note: no Go 1.23 in /usr/lib/go-1.23 (make toolchains): go: \"1.23\" targets cannot run"; fi

proto: python tools
	scripts/gen-proto.sh

proto-check: python tools
	scripts/gen-proto.sh --check

lint: python tools proto-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy
	@out=$$(gofmt -l $(GO_MODULES)); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	for m in $(GO_MODULES); do (cd $$m && go vet ./...); done

test: setup lint cluster-binaries test-go test-python

# The test cluster's binaries (etcd, kube-apiserver, controller-manager, scheduler, kubelet, CoreDNS,
# helm), built from the Go module proxy once and cached by versions (cold: ~20 min on 2 cores), and a
# user's monitoring stack for the prometheus.existing tests: upstream Prometheus, the Prometheus Operator
# and its CRDs (cold: ~8 min).
cluster-binaries:
	cluster/build-binaries.sh >/dev/null
	cluster/build-monitoring.sh >/dev/null

test-go:
	for m in $(GO_MODULES); do (cd $$m && go test -race -count=1 ./...); done

test-python:
	$(VENV)/bin/pytest

demo: setup
	$(VENV)/bin/mapquake run scenarios/quickstart.yaml

smoke: setup
	$(VENV)/bin/mapquake smoke

clean:
	rm -rf $(BIN) $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
