# reference-server/: the draft RESIZE extension's control tool and tests
# (included from module.mk).
REFSERVER_CTL := reference-server/nbd-refserver-ctl
PROGRAMS += $(REFSERVER_CTL)

$(REFSERVER_CTL): reference-server/nbd-refserver-ctl.o $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBNBDP)

# tests/resize-server.c: one binary per case (see its header comment).
RESIZE_SERVER_CASES := negotiate set-simple set-structured quota query \
  subscribe sub-disc sub-shutdown external coalesce no-coalesce auto-grow \
  zero-fill bounds readonly legacy variants refuse per-connection faults \
  faults-2 switches \
  concurrency fua-restart
RESIZE_SERVER_BINS := $(addprefix tests/bin/resize-server-,$(RESIZE_SERVER_CASES))
CHECK_PROGRAMS += $(RESIZE_SERVER_BINS)
INTEGRATION_TESTS += $(RESIZE_SERVER_BINS)

$(RESIZE_SERVER_BINS): tests/bin/resize-server-%: tests/resize-server.c \
                       tests/testlib.o tests/testlib.h common/client.h \
                       common/nbd-draft.h $(LIBNBDP)
	@mkdir -p tests/bin
	$(CC) $(ALL_CFLAGS) -Itests -DTEST_CASE='"$*"' -o $@ $< \
	  tests/testlib.o $(LIBNBDP) $(ALL_LDFLAGS)

# Shell tests: the command line, control socket, nbd-refclient end to end,
# and real peers (nbdinfo, nbdcopy, qemu-img, qemu-io) under every profile.
INTEGRATION_TESTS += tests/resize-server-cli.sh tests/resize-server-peers.sh
CHECK_PROGRAMS += $(REFSERVER_CTL)
