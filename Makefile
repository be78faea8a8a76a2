# batchmatch — the two commands a new user needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/batchmatch
DEMO    := demo
ASOF    ?= 2026-11-24
N       ?= 20000

.PHONY: all build demo test vet fmt-check duckdb fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/batchmatch

# Generate a built-in sample population, run the job on it, print where the
# output is and a short summary.
demo: build
	rm -rf $(DEMO)
	$(BIN) gen --out $(DEMO)/profiles --n $(N) --shards 4 --seed 42 --as-of $(ASOF) --invalid-ratio 0.0005 --log-format text
	$(BIN) run --profiles $(DEMO)/profiles --out $(DEMO)/out --as-of $(ASOF) --log-format text --log-level warn
	@echo
	@echo "Output: $(DEMO)/out/dt=$(ASOF)/ (matches/, soulmates/, rejects/, manifest.json, _SUCCESS)"

# Everything: vet, formatting, unit, property and process-level tests, the
# race detector on the pipeline, and a short run of every fuzz target.
# Minimisation is capped: minimising a new 10-30 KB Parquet input otherwise
# takes up to a minute per input and looks like a hang.
FUZZ = $(GO) test -count=1 -run '^$$' -fuzzminimizetime 2s
DUCKDB := testdata/duckdb
test: vet fmt-check duckdb
	BATCHMATCH_DUCKDB_DIR=$(CURDIR)/$(DUCKDB) $(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short ./pipeline/... ./cmd/...
	$(FUZZ) -fuzz '^FuzzQuestions$$' -fuzztime 5s ./kernels
	$(FUZZ) -fuzz '^FuzzDot$$' -fuzztime 5s ./kernels
	$(FUZZ) -fuzz '^FuzzReadProfiles$$' -fuzztime 15s ./pipeline
	$(FUZZ) -fuzz '^FuzzValidateRow$$' -fuzztime 10s ./pipeline

# Longer fuzzing; FUZZ_WATCHDOG=/tmp/wd dumps stacks of any exec over 5 s.
fuzz:
	$(FUZZ) -fuzz '^FuzzReadProfiles$$' -fuzztime 5m ./pipeline
	$(FUZZ) -fuzz '^FuzzValidateRow$$' -fuzztime 2m ./pipeline
	$(FUZZ) -fuzz '^FuzzQuestions$$' -fuzztime 1m ./kernels
	$(FUZZ) -fuzz '^FuzzDot$$' -fuzztime 1m ./kernels

# DuckDB (npm @duckdb/node-api, pinned by package-lock.json) is a real
# analytics client in the tests: pipeline/duckdb_test.go.
duckdb: $(DUCKDB)/node_modules/.installed
$(DUCKDB)/node_modules/.installed: $(DUCKDB)/package-lock.json
	cd $(DUCKDB) && npm ci --no-audit --no-fund
	touch $@

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Kernel and pipeline benchmarks; see bench/RESULTS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./kernels ./pipeline | tee bench/out.txt

clean:
	rm -rf bin $(DEMO)
