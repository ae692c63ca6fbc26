# Test and build entry points. `make test` is the README's test command and
# what CI runs; it needs root for the namespace, AF_XDP and TAP tests
# (without root they skip).
GO ?= go
FUZZTIME ?= 10s

.PHONY: test vet unit fuzz build
test: vet unit fuzz

build:
	CGO_ENABLED=0 $(GO) build ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	CGO_ENABLED=0 $(GO) vet ./...

unit:
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 20m ./...

# A short run of every fuzz target on top of the committed seed corpus.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
