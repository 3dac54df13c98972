# luaspy: `make` builds ./luaspy; `make test` runs the whole suite;
# `make demo` profiles the bundled workload. See README.md.

VERSION := 0.1.0
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wno-missing-field-initializers
override CFLAGS += -std=gnu11 $(WARN) -DLUASPY_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS := -lelf -lz

SRCS := $(wildcard src/*.c src/proc/*.c src/luajit/*.c src/output/*.c src/cmd/*.c)
OBJS := $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer

all: luaspy

luaspy: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The sanitizer build the tests run: ASan + UBSan, same sources.
asan: build/asan/luaspy

build/asan/luaspy: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

build/asan/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -c -o $@ $<

test: luaspy asan
	tests/run

demo:
	scripts/demo.sh

format:
	clang-format -i $(SRCS) $(wildcard src/*/*.h)

clean:
	rm -rf build luaspy

.PHONY: all asan test demo format clean

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d)
