# common/: the protocol library libnbdp.a and its unit tests.
LIBNBDP := common/libnbdp.a
LIBNBDP_SRCS := common/codec.c common/names.c common/client.c \
                common/utils/io.c common/utils/sockets.c common/utils/log.c \
                common/utils/uri.c
LIBNBDP_OBJS := $(LIBNBDP_SRCS:.c=.o)

$(LIBNBDP): $(LIBNBDP_OBJS)
	rm -f $@
	ar rcs $@ $^

COMMON_UNIT_TESTS := common/test-proto common/test-codec common/test-uri \
                     common/test-io
UNIT_TESTS += $(COMMON_UNIT_TESTS)

$(COMMON_UNIT_TESTS): %: %.o $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBNBDP) -lcmocka
