# suites/: the conformance runner nbd-conform, its library (suites/lib) and
# the rule engine's unit test.  The rule engine (common/rules.c) is built
# into suites/libsuite.a here rather than into libnbdp.a.
#
# Adding a suite file needs no edit here: every .c under the suite
# directories is linked into nbd-conform and registers itself.
SUITE_DIRS := handshake transmission multi-conn structured block-status \
              extended resize client

LIBSUITE := suites/libsuite.a
LIBSUITE_SRCS := common/rules.c $(wildcard suites/lib/*.c)
LIBSUITE_OBJS := $(LIBSUITE_SRCS:.c=.o)

SUITE_TEST_SRCS := $(foreach d,$(SUITE_DIRS),$(wildcard suites/$(d)/*.c))
SUITE_TEST_OBJS := $(SUITE_TEST_SRCS:.c=.o)

# Suite files include "conform.h"; the runner's parts "runner.h".
$(SUITE_TEST_OBJS) suites/nbd-conform.o $(LIBSUITE_OBJS): \
  ALL_CFLAGS += -Isuites/lib

$(LIBSUITE): $(LIBSUITE_OBJS)
	rm -f $@
	ar rcs $@ $^

suites/nbd-conform: suites/nbd-conform.o $(SUITE_TEST_OBJS) $(LIBSUITE) \
                    $(LIBNBDP_RESIZE) $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ suites/nbd-conform.o $(SUITE_TEST_OBJS) \
	  $(LIBSUITE) $(LIBNBDP_RESIZE) $(LIBNBDP) -ljansson

PROGRAMS += suites/nbd-conform

# The rule engine's test links only what it needs (no client, no I/O).
common/test-rules: common/test-rules.o common/rules.o common/codec.o \
                   common/names.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lcmocka
UNIT_TESTS += common/test-rules

INTEGRATION_TESTS += suites/test-runner.sh suites/test-conform-refserver.sh
INTEGRATION_TESTS += suites/test-conform-peers.sh
INTEGRATION_TESTS += suites/test-conform-client.sh
CLEANFILES += suites/libsuite.a
include suites/resize.mk
