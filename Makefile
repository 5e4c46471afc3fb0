# gilua: `make` builds, `make test` tests, `make demo` shows.  Every target
# that needs Debian packages installs the missing ones first (tools/deps.sh).

CC ?= cc
BUILD ?= build
PKGS_BUILD = gcc make pkg-config liblua5.4-dev libreadline-dev libcurl4-openssl-dev
PKGS_TEST = $(PKGS_BUILD) lua5.4 procps
PKGS_LINT = clang-format lua-check
PKGS_BENCH = $(PKGS_TEST) python3

LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_STATIC := $(firstword $(wildcard /usr/lib/*/liblua5.4.a) -llua5.4)

WARN = -Wall -Wextra -Wno-unused-parameter -Wunused-macros
CFLAGS ?= -O2 -g
DEFS ?= -DNDEBUG
ALL_CFLAGS = $(CFLAGS) $(DEFS) $(WARN) -std=gnu11 -pthread -fvisibility=hidden \
  -DGILUA_BUILDING -Iinclude -Iruntime -Ibindings -I$(BUILD)/gen $(LUA_CFLAGS) \
  $(EXTRA_CFLAGS)
# The program links Lua statically, as the stock lua5.4 does, non-PIE for
# speed; sanitizer builds set LUA_LIBS to the shared library instead.
LUA_LIBS ?= $(LUA_STATIC) -no-pie
LIBS = $(LUA_LIBS) -lreadline -lcurl -lm -ldl -pthread

RT_SRC = runtime/sys.c runtime/gil.c runtime/wait.c runtime/thread.c \
  runtime/trace.c runtime/universe.c
LIB_SRC = $(RT_SRC) $(wildcard bindings/*.c)
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CTEST_SRC = $(wildcard tests/c/test-*.c)
CTEST_BIN = $(CTEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
HEADERS = include/gilua.h runtime/runtime.h runtime/internal.h \
  bindings/bindings.h

VERSION := $(shell sed -n 's/^\#define GILUA_VERSION "\(.*\)"/\1/p' include/gilua.h)
SOMAJOR = 0
PREFIX ?= /usr/local
PIC_OBJ = $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
# threading.so differs from libgilua.so in one file: universe.c finds the
# universe in the registry of a state gilua did not make.
MOD_OBJ = $(filter-out $(BUILD)/pic/runtime/universe.o,$(PIC_OBJ)) \
  $(BUILD)/mod/runtime/universe.o
LIBDIR_LUA = lib/lua/5.4

.PHONY: all deps test test-debug demo timeline lint format bench tsan asan clean install \
  install-files uninstall
all: deps $(BUILD)/gilua $(BUILD)/libgilua.a $(BUILD)/libgilua.so \
  $(BUILD)/threading.so

deps:
	@tools/deps.sh $(PKGS_BUILD)

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Lua sources compiled into the library, as C byte lists.
$(BUILD)/gen/%_lua.h: bindings/%.lua
	@mkdir -p $(dir $@)
	od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' > $@

$(BUILD)/obj/bindings/gil.o: $(BUILD)/gen/timeline_lua.h

# The same sources, position-independent: for libgilua.so, and with
# GILUA_MODULE for threading.so (loaded by the stock lua5.4).
$(BUILD)/pic/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

$(BUILD)/mod/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -DGILUA_MODULE -c $< -o $@

$(BUILD)/pic/bindings/gil.o: $(BUILD)/gen/timeline_lua.h

$(BUILD)/libgilua.so: $(PIC_OBJ)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,libgilua.so.$(SOMAJOR) \
	  -o $(BUILD)/libgilua.so.$(VERSION) $^ -llua5.4 -lcurl -lm -ldl -pthread
	ln -sf libgilua.so.$(VERSION) $(BUILD)/libgilua.so.$(SOMAJOR)
	ln -sf libgilua.so.$(VERSION) $@

# No -llua5.4: the lua5.4 program that loads it provides Lua.
$(BUILD)/threading.so: $(MOD_OBJ)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $^ -lcurl -lm -pthread

install: all
	@$(MAKE) --no-print-directory install-files

# Copies what is built, building nothing (the install test uses it).
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/$(LIBDIR_LUA) \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/gilua $(DESTDIR)$(PREFIX)/bin/gilua
	install -m 644 include/gilua.h $(DESTDIR)$(PREFIX)/include/gilua.h
	install -m 644 $(BUILD)/libgilua.a $(DESTDIR)$(PREFIX)/lib/libgilua.a
	install -m 755 $(BUILD)/libgilua.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libgilua.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libgilua.so.$(SOMAJOR)
	ln -sf libgilua.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libgilua.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' gilua.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gilua.pc
	install -m 755 $(BUILD)/threading.so $(DESTDIR)$(PREFIX)/$(LIBDIR_LUA)/threading.so
	install -m 644 doc/gilua.1 $(DESTDIR)$(PREFIX)/share/man/man1/gilua.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/gilua $(DESTDIR)$(PREFIX)/include/gilua.h \
	  $(DESTDIR)$(PREFIX)/lib/libgilua.a $(DESTDIR)$(PREFIX)/lib/libgilua.so \
	  $(DESTDIR)$(PREFIX)/lib/libgilua.so.$(SOMAJOR) \
	  $(DESTDIR)$(PREFIX)/lib/libgilua.so.$(VERSION) \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/gilua.pc \
	  $(DESTDIR)$(PREFIX)/$(LIBDIR_LUA)/threading.so \
	  $(DESTDIR)$(PREFIX)/share/man/man1/gilua.1

$(BUILD)/libgilua.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/gilua: $(BUILD)/obj/runtime/program.o $(BUILD)/libgilua.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/c/%.c tests/c/ctest.h $(BUILD)/libgilua.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/c -o $@ $< $(BUILD)/libgilua.a $(LIBS)

# The suite runs twice: on the release build, then on a debug build whose
# assertions check the GIL discipline (who holds it where) and whose
# mutexes report misuse.
test:
	@tools/deps.sh $(PKGS_TEST)
	@$(MAKE) --no-print-directory all $(CTEST_BIN)
	@tests/run.sh $(BUILD)/gilua
	@$(MAKE) --no-print-directory test-debug

test-debug:
	@$(MAKE) --no-print-directory BUILD=build-debug DEFS= CFLAGS="-O1 -g" \
	  all $(CTEST_SRC:tests/c/%.c=build-debug/tests/%)
	@echo "-- the same suite on the debug build (assertions on)"
	@tests/run.sh build-debug/gilua

demo:
	@tools/deps.sh $(PKGS_BUILD)
	@$(MAKE) --no-print-directory all
	$(BUILD)/gilua scripts/demo/io_vs_cpu.lua $(BUILD)/gil-timeline.svg

# The timeline the README shows, drawn by the main demo.
timeline:
	@tools/deps.sh $(PKGS_BUILD)
	@$(MAKE) --no-print-directory all
	$(BUILD)/gilua scripts/demo/timeline.lua docs/gil-timeline.svg
	$(BUILD)/gilua scripts/demo/policy_timeline.lua docs/gil-policy

lint:
	@tools/deps.sh $(PKGS_LINT)
	clang-format --dry-run --Werror include/*.h runtime/*.c runtime/*.h \
	  bindings/*.c tests/c/*.c tests/c/*.h examples/embed/*.c
	luacheck --no-color -q scripts tests bench

format:
	clang-format -i include/*.h runtime/*.c runtime/*.h bindings/*.c \
	  tests/c/*.c tests/c/*.h examples/embed/*.c

bench:
	@tools/deps.sh $(PKGS_BENCH)
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build-nolab \
	  DEFS="-DNDEBUG -DGILUA_NO_LAB" build-nolab/gilua
	/usr/bin/python3 bench/run.py --gilua $(BUILD)/gilua --nolab build-nolab/gilua

# Sanitizer builds: the whole suite under ThreadSanitizer, then under
# AddressSanitizer with UndefinedBehaviorSanitizer, each in its own tree.
SAN_LUA = LUA_LIBS="-llua5.4" DEFS=
tsan:
	@tools/deps.sh $(PKGS_TEST)
	@$(MAKE) --no-print-directory BUILD=build-tsan $(SAN_LUA) \
	  CFLAGS="-O1 -g -fsanitize=thread" all \
	  $(CTEST_SRC:tests/c/%.c=build-tsan/tests/%)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  GILUA_SANITIZER=tsan tests/run.sh build-tsan/gilua

asan:
	@tools/deps.sh $(PKGS_TEST)
	@$(MAKE) --no-print-directory BUILD=build-asan $(SAN_LUA) \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all \
	  $(CTEST_SRC:tests/c/%.c=build-asan/tests/%)
	ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1" \
	  GILUA_SANITIZER=asan tests/run.sh build-asan/gilua

clean:
	rm -rf build build-debug build-tsan build-asan build-nolab
