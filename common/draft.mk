# common/draft.mk: the unit test of nbd-draft.h (the draft RESIZE
# extension's constants, specs/resize.md).  It needs nothing from
# libnbdp.a, so it builds even while the library is being written.
UNIT_TESTS += common/test-draft

common/test-draft: common/test-draft.o
	$(CC) $(ALL_LDFLAGS) -o $@ $< -lcmocka
