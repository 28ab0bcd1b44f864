# libpie: build, install and examples. `make help` lists the targets.
#
#   make                          release build of libpie (target/release/libpie.{so,a})
#   make install PREFIX=/opt/pie  install library, header, pkg-config, CMake config, module map
#   make examples                 build the C and C++ examples against the source tree
#
# PIE_LIB_DIR=DIR skips the cargo build and installs (or links the examples against) the
# libpie.so/libpie.a already in DIR — the tests use it to reuse their debug build instead of
# compiling a release build a second time.

PREFIX      ?= /usr/local
DESTDIR     ?=
CARGO       ?= cargo
CC          ?= cc
CXX         ?= c++
OBJCOPY     ?= objcopy
PROFILE     ?= release
TARGET_DIR  := $(or $(CARGO_TARGET_DIR),target)
VERSION     := $(shell sed -n 's/^version = "\([0-9.]*\)"/\1/p' Cargo.toml | head -n 1)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The ABI version in the SONAME (build.rs): MAJOR, or 0.MINOR while the major version is 0.
ABI_VERSION := $(if $(filter 0,$(VERSION_MAJOR)),0.$(VERSION_MINOR),$(VERSION_MAJOR))
# What the Rust standard library in libpie.a needs (rustc --print native-static-libs).
LIBS_PRIVATE := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

ifeq ($(PROFILE),release)
  CARGO_PROFILE_FLAG := --release
else ifeq ($(PROFILE),debug)
  CARGO_PROFILE_FLAG :=
else
  CARGO_PROFILE_FLAG := --profile $(PROFILE)
endif

ifeq ($(strip $(PIE_LIB_DIR)),)
  LIB_DIR := $(TARGET_DIR)/$(PROFILE)
  BUILD_DEP := lib
else
  LIB_DIR := $(PIE_LIB_DIR)
  BUILD_DEP :=
endif

LIBDIR     := $(DESTDIR)$(PREFIX)/lib
INCDIR     := $(DESTDIR)$(PREFIX)/include/pie
EXAMPLES_C := quickstart chat upload detached callbacks event_loop
EXAMPLES_OUT := $(TARGET_DIR)/examples-c
WARN       := -Wall -Wextra -Werror

.PHONY: all lib sim examples sdl-example size install uninstall test quickstart help

all: lib

help:
	@echo "targets: lib (default) | sim | examples | sdl-example | size | install PREFIX=... | uninstall PREFIX=... | quickstart | test"
	@echo "variables: PROFILE=release|debug, PIE_LIB_DIR=DIR (reuse a build), PREFIX, DESTDIR"

# The library; libpie.so.$(ABI_VERSION) (its SONAME) is linked next to it so that programs linked with
# -L$(LIB_DIR) -lpie also run from the build tree (with -Wl,-rpath,$(LIB_DIR)).
# Built as cdylib + staticlib only: with the rlib (Cargo.toml's crate-type, for the Rust tests) in
# the same rustc run, LTO must keep every Rust-level symbol, so it cannot internalise, inline or
# drop them (larger library, calls through the GOT; docs/SIZE.md).
lib:
	$(CARGO) rustc $(CARGO_PROFILE_FLAG) -p pie --lib --crate-type cdylib,staticlib
	ln -sf libpie.so $(TARGET_DIR)/$(PROFILE)/libpie.so.$(ABI_VERSION)

sim:
	$(CARGO) build $(CARGO_PROFILE_FLAG) -p pie-sim --bin pie-sim

examples: $(BUILD_DEP)
	@mkdir -p $(EXAMPLES_OUT)
	@test -e $(LIB_DIR)/libpie.so.$(ABI_VERSION) || ln -sf libpie.so $(LIB_DIR)/libpie.so.$(ABI_VERSION)
	@for x in $(EXAMPLES_C); do \
	  echo "  CC   examples-c/$$x.c"; \
	  $(CC) -std=c11 $(WARN) -pthread -I include examples-c/$$x.c -o $(EXAMPLES_OUT)/$$x \
	    -L $(LIB_DIR) -lpie -Wl,-rpath,$(abspath $(LIB_DIR)) || exit 1; \
	done
	@echo "  CXX  examples-cpp/quickstart.cpp"
	@$(CXX) -std=c++17 $(WARN) -pthread -I include -I examples-cpp examples-cpp/quickstart.cpp \
	  -o $(EXAMPLES_OUT)/quickstart-cpp -L $(LIB_DIR) -lpie -Wl,-rpath,$(abspath $(LIB_DIR))

