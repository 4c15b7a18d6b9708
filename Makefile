# stateguard — one Go workspace, several modules. `go test ./...` does not
# work at a go.work root, so every target loops over the workspace modules.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

MODULES = $(shell go list -m -f '{{.Dir}}')
GO_TEST_FLAGS ?= -race -count=1 -timeout 25m
BENCH ?= .
BENCH_FLAGS ?= -run '^$$' -benchmem -benchtime 1x -timeout 60m

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

.PHONY: tools
tools: ## build kube-apiserver, etcd, gosec, promtool and the cluster parts from the Go module proxy (cached outside the clone, linked into bin/); install chromium (Debian) and axe-core (npm) for the console's browser tests
	@bash hack/tools.sh kube-apiserver etcd gosec promtool cluster chromium axe-core

# The cluster parts (kube-controller-manager, kube-scheduler, the CSI
# snapshot-controller, csi-snapshotter and csi-provisioner, KWOK) are what
# kubetest.StartCluster runs beside the API server; `make tools` builds them
# too (about 7 minutes on 2 cores on top of kube-apiserver's build cache).
.PHONY: cluster-tools
cluster-tools: ## build only the cluster parts: kube-controller-manager, kube-scheduler, snapshot-controller, csi-snapshotter, csi-provisioner, KWOK
	@bash hack/tools.sh cluster

.PHONY: test
test: tools ## run every module's tests with -race, integration tests included
	@for m in $(MODULES); do \
		echo "== $${m#$(CURDIR)/}"; \
		(cd "$$m" && go test $(GO_TEST_FLAGS) ./...); \
	done

.PHONY: unit
unit: ## the edit-test loop: tests of every package that needs no control plane (no tools, no -race; UNIT_FLAGS to change)
	@bash hack/unit.sh

.PHONY: lint
lint: ## gofmt, go vet and golangci-lint on every module
	@bash hack/tools.sh golangci-lint
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do \
		echo "== lint $${m#$(CURDIR)/}"; \
		(cd "$$m" && go vet -tags compose ./... && $(CURDIR)/bin/golangci-lint run --allow-parallel-runners --config $(CURDIR)/.golangci.yml ./...); \
	done

.PHONY: bench
bench: tools ## run the benchmarks (each reports its ratio against a baseline in the same run)
	@for m in $(MODULES); do \
		echo "== bench $${m#$(CURDIR)/}"; \
		(cd "$$m" && go test $(BENCH_FLAGS) -bench '$(BENCH)' ./...); \
	done

.PHONY: run
run: tools ## start the local stack: embedded JetStream, a control plane, the services (DEMO=0 for the bare stack, TLS=1 for HTTPS)
	@go run ./pkg/harness/cmd/devstack -demo=$(or $(DEMO),1) $(if $(filter 1 true yes,$(TLS)),-tls) $(if $(filter command line,$(origin KUBECONFIG)),-kubeconfig=$(KUBECONFIG))

.PHONY: build
build: ## build the service binaries into bin/
	@for s in sastingest certwatcher snapshotter correlator console; do \
		(cd services/$$s && go build -o $(CURDIR)/bin/$$s .); \
	done

.PHONY: images
images: ## build the compose stack's images without a container engine (go-containerregistry on an empty base) into bin/images.tar
	@go run ./pkg/harness/cmd/images -out bin/images.tar

.PHONY: compose-tools
compose-tools: ## install containerd, runc and the CNI plugins (Debian) and build nerdctl (Go module proxy) for compose-test
	@bash hack/tools.sh compose

# Not part of `make test` (it would push a fresh `make test` past 45 min):
# .ci/run runs it after the tests. Root is needed (containerd, runc, CNI).
.PHONY: compose-test
compose-test: compose-tools ## bring docker-compose.yaml up on its own containerd with nerdctl compose, post a SARIF, see its event, bring it down
	@cd pkg/harness && go test -tags compose -count=1 -timeout 30m -v -run '^TestComposeUpOnContainerd$$' ./composetest/

.PHONY: generate
generate: ## regenerate the JSON Schemas and the README's event table from pkg/events
	@cd pkg/events && go generate ./...
