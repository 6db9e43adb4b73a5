#!/usr/bin/env bash
# nbd-refclient against nbdkit (memory plugin), which does not implement
# the draft RESIZE extension: info, read and write work with compact and
# extended headers, with and without structured replies; every resize
# operation says "not supported" (exit 3), and a forced NBD_CMD_RESIZE is
# refused with NBD_EINVAL (RZ-FLAG-4 / [proto "Error values"]).
# specs/resize.md 4.1 (RZ-NEG-3), 4.4 (RZ-FLAG-4), 14 (RZ-CLI-1, RZ-CLI-16).
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/resize-client-functions.sh"
requires nbdkit --version
requires nbdkit memory --version

start_nbdkit memory 16M
check_server_without_resize "$uri"
check_server_without_resize "$uri" --no-structured
# Extended headers if this nbdkit has them (otherwise the client falls
# back to structured replies; either way the runs must pass).
check_server_without_resize "$uri" --extended
