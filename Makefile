# weft — common tasks. `make test` is the one command that runs every test.
GO        ?= go
BIN       ?= bin/weft
WEFT_CACHE ?= $(HOME)/.cache/weft
JAEGER_VERSION ?= v1.76.0
export WEFT_JAEGER_BIN ?= $(WEFT_CACHE)/jaeger-$(JAEGER_VERSION)
KUBE_VERSION ?= v1.34.4
export WEFT_KUBE_APISERVER_BIN ?= $(WEFT_CACHE)/kube-apiserver-$(KUBE_VERSION)
COMPOSE_VERSION ?= v2.40.3
export WEFT_COMPOSE_BIN ?= $(WEFT_CACHE)/docker-compose-$(COMPOSE_VERSION)
export WEFT_COMPOSE_IMAGES ?= $(WEFT_CACHE)/compose-images-bookworm

.PHONY: all build generate check-generate vmlinux test unit e2e lint bench overhead fuzz run jaeger kube-apiserver compose compose-images compose-binaries demo demo-build clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/weft

# Regenerates the BPF objects and their Go bindings (needs clang, llvm, libbpf-dev).
generate:
	$(GO) generate ./bpf/...

# Fails when the committed BPF objects are stale.
check-generate: generate
	git diff --exit-code -- bpf/ || { echo "bpf/: committed objects are stale: run make generate and commit"; exit 1; }

# vmlinux.h is taken from the build machine's kernel BTF; CO-RE relocates it.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/c/vmlinux.h

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

# End-to-end tests: real probes, real programs, a real Jaeger and a real
# Kubernetes API server. Root only.
e2e: jaeger kube-apiserver compose compose-images
	$(GO) test -count=1 -v -timeout 20m ./e2e/

test: lint jaeger kube-apiserver compose compose-images
	$(GO) test -count=1 -timeout 25m ./...

# Go microbenchmarks, then (as root) bench/cmd/weftbench: real servers and
# load generators without and with weft, interleaved, one table printed
# and written to bench/results.json (see README, Performance). Knobs:
# BENCH_DURATION=8s BENCH_ROUNDS=2 BENCH_ONLY=nginx,gohttp BENCH_JSON=...
bench:
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /e2e)
	$(GO) run ./bench/cmd/weftbench

# The nginx rows of make bench alone. Root.
overhead:
	BENCH_ONLY=nginx $(GO) run ./bench/cmd/weftbench

# Every fuzz target, FUZZTIME each (the seeds alone run in make test).
FUZZTIME ?= 30s
fuzz:
	@for p in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$p/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; done; done

run: build
	sudo ./$(BIN)

# Builds the pinned Jaeger from the Go module proxy into a cache outside the repo.
jaeger:
	@WEFT_CACHE=$(WEFT_CACHE) JAEGER_VERSION=$(JAEGER_VERSION) bash e2e/jaeger.sh >/dev/null

# Builds the pinned kube-apiserver (for the Kubernetes e2e test) from the Go
# module proxy into the same cache: about 4 minutes cold, seconds after.
kube-apiserver:
	@WEFT_CACHE=$(WEFT_CACHE) KUBE_VERSION=$(KUBE_VERSION) bash e2e/kube-apiserver.sh >/dev/null

# Builds the pinned Docker Compose v2 (for the compose e2e test) from the Go
# module proxy into the cache: a few minutes cold, nothing after.
compose:
	@WEFT_CACHE=$(WEFT_CACHE) COMPOSE_VERSION=$(COMPOSE_VERSION) bash e2e/compose.sh >/dev/null

# Root filesystems standing in for the official postgres and python images
# (debootstrap, cached): for the compose e2e test on a machine with no registry.
compose-images:
	@WEFT_CACHE=$(WEFT_CACHE) bash e2e/compose-images.sh >/dev/null

# Static binaries for deploy/docker-compose's Dockerfile with
# BINARIES=prebuilt (WEFT_BINARIES=prebuilt docker compose build): no golang image needed.
compose-binaries:
	CGO_ENABLED=0 $(GO) build -o bin/compose/ ./cmd/weft ./demo/frontend ./demo/catalog ./demo/payments ./demo/loadgen

# The demo shop traced by weft, exported to a local Jaeger: one command, as
# root, no containers (see README, Demo). DEMO_ARGS go to demo/cmd/demo,
# e.g. DEMO_ARGS="-rate 20 -free-ports".
DEMO_BIN ?= bin/demo
DEMO_ARGS ?=
demo-build:
	$(GO) build -o $(DEMO_BIN)/ ./cmd/weft ./demo/cmd/demo ./demo/frontend ./demo/catalog ./demo/payments ./demo/dns ./demo/loadgen

demo: jaeger demo-build
	./$(DEMO_BIN)/demo -jaeger $(WEFT_JAEGER_BIN) $(DEMO_ARGS)

clean:
	rm -rf bin
