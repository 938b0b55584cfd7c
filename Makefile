# The commands a new user needs; README.md explains them.
SWIFT ?= swift

.PHONY: deps build release dist image run test soak fuzz demo clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The shipped binaries (static Swift runtime, stripped) in .build-dist/, as CI and the image build them.
dist: deps
	./scripts/build-release.sh

# The container image from those binaries (needs a Docker engine; BASE_IMAGE can name a local base).
image: dist
	docker build --target runtime-local -t mycelium:local $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) .

# Runs a node (root or CAP_NET_ADMIN is needed for the TUN device). Pass options in ARGS, e.g.
#   make run ARGS="--peers tcp://[2001:db8::1]:9651"
run: release
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; $$sudo .build/release/mycelium $(ARGS)

# Installs what is missing, builds everything (the CLI tests run the built binary), runs every test:
# the Swift suites, then the packaging tests (chart, manifests, Dockerfile, image; tests/packaging).
# The suites run one at a time: the namespace tests block their threads on processes they wait
# for, and on 2 cores two of them starve Swift's cooperative pool, so an in-process API test
# waited 10 s for its own server (seen in CI). Serial costs about 70 s of a 7-minute run.
test: deps
	./scripts/install-test-tools.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --no-parallel
	FUZZ_RUNS=200000 ./scripts/fuzz.sh
	./scripts/test-packaging.sh

# Faults and load on 50 real daemons (release build) in network namespaces on a random graph:
# links cut and restored, crashes, a partition, 200 inbound connections, a slow peer, a TUN
# flood; prints time to reachability, lost pings, RSS and CPU (about 12 minutes; root). The
# report grows line by line in .build/soak-report.txt (tail -f it to follow). `make test` runs
# the same suite on 8 nodes.
# SOAK_NODES=N changes the size.
soak: deps
	./scripts/install-test-tools.sh
	$(SWIFT) build -c release --product mycelium
	$(SWIFT) build --build-tests
	MYCELIUM_SOAK=full MYCELIUM_SOAK_NODES=$(or $(SOAK_NODES),50) MYCELIUM_SOAK_REPORT=$(CURDIR)/.build/soak-report.txt \
		MYCELIUM_LAB_BINARY=$(CURDIR)/.build/release/mycelium \
		$(SWIFT) test --skip-build --no-parallel --filter IntegrationTests.SoakTests

# Coverage-guided fuzzing of every decoder and of the router (libFuzzer), FUZZ_SECONDS long
# (default 10 minutes); a crash leaves its input in Tests/Fuzz/crashers/ (commit it: the suite
# replays it for ever). `make test` runs 200 000 inputs of it with a fixed seed (about a minute).
fuzz: deps
	./scripts/fuzz.sh $(FUZZ_SECONDS)

# Two hosts and two containers in network namespaces, joined over the overlay through the CNI
# plugin; prints every step and cleans up (root needed).
demo: build
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; $$sudo ./scripts/demo.sh

clean:
	rm -rf .build
