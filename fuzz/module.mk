# fuzz/: libFuzzer targets for the codec, the rule engine, the raw client,
# the draft RESIZE client layer and nbd-refserver's connection code.
#
#   make fuzz            build with clang (libFuzzer + ASan + UBSan) in
#                        fuzz/build/ and run each target FUZZ_SECONDS
#                        (default 60), one process each (one core); not
#                        part of make check
#   make fuzz-build      only build them
#   make fuzz FUZZ_TARGETS='codec rules' FUZZ_SECONDS=600
#
# New inputs go to fuzz/build/corpus/TARGET (the committed seeds in
# fuzz/corpus/TARGET are read, never written); crashes to
# fuzz/build/artifacts/.  Copy a reproducer into fuzz/corpus/TARGET once
# its bug is fixed: make check replays every file there through the
# target built with the normal compiler (fuzz/replay.c, no libFuzzer).
# fuzz/gen-corpus.py regenerates the seeds.

FUZZ_ALL_TARGETS := codec rules client client-resize server-stdio
FUZZ_TARGETS ?= $(FUZZ_ALL_TARGETS)
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS ?=
FUZZ_BUILD := fuzz/build

# What each target links (the libraries are those of the normal build).
FUZZ_SERVER_SRCS := $(filter-out reference-server/main.c,$(REFSERVER_SRCS))
FUZZ_SRCS_codec := $(LIBNBDP_SRCS)
FUZZ_SRCS_rules := common/rules.c $(LIBNBDP_SRCS)
FUZZ_SRCS_client := $(LIBNBDP_SRCS)
FUZZ_SRCS_client-resize := $(LIBNBDP_RESIZE_SRCS) $(LIBNBDP_SRCS)
FUZZ_SRCS_server-stdio := $(FUZZ_SERVER_SRCS) $(LIBNBDP_SRCS)
FUZZ_LIBS_codec := $(LIBNBDP)
FUZZ_LIBS_rules := common/rules.o $(LIBNBDP)
FUZZ_LIBS_client := $(LIBNBDP)
FUZZ_LIBS_client-resize := $(LIBNBDP_RESIZE) $(LIBNBDP)
FUZZ_LIBS_server-stdio := $(FUZZ_SERVER_SRCS:.c=.o) $(LIBNBDP)
FUZZ_HDRS := fuzz/fuzz.h fuzz/peer.h

# ---- make check: replay the corpus with the normal compiler ----
FUZZ_REPLAY_BINS := $(addprefix fuzz/bin/replay-,$(FUZZ_ALL_TARGETS))
CHECK_PROGRAMS += $(FUZZ_REPLAY_BINS)
INTEGRATION_TESTS += $(FUZZ_REPLAY_BINS)
CLEANFILES += $(FUZZ_REPLAY_BINS)

define fuzz_replay_rule
fuzz/bin/replay-$(1): fuzz/fuzz-$(1).c fuzz/replay.c $$(FUZZ_HDRS) \
                      $$(FUZZ_LIBS_$(1))
	@mkdir -p fuzz/bin
	$$(CC) $$(ALL_CFLAGS) -Ireference-server -DFUZZ_TARGET='"$(1)"' \
	  -o $$@ fuzz/fuzz-$(1).c fuzz/replay.c $$(FUZZ_LIBS_$(1)) \
	  $$(ALL_LDFLAGS)
endef
$(foreach t,$(FUZZ_ALL_TARGETS),$(eval $(call fuzz_replay_rule,$(t))))

# ---- make fuzz: clang, libFuzzer, sanitizers, own object directory ----
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread -I. -Icommon \
               -Icommon/utils -Ireference-server -g -O1 \
               -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined \
               $(filter-out -Werror,$(WARNINGS)) -Wno-format-nonliteral \
               $(FUZZ_FLAGS)
FUZZ_LDFLAGS := -pthread -fsanitize=fuzzer,address,undefined

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_ALL_TARGETS))
CLEANFILES += $(FUZZ_BINS)

define fuzz_bin_rule
$(FUZZ_BUILD)/fuzz-$(1): $(FUZZ_BUILD)/obj/fuzz/fuzz-$(1).o \
                         $$(addprefix $(FUZZ_BUILD)/obj/,$$(FUZZ_SRCS_$(1):.c=.o))
	$$(FUZZ_CC) -o $$@ $$^ $$(FUZZ_LDFLAGS)
endef
$(foreach t,$(FUZZ_ALL_TARGETS),$(eval $(call fuzz_bin_rule,$(t))))

fuzz-build: $(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts; \
	  echo "== fuzz-$$t for $(FUZZ_SECONDS)s"; \
	  $(FUZZ_BUILD)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=30 -rss_limit_mb=2048 -max_len=16384 \
	    -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
	    $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t; \
	done

.PHONY: fuzz fuzz-build
