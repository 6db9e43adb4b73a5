# reference-client/: nbd-refclient, the reference client of the draft
# RESIZE extension, and its integration tests (tests/resize-*).
include common/resize.mk

PROGRAMS += reference-client/nbd-refclient

reference-client/nbd-refclient: reference-client/nbd-refclient.o \
    $(LIBNBDP_RESIZE) $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBNBDP_RESIZE) $(LIBNBDP) -ljansson

# A scripted fake server that sends malformed RESIZE replies, one
# scenario per run, to show that each client rule fires.
CHECK_PROGRAMS += tests/bin/resize-fake-server
tests/bin/resize-fake-server: tests/resize-fake-server.c $(LIBNBDP_RESIZE) \
    $(LIBNBDP)
	@mkdir -p tests/bin
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBNBDP_RESIZE) $(LIBNBDP) $(ALL_LDFLAGS)

INTEGRATION_TESTS += \
  tests/resize-client-nbdkit.sh \
  tests/resize-client-qemu-nbd.sh \
  tests/resize-client-nbd-server.sh \
  tests/resize-client-faults.sh \
  tests/resize-client-refserver.sh
