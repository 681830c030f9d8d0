# Tests: one Criterion program per module, tests/<module>/*.c ->
# build/tests/<module>. `make check` builds everything and runs them all
# (tests/run.sh); `make check-asan` runs the engine and policy tests under ASan+UBSan.

TEST_DIRS := $(sort $(dir $(wildcard tests/*/*.c)))
TEST_BINS := $(patsubst tests/%/,$(BUILD)/tests/%,$(TEST_DIRS))

$(BUILD)/tests/%: tests/%/*.c $(wildcard tests/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -Itests -o $@ $(filter %.c,$^) -L$(BUILD) -ldime \
		-Wl,-rpath,'$$ORIGIN/..' -lcriterion $(LDLIBS)

# The control plane is not in libdime: its tests link its objects.
$(BUILD)/tests/control: tests/control/*.c $(wildcard tests/*.h) $(LIB) $(CONTROL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -Itests -o $@ $(filter %.c %.o,$^) -L$(BUILD) -ldime \
		-Wl,-rpath,'$$ORIGIN/..' -lcriterion $(LDLIBS)

# The engine's tests use the library as a program does, and one of its
# internal mechanisms directly: the handlers' mailbox.
$(BUILD)/tests/engine: tests/engine/*.c $(wildcard tests/*.h) $(LIB) $(BUILD)/obj/src/engine/mailbox.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -Itests -Isrc/engine -o $@ $(filter %.c %.o,$^) -L$(BUILD) -ldime \
		-Wl,-rpath,'$$ORIGIN/..' -lcriterion $(LDLIBS)

# The preload tests run helper programs (tests/preload/progs/*.c, plain C)
# under LD_PRELOAD; they live in build/tests/progs/.
PROG_BINS := $(patsubst tests/preload/progs/%.c,$(BUILD)/tests/progs/%,\
	$(wildcard tests/preload/progs/*.c))
$(BUILD)/tests/progs/%: tests/preload/progs/%.c tests/preload/progs/common.h tests/proc-state.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)
$(BUILD)/tests/preload: $(PROG_BINS) $(PRELOAD)
$(BUILD)/tests/cli: $(PROG_BINS)

# The attach tests run a plain program (tests/attach/progs/) and attach
# dime to it with dime insert.
ATTACH_PROG_BINS := $(patsubst tests/attach/progs/%.c,$(BUILD)/tests/attach-progs/%,\
	$(wildcard tests/attach/progs/*.c))
$(BUILD)/tests/attach-progs/%: tests/attach/progs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)
$(BUILD)/tests/attach: $(ATTACH_PROG_BINS) $(CLI) $(AGENT) $(PROG_BINS) $(PRELOAD)

.PHONY: check check-asan tests
tests: all $(TEST_BINS)

# The engine and preload tests run three times: as they come (UFFDIO_MOVE,
# page-in choosing move or copy by measurement), with the copy fallback
# that kernels before 6.8 get (DIME_NO_MOVE=1 forces it), and with every
# page-in a copy from the store (DIME_COPY_IN=1).
check: deps
	$(MAKE) tests
	tests/run.sh $(BUILD) $(TEST_BINS)
	DIME_NO_MOVE=1 tests/run.sh $(BUILD) $(BUILD)/tests/engine $(BUILD)/tests/preload
	DIME_COPY_IN=1 tests/run.sh $(BUILD) $(BUILD)/tests/engine $(BUILD)/tests/preload
	DIME_TEST_POLICY=lru tests/run.sh $(BUILD) $(BUILD)/tests/preload
	$(MAKE) check-asan

# The same engine tests on an instrumented build in its own directory. The
# fork tests are left out there: a fork child's new handler threads can
# block forever on an ASan allocator lock that another thread of the parent
# held at fork() (ASan's state, not dime's, is not fork-safe with threads).
check-asan:
	$(MAKE) BUILD=build-asan SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" \
		build-asan/tests/engine build-asan/tests/policy
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 TEST_FILTER='!(fork)/*' \
		tests/run.sh build-asan build-asan/tests/engine build-asan/tests/policy

# Policy plug-ins the tests load: broken ones (tests/policy/plugins/*.c)
# and the example LFU, built by its own Makefile against include/ alone.
PLUGIN_SOS := $(patsubst tests/policy/plugins/%.c,$(BUILD)/tests/plugins/%.so,\
	$(wildcard tests/policy/plugins/*.c)) $(BUILD)/tests/plugins/lfu.so
$(BUILD)/tests/plugins/%.so: tests/policy/plugins/%.c include/dime/policy.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $<
$(BUILD)/tests/plugins/lfu.so: examples/policy/lfu.c examples/policy/Makefile include/dime/policy.h
	@mkdir -p $(dir $@)
	$(MAKE) -C examples/policy DIME=$(CURDIR) OUT=$(abspath $(dir $@))
$(BUILD)/tests/policy $(BUILD)/tests/cli: $(PLUGIN_SOS)
