# make test: every test. make dev: the function locally against the Auth emulator (next issue).
SHELL := /bin/bash
GO ?= go

.PHONY: test go-test
test: go-test

# The Go suite is hermetic: Google's endpoints and Secret Manager are stood in on loopback.
go-test:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [[ -n $$unformatted ]]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test -race -count=1 ./...
