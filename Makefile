# nbd-conformance: non-recursive GNU make.  Each directory adds to the
# variables below in its own module.mk; this file holds the rules.
#
#   make                 build everything
#   make check           unit + integration tests (TAP), installs deps first
#   make check-asan      the same under ASan+UBSan
#   make check-valgrind  unit tests and the server under valgrind
#   make bench           nbdcopy throughput, nbd-refserver vs nbdkit (not in check)
#   make fuzz            libFuzzer targets, FUZZ_SECONDS each (not in check)
#   make deps            install missing Debian packages (or print the command)

.DEFAULT_GOAL := all
SHELL := /bin/bash

CC ?= gcc
CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wshadow -Wvla -Wformat=2 -Wpointer-arith \
            -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter \
            -Wframe-larger-than=200000
ifneq ($(WERROR),0)
WARNINGS += -Werror
endif
SAN_FLAGS :=
ifeq ($(SANITIZE),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
endif
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread -I. -Icommon -Icommon/utils \
              $(WARNINGS) $(CFLAGS) $(SAN_FLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS) $(SAN_FLAGS)

PROGRAMS :=        # binaries built by `make`
UNIT_TESTS :=      # cmocka binaries run by `make check`
INTEGRATION_TESTS := # tests/*.sh or C binaries run by `make check`
CHECK_PROGRAMS :=  # helper binaries tests need, built for `make check`
CLEANFILES :=

include common/module.mk
-include common/draft.mk
-include reference-server/module.mk
-include reference-server/backend.mk
-include reference-client/module.mk
-include tests/module.mk
-include specs/module.mk
-include suites/module.mk
-include harness/module.mk
-include harness/spy/module.mk
-include fuzz/module.mk

all: $(PROGRAMS)

%.o: %.c
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find . -name '*.d' -not -path './.git/*' 2>/dev/null)

deps:
	scripts/deps.sh

check: deps
	$(MAKE) check-run

check-run: $(PROGRAMS) $(UNIT_TESTS) $(CHECK_PROGRAMS)
	scripts/run-tests.sh $(UNIT_TESTS) $(INTEGRATION_TESTS)

check-asan: deps
	$(MAKE) clean
	$(MAKE) SANITIZE=1 check-run
	$(MAKE) clean

check-valgrind: deps
	$(MAKE) $(PROGRAMS) $(UNIT_TESTS) $(CHECK_PROGRAMS)
	NBDP_VALGRIND=1 scripts/run-tests.sh $(UNIT_TESTS) $(INTEGRATION_TESTS) \
	  scripts/valgrind-refserver.sh

bench: reference-server/nbd-refserver ; scripts/bench.sh

clean:
	find . -name '*.o' -o -name '*.d' -o -name '*.a' | grep -v '^./.git' | xargs rm -f
	rm -f $(PROGRAMS) $(UNIT_TESTS) $(CHECK_PROGRAMS) $(CLEANFILES)

.PHONY: all deps check check-run check-asan check-valgrind clean bench
