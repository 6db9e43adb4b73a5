# harness/: nbd-matrix, the interoperability matrix runner, its client
# drivers, server adapters and scenarios (see DESIGN.md "Adapters").
#
#   make matrix               install what is missing, build, run the whole
#                             matrix into results/runs/matrix-TIME/ (also
#                             results/runs/latest), compare the verdicts
#                             with results/baseline.json, print what
#                             changed, the summary and the path of index.html
#   make matrix MATRIX_ARGS='--servers nbdkit-*'   a part of it
#   make matrix-baseline      write results/baseline.json from the latest
#                             run (MATRIX_RUN=DIR for another one)
#
# Exit status of `make matrix`: 0 when no verdict regressed against the
# baseline (a new FAIL, XPASS, TIMEOUT or ERROR, or a PASS lost), non-zero
# on a regression or when the run broke (README.md "The matrix").

HARNESS_LIBNBD_CFLAGS := $(shell pkg-config --cflags libnbd 2>/dev/null)
HARNESS_LIBNBD_LIBS := $(shell pkg-config --libs libnbd 2>/dev/null || echo -lnbd)

HARNESS_COMMON_OBJS := common/utils/io.o common/utils/log.o \
                       common/utils/sockets.o

NBD_MATRIX_SRCS := harness/nbd-matrix.c harness/inventory.c harness/cell.c \
                   harness/probe.c harness/verify.c harness/results.c \
                   harness/report.c harness/report-html.c harness/proc.c \
                   harness/scenario.c harness/spy-cell.c
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
                     harness/tests/matrix-subcommands.sh \
                     harness/tests/matrix-ci.sh \
                     harness/tests/matrix-html.sh \
                     harness/tests/matrix-leftovers.sh \
                     harness/tests/matrix-baseline.sh \
                     harness/tests/matrix-spy.sh

CLEANFILES += harness/nbd-matrix harness/clients/libnbd-driver \
              harness/scenario-tool harness/test-scenario

MATRIX_ARGS ?=
MATRIX_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MATRIX_BASELINE ?= results/baseline.json
MATRIX_RUN ?= results/runs/latest
# The main job: install what is missing, build, run, compare.
matrix: deps
	$(MAKE) matrix-run

matrix-run: $(PROGRAMS)
	harness/nbd-matrix -j $(MATRIX_JOBS) \
	  $(if $(wildcard $(MATRIX_BASELINE)),--baseline $(MATRIX_BASELINE)) \
	  $(MATRIX_ARGS)

# Record the latest run (a whole, unsharded one) as the baseline.
matrix-baseline: harness/nbd-matrix
	harness/nbd-matrix baseline --out $(MATRIX_BASELINE) $(MATRIX_RUN)

.PHONY: matrix matrix-run matrix-baseline
