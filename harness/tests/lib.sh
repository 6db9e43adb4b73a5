# Helpers sourced by the harness's own tests (harness/tests/*.sh).
#
#   requires CMD ARGS...   run CMD; if it fails print "SKIP: ..." and exit 77
#   fail MSG...            print FAIL: MSG and exit 1
#   matrix ARGS...         run harness/nbd-matrix with TMPDIR private, output
#                          in $out (stdout+stderr in $out.log); sets $rc
#   check_clean            fail if a process or temporary file of the run
#                          is left behind
#
# Tests run under scripts/run-tests.sh, which gives each a private scratch
# directory $NBDP_TEST_DIR; run by hand, a temporary one is made here.
set -u
set -o pipefail
export LC_ALL=C
top=${NBDP_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export NBDP_TOP=$top
case ":$PATH:" in
  /usr/bin:*) ;;
  *) PATH=/usr/bin:/usr/sbin:$PATH ;;
esac
export PATH
if [ -z "${NBDP_TEST_DIR:-}" ]; then
  NBDP_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nbdm-test.XXXXXX")
  trap 'rm -rf "$NBDP_TEST_DIR"' EXIT
fi
scratch=$NBDP_TEST_DIR
mkdir -p "$scratch/tmp"
export TMPDIR=$scratch/tmp

requires ()
{
  if ! ( "$@" ) </dev/null >/dev/null 2>&1; then
    echo "SKIP: '$*' failed: the test needs it"
    exit 77
  fi
}

fail ()
{
  echo "FAIL: $*"
  exit 1
}

matrix ()
{
  "$top/harness/nbd-matrix" "$@" >"$out.log" 2>&1
  rc=$?
  sed 's/^/  matrix| /' "$out.log"
}

check_clean ()
{
  local left
  # Every process of a run has the private TMPDIR in its arguments
  # (sockets, scratch directories).
  left=$(pgrep -a -f "$TMPDIR" || :)
  [ -z "$left" ] || fail "processes left behind: $left"
  left=$(ls -A "$TMPDIR")
  [ -z "$left" ] || fail "temporary files left in TMPDIR: $left"
}

[ -x "$top/harness/nbd-matrix" ] || fail "harness/nbd-matrix is not built"
