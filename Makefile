# dime - see README.md. `make` builds into build/; `make check` runs the
# tests; `make bench` runs the benchmarks (not part of the tests).

CC       ?= gcc
BUILD    ?= build
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -fPIC -pthread -Iinclude
LDLIBS   += -pthread
SAN      ?=

ENGINE_SRC := $(wildcard src/engine/*.c) $(wildcard src/policy/*.c)
PRELOAD_SRC := $(wildcard src/preload/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)
# The control plane (instance table) is used by the CLI and the preload.
CONTROL_SRC := $(wildcard src/control/*.c)
ATTACH_SRC := $(wildcard src/attach/*.c) $(wildcard src/attach/*.S)

ENGINE_OBJ  := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
PRELOAD_OBJ := $(PRELOAD_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
CONTROL_OBJ := $(CONTROL_SRC:%.c=$(BUILD)/obj/%.o)
ATTACH_OBJ  := $(patsubst %.S,$(BUILD)/obj/%.o,$(ATTACH_SRC:%.c=$(BUILD)/obj/%.o))

LIB      := $(BUILD)/libdime.so
PRELOAD  := $(BUILD)/libdime-preload.so
CLI      := $(BUILD)/dime
AGENT    := $(BUILD)/dime-agent

.PHONY: all check bench clean examples demo deps
all: $(LIB) $(PRELOAD) $(CLI) $(AGENT) examples $(BUILD)/demo-workload

# Installs missing Debian packages (as root); the two README commands,
# `make demo` and `make check`, start with it.
deps:
	@scripts/deps.sh

demo: deps
	$(MAKE) all
	demo/run.sh $(BUILD)

$(BUILD)/demo-workload: demo/workload.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -MMD -MP -c -o $@ $<

# Assembly (the agent's helper thread, one file per architecture, each
# empty on the others).
$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The library exports only the dime_ API (src/libdime.map).
$(LIB): $(ENGINE_OBJ) src/libdime.map
	$(CC) $(CFLAGS) $(SAN) -shared -Wl,--version-script=src/libdime.map -o $@ $(ENGINE_OBJ) -lmimalloc $(LDLIBS)

# The preload carries its own copy of the engine so that LD_PRELOAD needs
# one file; it exports the interposed libc functions and the dime_ API.
$(PRELOAD): $(ENGINE_OBJ) $(PRELOAD_OBJ) $(CONTROL_OBJ) src/preload/preload.map
	$(CC) $(CFLAGS) $(SAN) -shared -Wl,--version-script=src/preload/preload.map -o $@ $(ENGINE_OBJ) $(PRELOAD_OBJ) $(CONTROL_OBJ) -lmimalloc $(LDLIBS)

$(CLI): $(CLI_OBJ) $(CONTROL_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(SAN) -o $@ $(CLI_OBJ) $(CONTROL_OBJ) -L$(BUILD) -ldime -Wl,-rpath,'$$ORIGIN' $(LDLIBS)

# dime insert's agent (must stay next to the CLI) links the engine itself:
# it serves another process's memory with the engine's internals, as a
# member of an instance of the control plane.
$(AGENT): $(ENGINE_OBJ) $(ATTACH_OBJ) $(CONTROL_OBJ)
	$(CC) $(CFLAGS) $(SAN) -o $@ $(ATTACH_OBJ) $(ENGINE_OBJ) $(CONTROL_OBJ) -lcompel -lmimalloc $(LDLIBS)

EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(BUILD) -ldime -Wl,-rpath,'$$ORIGIN/..' $(LDLIBS)

include tests/tests.mk
include bench/bench.mk

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
