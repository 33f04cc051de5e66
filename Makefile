# aTES — see README.md.
GO ?= go
PKGS ?= ./...

.PHONY: run test test-short generate check-generated bench build vet chaos web web-deps check-web test-web

## run: start all of aTES on the embedded default (SQLite, in-process bus) on :8080
run:
	$(GO) run ./cmd/ates

## test: every test, with the race detector, against SQLite, PostgreSQL and RabbitMQ; at the end,
## the tests skipped because a server was unreachable (outside CI), one line each
test:
	$(GO) vet $(PKGS)
	@skips=$$(mktemp); status=0; \
	ATES_TEST_SKIPS=$$skips $(GO) test -race -count=1 -timeout 30m $(PKGS) || status=$$?; \
	if [ -s $$skips ]; then \
		echo "SKIPPED $$(wc -l < $$skips) tests because a server was unreachable (set CI=1 to fail instead):"; \
		sort $$skips | sed 's/^/  /'; \
	else echo "no test skipped for an unreachable server"; fi; \
	rm -f $$skips; [ $$status -eq 0 ] || exit $$status
	$(MAKE) test-web

## chaos: the fault suite (docs/reliability.md): the production topology as separate processes on
## a PostgreSQL cluster and a RabbitMQ node of its own, under load, through process kills and
## broker and database outages, then every money and delivery invariant checked (~6 minutes)
chaos:
	ATES_CHAOS=1 $(GO) test -count=1 -timeout 10m -v -run '^TestChaos$$' ./chaos/

## generate: regenerate the Ent and gqlgen code from pinned versions
# GOMAXPROCS=1 for entc: it runs goimports on its files in parallel, and goimports resolves an
# import it must add (tx.go's stdsql) from the sibling files on disk; a sibling being rewritten
# at that moment once left tx.go without the import. One file at a time, that cannot happen.
generate:
	GOMAXPROCS=1 $(GO) run -mod=mod ./ent/entc.go
	$(GO) tool gqlgen generate

## check-generated: fail when the committed generated code is stale
check-generated: generate
	@git diff --exit-code --stat -- ent graph || (echo "generated code is stale: run make generate and commit" && exit 1)
	@test -z "$$(git status --porcelain --untracked-files=all -- ent graph)" || (git status --porcelain -- ent graph; echo "generated code is stale: run make generate and commit"; exit 1)

## bench: the benchmarks whose figures are in docs/benchmarks.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## build: the ates binary into bin/
build:
	CGO_ENABLED=0 $(GO) build -o bin/ates ./cmd/ates

## web-deps: the web app's npm packages, exactly as web/package-lock.json pins them
NPM ?= npm
web-deps: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && $(NPM) ci --no-audit --no-fund

## web: regenerate the web app's GraphQL types (codegen) and build it into web/dist, which the
## binary embeds; both are committed, so `make run` needs only Go
web: web-deps
	cd web && $(NPM) run codegen && $(NPM) run build

## check-web: fail when the committed generated types or built assets differ from what the sources build
check-web: web
	@git diff --exit-code --stat -- web/dist web/src/gql || (echo "web/dist or web/src/gql is stale: run make web and commit" && exit 1)
	@test -z "$$(git status --porcelain --untracked-files=all -- web/dist web/src/gql)" || (git status --porcelain -- web/dist web/src/gql; echo "web/dist or web/src/gql is stale: run make web and commit"; exit 1)

## test-web: the web app's unit tests (vitest), then its browser tests (Playwright, Debian's
## chromium) against the real ates binary
test-web: web-deps
	cd web && $(NPM) test
	cd web && $(NPM) run e2e
