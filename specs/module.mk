# specs/: the requirement catalogue and its trace.
#
#   make trace                    check specs/requirements.tsv against the
#                                 protocol text (and the extended-headers
#                                 copy beside it, if present) and the RZ-*
#                                 tags of specs/resize.md, then print which
#                                 requirement IDs the tests cite
#   make trace PROTO_MD=FILE      check another copy of proto.md
#   make trace TRACE_FLAGS=--uncovered
#                                 also list the uncited server MUST IDs
#
# See specs/README.md.

PROTO_MD ?= /work/shared/upstream/proto.md
PROTO_EXT_MD ?= $(dir $(PROTO_MD))proto-extension-ext-header.md
TRACE_FLAGS ?=

trace:
	python3 specs/trace.py $(TRACE_FLAGS) $(PROTO_MD) $(wildcard $(PROTO_EXT_MD))

.PHONY: trace

INTEGRATION_TESTS += tests/test-trace.sh
