# harness/spy/: nbd-spy, the validating proxy (decodes both directions of
# each connection and runs the rule engine on every message), and its
# integration tests.  Links the rule engine (common/rules.o, built by
# suites/module.mk's rule) and the draft RESIZE rules (libnbdp-resize.a,
# common/resize.mk).

NBD_SPY_OBJS := harness/spy/nbd-spy.o harness/spy/decode.o

PROGRAMS += harness/spy/nbd-spy

harness/spy/nbd-spy: $(NBD_SPY_OBJS) common/rules.o $(LIBNBDP_RESIZE) \
    $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $(NBD_SPY_OBJS) common/rules.o \
	  $(LIBNBDP_RESIZE) $(LIBNBDP) -ljansson

# The decoder fed scripted conversations, split at every byte.
UNIT_TESTS += harness/spy/test-decode
harness/spy/test-decode: harness/spy/test-decode.o harness/spy/decode.o \
    common/rules.o $(LIBNBDP_RESIZE) $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ harness/spy/test-decode.o \
	  harness/spy/decode.o common/rules.o $(LIBNBDP_RESIZE) $(LIBNBDP) \
	  -lcmocka

# A scripted server that breaks the published protocol in one named way
# per run, for the tests that the spy reports the right requirement ID.
CHECK_PROGRAMS += harness/spy/fake-server
harness/spy/fake-server: harness/spy/fake-server.o $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBNBDP)

INTEGRATION_TESTS += \
  harness/spy/test-spy-nbdinfo.sh \
  harness/spy/test-spy-nbdcopy.sh \
  harness/spy/test-spy-qemu-img.sh \
  harness/spy/test-spy-resize.sh \
  harness/spy/test-spy-faults.sh \
  harness/spy/test-spy-garbage.sh

CLEANFILES += harness/spy/nbd-spy harness/spy/fake-server \
              harness/spy/test-decode
