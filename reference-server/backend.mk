# reference-server storage backends (memory.c, file.c): unit test and
# the optional micro benchmark (built on request, not run by make check).
BACKEND_OBJS := reference-server/memory.o reference-server/file.o

UNIT_TESTS += reference-server/test-backend

reference-server/test-backend: reference-server/test-backend.o \
                               $(BACKEND_OBJS) $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BACKEND_OBJS) $(LIBNBDP) -lcmocka

reference-server/bench-backend: reference-server/bench-backend.o \
                                $(BACKEND_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BACKEND_OBJS)
CLEANFILES += reference-server/bench-backend
