# common/resize.mk: the draft RESIZE layer of the raw client
# (client-resize.c) and its pure rules (rules-resize.c), in their own
# archive common/libnbdp-resize.a, linked before libnbdp.a.  Included by
# reference-client/module.mk.
LIBNBDP_RESIZE := common/libnbdp-resize.a
LIBNBDP_RESIZE_SRCS := common/client-resize.c common/rules-resize.c
LIBNBDP_RESIZE_OBJS := $(LIBNBDP_RESIZE_SRCS:.c=.o)

$(LIBNBDP_RESIZE): $(LIBNBDP_RESIZE_OBJS)
	rm -f $@
	ar rcs $@ $^

RESIZE_UNIT_TESTS := common/test-rules-resize common/test-client-resize
UNIT_TESTS += $(RESIZE_UNIT_TESTS)

$(RESIZE_UNIT_TESTS): %: %.o $(LIBNBDP_RESIZE) $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBNBDP_RESIZE) $(LIBNBDP) -lcmocka
