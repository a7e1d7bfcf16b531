# make test: every test (Go, then the e2e suite with real clients). make dev: run it all locally.
SHELL := /bin/bash
GO ?= go
# Go tools pinned by tool directives in tools/go.mod, apart from the go.mod the deploy uploads.
TOOL := $(GO) tool -modfile=tools/go.mod
PROJECT := demo-proficient
# CI=true: the CLI skips its message-of-the-day fetch; NO_UPDATE_NOTIFIER: and its version check.
# Nothing then leaves loopback (checked with strace -e connect).
FIREBASE := CI=true NO_UPDATE_NOTIFIER=1 e2e/node_modules/.bin/firebase

.PHONY: test go-test e2e e2e-deps dev function bench
# Quiet: a line per suite and the total; the full output goes to bin/test.log (make go-test e2e
# prints it all).
test:
	@tools/quiet-test.sh

# Static checks (no production function over cyclomatic complexity 12), then the Go suite: hermetic, Google's endpoints and Secret Manager stood in on
# loopback; fuzz seeds run as tests; deploy/ needs gcloud (list-files-for-upload, offline); then
# tools/testcount, which counts make test's tests.
go-test:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [[ -n $$unformatted ]]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(TOOL) staticcheck ./...
	$(TOOL) gocyclo -over 12 $$(ls *.go | grep -v _test.go)
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./...
	cd tools && $(GO) vet ./testcount && $(GO) tool staticcheck ./testcount && $(GO) test -count=1 $(GOTESTFLAGS) ./testcount

# Real clients: the Auth emulator, the Firebase JS SDK in Node, Chromium loading public/ and the
# README's snippets through a Vite dev server, the README's Next.js app under next dev (e2e/nextjs),
# docs/angular.md's app under ng build and ng serve (e2e/angular), tsc --strict over the README's
# snippets; and the conformance suite against firebase-functions' own onCall (e2e/reference) in the
# Functions emulator.
e2e: e2e-deps function
	$(FIREBASE) emulators:exec --config e2e/firebase.json --only auth,functions --project $(PROJECT) "cd $(CURDIR)/e2e && node --test $(NODETESTFLAGS)"

# The e2e suite's npm trees, one install per lock file. make test installs them while the Go suite
# runs.
e2e-deps: e2e/node_modules/.package-lock.json e2e/reference/node_modules/.package-lock.json e2e/vite/node_modules/.package-lock.json e2e/nextjs/node_modules/.package-lock.json e2e/angular/node_modules/.package-lock.json

# The Auth emulator, the function against it and the demo page; Ctrl-C stops them all. The Go
# build (on a fresh machine the longest part: the modules' download, then compiling) runs beside
# the npm install and the emulator's start; dev.mjs waits for its exit status in bin/build.status.
dev:
	@mkdir -p bin && rm -f bin/build.status
	@{ $(GO) build -o bin/proficient-hmac ./cmd; echo $$? >bin/build.status.tmp && mv bin/build.status.tmp bin/build.status; } & \
	$(MAKE) --no-print-directory e2e/node_modules/.package-lock.json && \
	FUNCTION_BUILD_STATUS=bin/build.status $(FIREBASE) emulators:exec --only auth --project $(PROJECT) "node e2e/dev.mjs"

# The local runner (make dev), and the function as Cloud Run runs it (the e2e suites).
function:
	$(GO) build -o bin/proficient-hmac ./cmd
	$(GO) build -o bin/function ./bench/function

# --omit=optional: firebase-tools' optional native re2 would be compiled with node-gyp (minutes
# of both cores; its prebuilt binary cannot be fetched here); the CLI falls back to RegExp.
e2e/node_modules/.package-lock.json: e2e/package-lock.json
	npm ci --prefix e2e --no-audit --no-fund --omit=optional

e2e/reference/node_modules/.package-lock.json: e2e/reference/package-lock.json
	npm ci --prefix e2e/reference --no-audit --no-fund --omit=optional

# Vite for the README's dev-server recipe, in its own tree as in an app; with its optional
# dependencies, which are its prebuilt native parts (rollup's, esbuild's).
e2e/vite/node_modules/.package-lock.json: e2e/vite/package-lock.json
	npm ci --prefix e2e/vite --no-audit --no-fund

# The README's Next.js app (e2e/nextjs.test.mjs). Optional packages stay: Next.js's compiler is the
# prebuilt @next/swc binary for this platform, an optional dependency.
e2e/nextjs/node_modules/.package-lock.json: e2e/nextjs/package-lock.json
	npm ci --prefix e2e/nextjs --no-audit --no-fund

# docs/angular.md's app (e2e/angular.test.mjs) and the TypeScript the README's snippets are compiled
# with. Optional packages stay: they are the build's prebuilt native parts (esbuild's, rolldown's).
e2e/angular/node_modules/.package-lock.json: e2e/angular/package-lock.json
	npm ci --prefix e2e/angular --no-audit --no-fund

# The handler against the Admin SDK's own verification (Go benchmarks, interleaved), then the
# function as Cloud Run runs it (the buildpack's main, K_SERVICE set, output on drained pipes)
# against a minimal net/http reference (bench/reference) under wrk on loopback, in three request
# forms, and against what a user would deploy instead (bench/node: onCall, Express) on the
# callable POST; then the cold start with Google's keys and Secret Manager each 200 ms slow; then
# the outage scenarios (bench/outage: Google's keys failing, a secret file torn, under load).
# See bench/README.md. The Node peers are installed here only, never by make test.
bench: bench/node/node_modules/.package-lock.json
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(GO) build -o bin/function ./bench/function
	$(GO) build -o bin/reference ./bench/reference
	for i in 1 2 3 4 5 6 7 8 9 10; do $(GO) test -run '^$$' -bench . -benchmem -count 1 . | grep '^Benchmark'; done > bin/handler-bench.txt
	$(TOOL) benchstat bin/handler-bench.txt
	$(GO) run ./bench/load -function bin/function -reference bin/reference -node bench/node
	$(GO) run ./bench/load -function bin/function -coldstart 200ms -rounds 7 2>/dev/null
	$(GO) run ./bench/outage -function bin/function

# --omit=optional: firebase-admin's optional Firestore and Storage clients, which neither peer loads.
bench/node/node_modules/.package-lock.json: bench/node/package-lock.json
	npm ci --prefix bench/node --no-audit --no-fund --omit=optional
