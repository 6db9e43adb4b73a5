# suites/resize.mk: make check tests of the draft RESIZE suite
# (suites/resize/): every conforming nbd-refserver profile passes it, and
# every fault and negative profile makes it fail with the requirement ID
# the fault breaks.  The suite itself is linked into nbd-conform by
# suites/module.mk (with common/libnbdp-resize.a).
INTEGRATION_TESTS += suites/test-conform-resize.sh suites/test-faults.sh
