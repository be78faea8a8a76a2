# batchmatch — the two commands a new user needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/batchmatch
DEMO    := demo
ASOF    ?= 2026-11-24
N       ?= 20000

.PHONY: all build demo test vet fmt-check fuzz bench clean

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

# Everything: vet, formatting, unit and property tests, the race detector
# on the pipeline, and a short run of every fuzz target.
test: vet fmt-check
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short ./pipeline/... ./cmd/...
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzQuestions$$' -fuzztime 5s ./kernels
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzDot$$' -fuzztime 5s ./kernels

# Longer fuzzing, including the Parquet reader (arrow-go decoders on mutated
# files; not in `make test`: see docs/ARCHITECTURE.md, "Fuzzing").
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadProfiles$$' -fuzztime 5m ./pipeline
	$(GO) test -run '^$$' -fuzz '^FuzzQuestions$$' -fuzztime 1m ./kernels
	$(GO) test -run '^$$' -fuzz '^FuzzDot$$' -fuzztime 1m ./kernels

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Kernel and pipeline benchmarks; see bench/RESULTS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./kernels ./pipeline | tee bench/out.txt

clean:
	rm -rf bin $(DEMO)
