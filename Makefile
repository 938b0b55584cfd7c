# The commands a new user needs; README.md explains them.
SWIFT ?= swift

.PHONY: deps build release dist image run test fuzz demo clean

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
