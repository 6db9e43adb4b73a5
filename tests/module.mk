# tests/: integration tests run by `make check` (scripts/run-tests.sh).
# Shell tests use real peers (libnbd tools, qemu, nbd-client) against
# nbd-refserver; C tests use the raw client of libnbdp.a.  A C test file
# holds several cases; each case is built into its own binary with
# -DTEST_CASE so that it is its own line of the TAP output.

INTEGRATION_TESTS += \
  tests/nbdinfo.sh \
  tests/nbdcopy.sh \
  tests/qemu.sh \
  tests/nbdsh-structured-read.sh \
  tests/nbdsh-block-status.sh \
  tests/nbdsh-write-zeroes.sh \
  tests/nbdsh-commands.sh \
  tests/nbdsh-errors.sh \
  tests/multi-conn.sh \
  tests/nbd-client-list.sh \
  tests/large-export.sh

RAW_HANDSHAKE_CASES := oldstyle export-name export-name-no-zeroes \
  export-name-unknown not-fixed-newstyle
RAW_EXTENDED_CASES := negotiate effect-64 payload-len huge-block-status
RAW_BAD_INPUT_CASES := bad-option-magic bad-client-flags option-short-data \
  option-big export-name-4096 export-name-4097 export-name-nul \
  info-name-too-long unknown-option bad-request-magic unknown-command \
  unknown-flag past-eof offset-wrap zero-length write-too-large \
  disconnect-mid-write

RAW_HANDSHAKE_BINS := $(addprefix tests/bin/raw-handshake-,$(RAW_HANDSHAKE_CASES))
RAW_EXTENDED_BINS := $(addprefix tests/bin/raw-extended-,$(RAW_EXTENDED_CASES))
RAW_BAD_INPUT_BINS := $(addprefix tests/bin/raw-bad-input-,$(RAW_BAD_INPUT_CASES))
RAW_TEST_BINS := $(RAW_HANDSHAKE_BINS) $(RAW_EXTENDED_BINS) $(RAW_BAD_INPUT_BINS)

CHECK_PROGRAMS += $(RAW_TEST_BINS)
INTEGRATION_TESTS += $(RAW_TEST_BINS)

TESTLIB_DEPS := tests/testlib.o tests/testlib.h common/client.h $(LIBNBDP)

# One binary per case: the test file compiled with -DTEST_CASE.
define raw_test_rule
$(2): tests/bin/$(1)-%: tests/$(1).c $$(TESTLIB_DEPS)
	@mkdir -p tests/bin
	$$(CC) $$(ALL_CFLAGS) -Itests -DTEST_CASE='"$$*"' -o $$@ $$< \
	  tests/testlib.o $$(LIBNBDP) $$(ALL_LDFLAGS)
endef
$(eval $(call raw_test_rule,raw-handshake,$(RAW_HANDSHAKE_BINS)))
$(eval $(call raw_test_rule,raw-extended,$(RAW_EXTENDED_BINS)))
$(eval $(call raw_test_rule,raw-bad-input,$(RAW_BAD_INPUT_BINS)))

check-integration: $(PROGRAMS) $(CHECK_PROGRAMS)
	scripts/run-tests.sh $(INTEGRATION_TESTS)

.PHONY: check-integration
