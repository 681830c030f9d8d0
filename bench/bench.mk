# Benchmarks: bench/*.c -> build/bench/<name>, linked with libdime.so.
# `make bench` runs the correctness smoke test, then dimebench, which prints
# a table and writes build/bench/results.csv. Not part of the tests; about
# three minutes. BENCH_REPS sets the repetitions (default 3).

BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
BENCH_REPS ?= 3

$(BUILD)/bench/%: bench/%.c $(LIB) $(wildcard src/engine/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(BUILD) -ldime -Wl,-rpath,'$$ORIGIN/..' $(LDLIBS) -lm

bench: $(BENCH_BINS)
	$(BUILD)/bench/smoke
	$(BUILD)/bench/dimebench -r $(BENCH_REPS) -o $(BUILD)/bench/results.csv

# The same real program (sort) under each replacement policy: remote and
# soft faults, run time, each policy's own cost per fault
# (bench/policies.sh; build/bench/policies.csv).
.PHONY: bench-policies
bench-policies: all $(BUILD)/tests/plugins/lfu.so
	bench/policies.sh $(BUILD)
