# Benchmarks: bench/*.c -> build/bench/<name>, each linked with libdime.so
# and bench/lib/*.c (access patterns timed from inside, the zram baseline's
# cgroup side). `make bench` runs the correctness smoke test, then dimebench
# under bench/zram-baseline.sh (the zram baseline when root and zram are
# there, one line saying what is missing otherwise), which prints a table and
# writes build/bench/results.csv. Not part of the tests; about five minutes.
# BENCH_REPS sets the repetitions (default 3). `make accuracy-report` runs
# the same and writes docs/results/accuracy.md and accuracy.csv.

BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
BENCH_LIB  := $(wildcard bench/lib/*.c)
BENCH_REPS ?= 3

# A benchmark NAME may have more sources in bench/NAME/ (dimebench's report).
.SECONDEXPANSION:
$(BUILD)/bench/%: bench/%.c $(BENCH_LIB) $(wildcard bench/lib/*.h) $$(wildcard bench/%/*.c bench/%/*.h) \
		$(LIB) $(wildcard src/engine/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(wildcard bench/$*/*.c) $(BENCH_LIB) -L$(BUILD) -ldime \
		-Wl,-rpath,'$$ORIGIN/..' $(LDLIBS) -lm

bench: $(BENCH_BINS)
	$(BUILD)/bench/smoke
	bench/zram-baseline.sh $(BUILD)/bench/dimebench -r $(BENCH_REPS) -o $(BUILD)/bench/results.csv

# The accuracy report: the bench rows and the zram baseline in one run,
# written to docs/results/accuracy.md (bench/accuracy-report.sh).
.PHONY: accuracy-report
accuracy-report: $(BENCH_BINS)
	$(BUILD)/bench/smoke
	BENCH_REPS=$(BENCH_REPS) bench/accuracy-report.sh $(BUILD)

# The same real program (sort) under each replacement policy: remote and
# soft faults, run time, each policy's own cost per fault
# (bench/policies.sh; build/bench/policies.csv).
.PHONY: bench-policies
bench-policies: all $(BUILD)/tests/plugins/lfu.so
	bench/policies.sh $(BUILD)
