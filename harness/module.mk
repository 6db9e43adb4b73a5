# harness/: nbd-matrix, the interoperability matrix runner, its client
# drivers, server adapters and scenarios (see DESIGN.md "Adapters").
#
#   make matrix               run the whole matrix into results/runs/
#   make matrix MATRIX_ARGS='--servers nbdkit-* -j 4'

HARNESS_LIBNBD_CFLAGS := $(shell pkg-config --cflags libnbd 2>/dev/null)
HARNESS_LIBNBD_LIBS := $(shell pkg-config --libs libnbd 2>/dev/null || echo -lnbd)

HARNESS_COMMON_OBJS := common/utils/io.o common/utils/log.o \
                       common/utils/sockets.o

NBD_MATRIX_SRCS := harness/nbd-matrix.c harness/inventory.c harness/cell.c \
                   harness/probe.c harness/verify.c harness/results.c \
                   harness/report.c harness/report-html.c harness/proc.c \
                   harness/scenario.c
NBD_MATRIX_OBJS := $(NBD_MATRIX_SRCS:.c=.o)

PROGRAMS += harness/nbd-matrix harness/clients/libnbd-driver \
            harness/scenario-tool

harness/nbd-matrix: $(NBD_MATRIX_OBJS) $(HARNESS_COMMON_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HARNESS_LIBNBD_LIBS) -ljansson

harness/clients/libnbd-driver: harness/clients/libnbd-driver.o \
                               harness/scenario.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HARNESS_LIBNBD_LIBS)

harness/scenario-tool: harness/scenario-tool.o harness/scenario.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

harness/verify.o harness/clients/libnbd-driver.o: \
  ALL_CFLAGS += $(HARNESS_LIBNBD_CFLAGS)

UNIT_TESTS += harness/test-scenario
harness/test-scenario: harness/test-scenario.o harness/scenario.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lcmocka

INTEGRATION_TESTS += harness/tests/matrix-small.sh \
                     harness/tests/matrix-timeout.sh \
                     harness/tests/matrix-crash.sh \
                     harness/tests/matrix-subcommands.sh

CLEANFILES += harness/nbd-matrix harness/clients/libnbd-driver \
              harness/scenario-tool harness/test-scenario

MATRIX_ARGS ?=
# The main job: install what is missing, build, run.
matrix: deps
	$(MAKE) matrix-run

matrix-run: $(PROGRAMS)
	harness/nbd-matrix $(MATRIX_ARGS)

.PHONY: matrix matrix-run
