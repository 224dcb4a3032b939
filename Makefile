# dcos-consul: HashiCorp Consul as a DC/OS service.
#   make dev     a real Consul cluster on a simulated Mesos cluster, on loopback
#   make test    every test (installs and starts ZooKeeper for the store tests)
GO        ?= go
BIN       := bin/dcos-consul
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Release builds: no symbol table or DWARF (-s -w), no local paths (-trimpath).
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath
export GONOSUMDB := github.com/hashicorp,github.com/mesos
# Tests run real Consul clusters and simulated Mesos clusters; 40 minutes is
# a ceiling for a loaded 2-core machine, not an expectation.
TEST_TIMEOUT ?= 40m

.PHONY: build cli test fuzz race dev bench zookeeper universe marathon vet clean

build: $(BIN)

$(BIN): FORCE
	$(GO) build $(GOFLAGS_BUILD) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dcos-consul

# The DC/OS CLI plugin (operator commands only) for every platform, in
# dist/cli: dcos-consul-cli-<os>-<arch>[.exe].
CLI_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
cli:
	@mkdir -p dist/cli
	@for p in $(CLI_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "building dist/cli/dcos-consul-cli-$$os-$$arch$$ext"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -ldflags "$(LDFLAGS)" \
	    -o dist/cli/dcos-consul-cli-$$os-$$arch$$ext ./cmd/dcos-consul-cli || exit 1; done

FORCE:

dev: build
	./$(BIN) dev $(DEV_ARGS)

zookeeper:
	bash .ci/zookeeper.sh

test: zookeeper fuzz race
	$(GO) vet ./...
	@$(REALMESOS_NOTE)
	$(GO) test -count=1 -p 2 -timeout $(TEST_TIMEOUT) ./...
	@$(REALMESOS_NOTE)

# The real-Mesos suite (internal/realmesos, docs/real-mesos.md) needs
# /opt/mesos or ../shared/mesos/install.sh; without either it skips, which
# go test shows only with -v: say so here.
REALMESOS_NOTE = if [ ! -x /opt/mesos/sbin/mesos-master ] && [ ! -f ../shared/mesos/install.sh ]; then \
	echo "make test: the real-Mesos suite (internal/realmesos) is SKIPPED: no /opt/mesos/sbin/mesos-master and no ../shared/mesos/install.sh (see docs/real-mesos.md)" >&2; fi

# The race detector over the packages with concurrency. -short skips the
# tests that run real Consul agents (they run, without -race, in test):
# what is left drives the scheduler, executor, simulator, Mesos-DNS and dev
# harness code under the detector in a few minutes.
RACE_PKGS ?= ./scheduler/... ./executor/... ./internal/mesossim/... ./internal/mesosdns/... ./internal/dev/...
race: zookeeper
	$(GO) test -race -short -count=1 -p 2 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)

# Each fuzz test for its own count of executions (FUZZTIME=Nx overrides them
# all); their seed corpora also run in every go test. A failing input is saved
# under the package's testdata/fuzz/: commit it. Counts, not durations: with a
# duration, Go 1.26's fuzz coordinator can report "context deadline exceeded"
# as a failure when a starved worker is still busy at the deadline
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race, and
# -timeout still bounds a hang. Each count is a few seconds of fuzzing here.
FUZZTIME ?=
FUZZ := ./scheduler/config:FuzzLoad:3000x ./scheduler/placement:FuzzParse:30000x \
	./scheduler/state:FuzzStoredRecords:10000x ./internal/taskspec:FuzzDecode:50000x \
	./internal/taskspec:FuzzDecodeJoinUpdate:50000x ./scheduler:FuzzEvents:5000x \
	./scheduler:FuzzConsulACLGate:1000x ./scheduler/api:FuzzAPI:3000x
fuzz:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n="$(FUZZTIME)"; n=$${n:-$${rest#*:}}; \
		echo "fuzz $$pkg:$$name ($$n)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$n -timeout 10m "$$pkg"; \
	done

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./...

# A local Universe repository in dist/universe, to be served from BASE_URL
# (make universe BASE_URL=http://host:8080 SERVE=:8080 also serves it): the
# stripped linux binary as a .tar.gz the Mesos fetcher extracts, and the CLI
# plugin for every platform.
BASE_URL ?= http://localhost:8080
universe: build cli
	$(GO) run ./cmd/universe-repo -out dist/universe -binary $(BIN) -cli-dir dist/cli -base-url $(BASE_URL) $(if $(SERVE),-serve $(SERVE))

# Regenerate the top-level marathon.json (the template rendered with defaults).
marathon:
	$(GO) generate ./internal/universe

clean:
	rm -rf bin dist
