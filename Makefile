# chom: one Makefile for the library, the tools, the tests and the docs.
#
#   make                      lib/libchom.a and the tools
#   make check                install test dependencies, run every test twice
#                             (plain, then -fsanitize=address,undefined)
#   make install PREFIX=/usr/local DESTDIR=
#   make uninstall, make demo, make bench, make lint
#
# B= puts every build product under another directory (the sanitizer build
# uses B=build/san), so the two builds never share an object file.

VERSION  = 0.1.0
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
MANDIR   = $(PREFIX)/share/man
DOCDIR   = $(PREFIX)/share/doc/chom
COMPDIR  = $(PREFIX)/share/bash-completion/completions
B       ?= .

TOOLS    = chom-stage chom-switch chom-health chom-backup chom-restore chom-canary
LIBSRC   = $(wildcard lib/*.c)
LIBOBJ   = $(LIBSRC:%.c=$(B)/%.o)
UNITSRC  = $(wildcard tests/unit/test_*.c)
UNITBIN  = $(UNITSRC:%.c=$(B)/%)
TOOLBIN  = $(foreach t,$(TOOLS),$(B)/$(t)/$(t))
MAN1     = $(TOOLS:%=man/%.1)
MAN7     = man/chom.7

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
XCFLAGS  = -std=c11 -D_GNU_SOURCE -DCHOM_VERSION='"$(VERSION)"' -Ilib $(WARN)
PKGS     = libarchive libcrypto jansson inih libcurl zlib libzstd expat
LDLIBS   = $(shell pkg-config --libs $(PKGS)) -lm
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined

all: $(B)/lib/libchom.a $(TOOLBIN)

$(B)/lib/libchom.a: $(LIBOBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(B)/%.o: %.c lib/*.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) -c -o $@ $<

$(TOOLBIN): %: %.o $(B)/lib/libchom.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/lib/libchom.a $(LDLIBS)

# Each test program: its module's tests, the shared fixtures, the library.
$(B)/tests/unit/test_%: tests/unit/test_%.c $(B)/tests/unit/testutil.o \
    $(B)/lib/libchom.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $< \
	    $(B)/tests/unit/testutil.o $(B)/lib/libchom.a $(LDLIBS) -lcmocka

$(B)/tests/unit/testutil.o: tests/unit/testutil.c tests/unit/testutil.h lib/*.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) -c -o $@ $<

units: $(UNITBIN)

# The test dependencies are installed by the suite itself, so a fresh
# Debian 12 machine needs nothing but this command.
deps:
	@scripts/install-deps

check: deps
	$(MAKE) all units
	$(MAKE) B=build/san CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" all units
	tests/run . build/san

demo: deps
	$(MAKE) all
	scripts/demo .

bench: deps
	$(MAKE) all
	bench/stage.sh .
	bench/health.sh .
	bench/backup.sh .
	bench/restore.sh .
	bench/s3.sh .
	bench/canary.sh .

lint:
	clang-format --dry-run --Werror $(wildcard lib/*.[ch] chom-*/*.c tests/unit/*.c)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --std=c11 -D_GNU_SOURCE -Ilib \
	    --suppress=missingIncludeSystem lib $(TOOLS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(COMPDIR) $(DESTDIR)$(DOCDIR)
	for t in $(TOOLS); do install -m 755 $(B)/$$t/$$t $(DESTDIR)$(BINDIR)/$$t; done
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/
	# bash-completion loads a command's completion from a file of its name.
	install -m 644 completions/chom $(DESTDIR)$(COMPDIR)/chom
	for t in $(TOOLS); do ln -sf chom $(DESTDIR)$(COMPDIR)/$$t; done
	install -m 644 README $(DESTDIR)$(DOCDIR)/README
	cd examples && find . -type d -exec install -d $(DESTDIR)$(DOCDIR)/examples/{} \; \
	    && find . -type f -exec install -m 644 {} $(DESTDIR)$(DOCDIR)/examples/{} \;

uninstall:
	for t in $(TOOLS); do rm -f $(DESTDIR)$(BINDIR)/$$t $(DESTDIR)$(COMPDIR)/$$t; done
	for m in $(MAN1); do rm -f $(DESTDIR)$(MANDIR)/man1/$${m#man/}; done
	rm -f $(DESTDIR)$(MANDIR)/man7/chom.7 $(DESTDIR)$(COMPDIR)/chom
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build lib/*.o lib/libchom.a chom-*/*.o $(TOOLBIN) \
	    $(UNITSRC:%.c=%) tests/unit/*.o

.PHONY: all units deps check demo bench lint install uninstall clean
.SECONDARY:
