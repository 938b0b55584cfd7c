# The commands a new user needs; README.md explains them.
SWIFT ?= swift

.PHONY: deps build release test clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Installs what is missing, builds everything (the CLI tests run the built binary), runs every test.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

clean:
	rm -rf .build
