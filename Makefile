# glbdns build. CGO is off: the binaries are static and start anywhere.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/glbdns/glbdns/internal/buildinfo.Version=$(VERSION) \
            -X github.com/glbdns/glbdns/internal/buildinfo.Revision=$(REVISION)
GO       ?= go
BIN      := bin
LISTEN   ?= 127.0.0.1:5353
HEALTH_LISTEN ?= 127.0.0.1:8054
ADMIN    ?= 127.0.0.1:8053
# Test timeout: the whole suite runs in a few minutes on 2 cores; the bound only catches hangs.
TEST_TIMEOUT ?= 15m

.PHONY: all build run run-cluster test test-short vet fmt bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# run: the DNS server, the health daemon and demo backends on loopback, on examples/.
run: build
	./examples/run.sh $(BIN) $(LISTEN) $(HEALTH_LISTEN) $(ADMIN)

# run-cluster: three glbdns nodes (127.0.0.21-23:5353, admin on :8053 of the same addresses)
# on a real 3-member etcd cluster built by .ci/etcd.sh, two healthd reporters found through
# etcd, and the demo backends, on loopback.
run-cluster: build
	./examples/run-cluster.sh $(BIN)

# test: every test, the e2e tests (which build the real binaries) included, under the race
# detector. gofmt and go vet run first so CI catches them too.
# The Terraform acceptance tests run against a real OpenTofu, and the cluster tests against a
# real etcd, both built from the Go module proxy by .ci/tofu.sh and .ci/etcd.sh on first use
# (about 4 minutes and 1 minute) and cached in ~/.cache/glbdns.
test: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	tofu=$$(bash .ci/tofu.sh | tail -n1) && etcd=$$(bash .ci/etcd.sh | tail -n1) && \
	  TF_ACC=1 TF_ACC_TERRAFORM_PATH="$$tofu" GLBDNS_ETCD="$$etcd" CGO_ENABLED=1 \
	  $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# bench: the Go benchmarks, then (when dnsperf is installed) glbdns measured beside the peer
# servers of ../shared/bench (bench/run.sh; ROUNDS=3 by default, about 10 minutes a round).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@if command -v dnsperf >/dev/null 2>&1; then ./bench/run.sh; else echo "dnsperf not installed: skipping bench/run.sh"; fi

clean:
	rm -rf $(BIN)