# The SDL2 example (needs libsdl2-dev, libsdl2-ttf-dev; scripts/sdl-test.sh tests it).
sdl-example: $(BUILD_DEP)
	@mkdir -p $(EXAMPLES_OUT)
	@test -e $(LIB_DIR)/libpie.so.$(ABI_VERSION) || ln -sf libpie.so $(LIB_DIR)/libpie.so.$(ABI_VERSION)
	$(CC) -std=c11 -O2 $(WARN) -I include examples-c/sdl_chat.c -o $(EXAMPLES_OUT)/sdl_chat \
	  $$(pkg-config --cflags --libs sdl2 SDL2_ttf) -L $(LIB_DIR) -lpie -Wl,-rpath,$(abspath $(LIB_DIR))

# The size of the shared library as installed (stripped), in bytes.
size: $(BUILD_DEP)
	@$(OBJCOPY) --strip-all $(LIB_DIR)/libpie.so $(TARGET_DIR)/libpie.stripped.so
	@echo "$(LIB_DIR)/libpie.so stripped: $$(stat -c %s $(TARGET_DIR)/libpie.stripped.so) bytes"
	@rm -f $(TARGET_DIR)/libpie.stripped.so

install: $(BUILD_DEP)
	@test -n "$(VERSION)" || { echo "cannot read the version from Cargo.toml" >&2; exit 1; }
	@test -f $(LIB_DIR)/libpie.so || { echo "$(LIB_DIR)/libpie.so not found" >&2; exit 1; }
	install -d $(LIBDIR) $(LIBDIR)/pkgconfig $(LIBDIR)/cmake/pie $(INCDIR)
	@# What ships is stripped; the debug info goes beside it in libpie.so.X.Y.Z.debug, which
	@# the stripped library names in its .gnu_debuglink (gdb and perf find it there).
	$(OBJCOPY) --only-keep-debug $(LIB_DIR)/libpie.so $(LIBDIR)/libpie.so.$(VERSION).debug
	chmod 644 $(LIBDIR)/libpie.so.$(VERSION).debug
	cd $(LIBDIR) && $(OBJCOPY) --strip-all --add-gnu-debuglink=libpie.so.$(VERSION).debug \
	  $(abspath $(LIB_DIR))/libpie.so libpie.so.$(VERSION).tmp
	chmod 755 $(LIBDIR)/libpie.so.$(VERSION).tmp
	mv -f $(LIBDIR)/libpie.so.$(VERSION).tmp $(LIBDIR)/libpie.so.$(VERSION)
	ln -sf libpie.so.$(VERSION) $(LIBDIR)/libpie.so.$(ABI_VERSION)
	ln -sf libpie.so.$(ABI_VERSION) $(LIBDIR)/libpie.so
	install -m 644 $(LIB_DIR)/libpie.a $(LIBDIR)/libpie.a
	install -m 644 include/pie.h $(INCDIR)/pie.h
	install -m 644 packaging/module.modulemap $(INCDIR)/module.modulemap
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' packaging/pie.pc.in > $(LIBDIR)/pkgconfig/pie.pc
	for f in pieConfig pieConfigVersion; do \
	  sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
	      -e 's|@ABI_VERSION@|$(ABI_VERSION)|g' \
	      -e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g' \
	      packaging/$$f.cmake.in > $(LIBDIR)/cmake/pie/$$f.cmake || exit 1; \
	done

uninstall:
	rm -f $(LIBDIR)/libpie.so.$(VERSION) $(LIBDIR)/libpie.so.$(VERSION).debug \
	      $(LIBDIR)/libpie.so.$(ABI_VERSION) $(LIBDIR)/libpie.so \
	      $(LIBDIR)/libpie.a $(LIBDIR)/pkgconfig/pie.pc $(INCDIR)/pie.h $(INCDIR)/module.modulemap \
	      $(LIBDIR)/cmake/pie/pieConfig.cmake $(LIBDIR)/cmake/pie/pieConfigVersion.cmake
	-rmdir $(INCDIR) $(LIBDIR)/cmake/pie 2>/dev/null

quickstart:
	./scripts/quickstart.sh

test:
	./scripts/test-all.sh
