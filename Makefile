# luaspy: `make` builds ./luaspy; `make test` runs the whole suite;
# `make demo` profiles the bundled workload. See README.md.

VERSION := 0.1.0
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wno-missing-field-initializers
override CFLAGS += -std=gnu11 $(WARN) -DLUASPY_VERSION='"$(VERSION)"' -MMD -MP
override CFLAGS += -Ibuild/bpf
LDLIBS := -lbpf -ldw -lelf -lz -llzma -lm

# Every C file under src/ but the BPF programs, which build separately.
SRCS := $(filter-out src/bpf/%,$(wildcard src/*.c src/*/*.c))
OBJS := $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)

# pprof output: src/output/proto/profile.proto compiled to C by protoc-c
# (build/proto/profile.pb-c.{c,h}), linked with libprotobuf-c.
PROTO_C := build/proto/profile.pb-c.c
PROTO_H := $(PROTO_C:.c=.h)
OBJS += build/obj/proto/profile.pb-c.o
ASAN_OBJS += build/asan/obj/proto/profile.pb-c.o
override CFLAGS += -Ibuild/proto
LDLIBS += -lprotobuf-c -lcurl

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer

all: luaspy

luaspy: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# BPF programs (CO-RE): compiled against the running kernel's BTF, then
# embedded in the binary as a libbpf skeleton (build/bpf/NAME.skel.h).
BPF_CLANG ?= clang
BPF_SRCS := $(wildcard src/bpf/*.bpf.c)
BPF_SKELS := $(BPF_SRCS:src/bpf/%.bpf.c=build/bpf/%.skel.h)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Wextra -Ibuild/bpf

build/bpf/vmlinux.h:
	@mkdir -p $(dir $@)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c >$@.tmp
	mv $@.tmp $@

build/bpf/%.bpf.o: src/bpf/%.bpf.c src/bpf/sample.h src/bpf/luawalk.bpf.h src/bpf/capture.bpf.h src/bpf/ustack.bpf.h src/bpf/trace.h src/luajit/layout.h build/bpf/vmlinux.h
	$(BPF_CLANG) $(BPF_CFLAGS) -c -o $@ $<
	llvm-strip -g $@ # DWARF: the skeleton needs only BTF

build/bpf/%.skel.h: build/bpf/%.bpf.o
	bpftool gen skeleton $< name luaspy_$* >$@.tmp
	mv $@.tmp $@

.PRECIOUS: build/bpf/%.bpf.o

# The skeletons must exist before anything including them is compiled.
$(OBJS) $(ASAN_OBJS): | $(BPF_SKELS)

build/proto/%.pb-c.c build/proto/%.pb-c.h: src/output/proto/%.proto
	@mkdir -p $(dir $@)
	protoc-c --proto_path=$(dir $<) --c_out=$(dir $@) $<

.PRECIOUS: build/proto/%.pb-c.c build/proto/%.pb-c.h

# Like the skeletons, the generated header must come first.
$(OBJS) $(ASAN_OBJS): | $(PROTO_H)

build/obj/proto/%.o: build/proto/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

build/asan/obj/proto/%.o: build/proto/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -c -o $@ $<

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

# make install [PREFIX=/usr/local] [DESTDIR=staging dir]
PREFIX ?= /usr/local
BINDIR := $(DESTDIR)$(PREFIX)/bin
MANDIR := $(DESTDIR)$(PREFIX)/share/man/man1
COMPDIR := $(DESTDIR)$(PREFIX)/share/bash-completion/completions

install: luaspy
	install -D -m 755 luaspy $(BINDIR)/luaspy
	install -D -m 644 docs/luaspy.1 $(MANDIR)/luaspy.1
	install -D -m 644 scripts/luaspy.bash-completion $(COMPDIR)/luaspy

.PHONY: install

clean:
	rm -rf build luaspy

.PHONY: all asan test demo format clean

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d)

# libFuzzer targets (tests/fuzz/README.md): the walker, symbolizer and heap
# walker on synthetic process images, served by tests/fuzz/fake_mem.c in
# place of src/proc/mem.c; every command's option parsing, the PID list,
# folded-stack and raw recording parsers. The seed corpus comes from
# tests/fuzz/gen_seeds.c. `make fuzz` builds them
# into build/fuzz/; tests/test_fuzz.sh runs them.
FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -g -O1 $(WARN) -DLUASPY_VERSION='"$(VERSION)"' -MMD -MP -Ibuild/bpf -Ibuild/proto
FUZZ_TARGETS := walk symbolize heap cli raw
# What the targets reach: every module but main.c, and fake_mem.c in
# place of mem.c. fuzz_cli runs the command frontends' parsing, which
# links in the rest (BPF skeletons included) without running it.
FUZZ_LIB_SRCS := $(filter-out src/main.c src/proc/mem.c,$(SRCS))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:src/%.c=build/fuzz/obj/%.o) build/fuzz/obj/proto/profile.pb-c.o

fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%) build/fuzz/gen_seeds

build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/proto/%.o: build/proto/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/tests/%.o: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB_OBJS): | $(BPF_SKELS) $(PROTO_H)

# An archive: each target pulls in only the objects it needs.
build/fuzz/libluaspy.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_%: build/fuzz/obj/tests/fuzz_%.o build/fuzz/obj/tests/fake_mem.o build/fuzz/libluaspy.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# The seed generator runs on the build machine: no fuzzer runtime.
build/fuzz/gen_seeds: tests/fuzz/gen_seeds.c tests/fuzz/image.h src/luajit/layouts.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -g -O1 $(WARN) $(SAN) -o $@ tests/fuzz/gen_seeds.c src/luajit/layouts.c

.PRECIOUS: build/fuzz/obj/tests/%.o
.PHONY: fuzz

-include $(FUZZ_LIB_OBJS:.o=.d) $(wildcard build/fuzz/obj/tests/*.d)
