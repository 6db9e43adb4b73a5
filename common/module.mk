# common/: the protocol library libnbdp.a and its unit tests.
LIBNBDP := common/libnbdp.a
LIBNBDP_SRCS := common/codec.c common/names.c common/client.c \
                common/utils/io.c common/utils/sockets.c common/utils/log.c \
                common/utils/uri.c
LIBNBDP_OBJS := $(LIBNBDP_SRCS:.c=.o)

$(LIBNBDP): $(LIBNBDP_OBJS)
	rm -f $@
	ar rcs $@ $^

# names.c is generated from the constant blocks of the protocol headers.
NBDP_NAME_HEADERS := common/nbd-proto.h $(wildcard common/nbd-draft.h)
common/names.c: common/gen-names.sh $(NBDP_NAME_HEADERS)
	common/gen-names.sh $(NBDP_NAME_HEADERS) > $@.tmp
	mv $@.tmp $@
CLEANFILES += common/names.c common/names.c.tmp

COMMON_UNIT_TESTS := common/test-proto common/test-codec common/test-uri \
                     common/test-io common/test-client
UNIT_TESTS += $(COMMON_UNIT_TESTS)

$(COMMON_UNIT_TESTS): %: %.o $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBNBDP) -lcmocka
