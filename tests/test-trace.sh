#!/usr/bin/env bash
# nbd-conformance: tests of the requirement trace (specs/trace.py).
#
# The catalogue must match the real protocol text (and the extended-headers
# branch, when its copy is present); a normative sentence added to a copy
# must be reported as uncatalogued, a removed one as a stale row, a changed
# key word as a wrong level; code blocks and quoted key words are not
# requirements; [RZ-...] tags of a RESIZE draft are read; coverage counts
# the IDs that test sources cite.  The output must be deterministic.
#
# $NBDP_PROTO_MD and $NBDP_PROTO_EXT_MD name the copies of proto.md (default:
# /work/shared/upstream/); without proto.md the test is skipped.

source "$(dirname "$0")/functions.sh"

trace=$NBDP_TOP/specs/trace.py
proto=${NBDP_PROTO_MD:-/work/shared/upstream/proto.md}
ext=${NBDP_PROTO_EXT_MD:-/work/shared/upstream/proto-extension-ext-header.md}
d=$NBDP_TEST_DIR

requires python3 -c 'import sys; assert sys.version_info >= (3, 5)'
if [ ! -r "$proto" ]; then
  echo "SKIP: no copy of proto.md at $proto (set NBDP_PROTO_MD)"
  exit 77
fi

# run NAME EXPECTED-STATUS ARGS...: run the trace, keep its output in
# $d/NAME.out, fail unless it exits with EXPECTED-STATUS.
run ()
{
  local name=$1 want=$2 rc
  shift 2
  python3 "$trace" "$@" >"$d/$name.out" 2>"$d/$name.err"
  rc=$?
  if [ "$rc" != "$want" ]; then
    echo "trace $*: exit $rc, expected $want"
    cat "$d/$name.out" "$d/$name.err"
    fail "$name: wrong exit status"
  fi
}

# has NAME REGEX: the output of run NAME matches the extended REGEX.
has ()
{
  grep -Eq -- "$2" "$d/$1.out" ||
    { cat "$d/$1.out"; fail "$1: output lacks /$2/"; }
}
hasnt ()
{
  ! grep -Eq -- "$2" "$d/$1.out" ||
    { cat "$d/$1.out"; fail "$1: output has /$2/"; }
}

# edit SRC DST PYTHON-EXPR: DST is SRC with its text t replaced by EXPR.
edit ()
{
  python3 - "$1" "$2" "$3" <<'EOF' || fail "cannot edit $1"
import re, sys
t = open(sys.argv[1], encoding='utf-8').read()
new = eval(sys.argv[3])
if new == t:
    sys.exit('edit made no change: ' + sys.argv[3])
open(sys.argv[2], 'w', encoding='utf-8').write(new)
EOF
}

# 1. The real text passes, and the numbers are what the catalogue says.
run real 0 --no-resize --no-coverage "$proto"
has real '^TRACE .*\(master\): [0-9]+ normative sentences'
has real '^RESULT: OK'
if [ -r "$ext" ]; then
  run real-ext 0 --no-resize --no-coverage "$proto" "$ext"
  has real-ext '\(ext-header\): [0-9]+ normative sentences'
  has real-ext '^RESULT: OK'
fi

# 2. One added normative sentence is reported, with its line and text.
edit "$proto" "$d/added.md" \
  "t.replace('#### Request message\n', '#### Request message\n\nThe server MUST frobnicate every request before replying.\n', 1)"
run added 1 --no-resize --no-coverage "$d/added.md"
has added '^  UNCATALOGUED: .*added\.md:[0-9]+: \[Request message\] MUST: The server MUST frobnicate'
has added '^RESULT: FAIL \(1 uncatalogued\)'

# 3. One removed normative sentence leaves its row stale.
edit "$proto" "$d/removed.md" \
  "re.sub(r'A client MUST NOT send\s+anything to the server after sending an\s+\`NBD_CMD_DISC\` command\.', '', t)"
run removed 1 --no-resize --no-coverage "$d/removed.md"
has removed '^  STALE: CMD-DISC-2 MUST NOT '
has removed '^RESULT: FAIL \(1 stale\)'

# 4. A key word changed in place (SHOULD -> MUST) is a level mismatch or a
#    stale row plus an uncatalogued sentence, never a pass.
edit "$proto" "$d/level.md" \
  "t.replace('The server SHOULD NOT return \`NBD_ENOMEM\`', 'The server MUST NOT return \`NBD_ENOMEM\`', 1)"
run level 1 --no-resize --no-coverage "$d/level.md"
has level 'ERR-10'

# 5. Key words in code blocks, code spans and quotes are not requirements.
edit "$proto" "$d/code.md" \
  "t.replace('## Protocol phases\n', '## Protocol phases\n\n\`\`\`\nThe server MUST do this.\n\`\`\`\n\n    The client MUST do that.\n\nA mention of \"MUST\" and \'SHOULD\' and \`MAY\` here.\n\n', 1)"
run code 0 --no-resize --no-coverage "$d/code.md"

# 6. A split sentence: a row per key word level, so dropping one clause
#    of a two-level sentence is noticed.
edit "$proto" "$d/clause.md" \
  "t.replace(', and SHOULD NOT change behaviour\nunless the client responds with a corresponding flag', '', 1)"
run clause 1 --no-resize --no-coverage "$d/clause.md"
has clause 'STALE: FLAG-HS-4 SHOULD NOT'

# 7. A malformed catalogue breaks the run (exit 2), naming the line.
{ head -n 2 "$NBDP_TOP/specs/requirements.tsv"
  printf 'BAD ID\tsomewhere\tMUST\tserver\tx\tmaster\tx\n'; } >"$d/bad.tsv"
run bad 2 --no-resize --no-coverage --catalog "$d/bad.tsv" "$proto"
grep -q "bad.tsv:3: bad ID" "$d/bad.err" || { cat "$d/bad.err"; fail "bad: no diagnostic"; }

# 8. A RESIZE draft: tags after the full stop belong to the sentence before;
#    an untagged normative sentence is reported; an RZ row of the TSV that
#    the draft no longer tags is stale.
cat >"$d/resize.md" <<'EOF'
# Draft

## 1. Set size

The server MUST apply the new size before replying. [RZ-SET-1] A client
SHOULD NOT send a resize while writes are in flight [RZ-CLI-1].

- The server MAY round the size up to its granularity. [RZ-SET-2]

```
The server MUST be ignored inside code.
```

## 2. Oops

The server MUST be tagged but is not.
EOF
run rz 1 --no-coverage --resize "$d/resize.md" "$proto"
has rz '^TRACE .*resize\.md \(resize\): 3 RZ IDs'
has rz 'rows: +MUST 1, MUST NOT 0, SHOULD 0, SHOULD NOT 1, MAY 1'
has rz 'UNCATALOGUED: .*resize\.md:16: \[2\. Oops\] MUST: no \[RZ-\.\.\.\] tag'
hasnt rz 'ignored inside code'
cp "$NBDP_TOP/specs/requirements.tsv" "$d/rz.tsv"
printf 'RZ-GONE-1\tRESIZE 1. Set size\tMUST\tserver\tgone\tresize\tRZ-GONE-1\n' \
  >>"$d/rz.tsv"
run rz-stale 1 --no-coverage --catalog "$d/rz.tsv" --resize "$d/resize.md" "$proto"
has rz-stale 'STALE: RZ-GONE-1 '

# 9. Coverage: IDs cited by test sources under --tests-root are counted,
#    unknown IDs are warned about, --uncovered lists the rest.
sed '/^## 2\. Oops/,$d' "$d/resize.md" >"$d/resize-ok.md"
mkdir -p "$d/root/suites/handshake" "$d/root/harness/scenarios"
printf '/* checks [FLAG-HS-5] and FLAG-HS-3 */\n' >"$d/root/suites/handshake/t.c"
printf '# requirements: CMD-DISC-2 RZ-SET-2 FLAG-HS-99\n' \
  >"$d/root/harness/scenarios/s.scn"
printf 'FLAG-HS-1 in a README is not a test\n' >"$d/root/suites/README.md"
# The real untestable list, less the RZ-* rows this small draft lacks.
grep -v '^RZ-' "$NBDP_TOP/specs/untestable.tsv" >"$d/unt-real.tsv"
run cov 0 --resize "$d/resize-ok.md" --tests-root "$d/root" --uncovered \
  --doc "master=$d/code.md" --untestable "$d/unt-real.tsv"
has cov '^COVERAGE: [0-9]+ requirement IDs, 2 test source files scanned'
has cov 'cited by at least one test: 4 of '
has cov '^  Handshake flags +5 +2 +40%$'
has cov '^  MUST NOT +[0-9]+ +3 '
has cov '^  FLAG-HS-99 \(harness/scenarios/s\.scn\)$'
has cov '^  FLAG-HS-1 +MUST '
hasnt cov '^  FLAG-HS-(3|5) '
hasnt cov '^  CMD-DISC-2 '

# 10. Untestable requirements (specs/untestable.tsv): left out of the
#     server coverage figure, listed apart with their reasons; a reason
#     without a category, or an unknown ID, breaks the run.
has cov '^SERVER COVERAGE: '
has cov '^  published +[0-9]+ of +[0-9]+ testable cited \([0-9.]+%\); [0-9]+ rows, [0-9]+ marked untestable'
has cov '^UNTESTABLE server MUST/MUST NOT requirements: [0-9]+$'
printf 'id\treason\n# a comment\nFLAG-HS-1\tintent: a fixture reason\n' \
  >"$d/unt.tsv"
run unt 0 --resize "$d/resize-ok.md" --tests-root "$d/root" --uncovered \
  --doc "master=$d/code.md" --untestable "$d/unt.tsv"
has unt '^  published +[0-9]+ of +[0-9]+ testable cited .*; [0-9]+ rows, 1 marked untestable'
has unt '^  untestable by reason: intent 1$'
has unt '^  FLAG-HS-1 +MUST +intent: a fixture reason$'
hasnt unt '^  FLAG-HS-1 +MUST +Handshake flags'
printf 'id\treason\nFLAG-HS-1\tno category here\n' >"$d/unt-bad.tsv"
run unt-bad 2 --tests-root "$d/root" --doc "master=$d/code.md" \
  --no-resize --untestable "$d/unt-bad.tsv"
grep -q 'unt-bad.tsv:2: FLAG-HS-1: the reason must be' "$d/unt-bad.err" ||
  { cat "$d/unt-bad.err"; fail "unt-bad: no diagnostic"; }
printf 'id\treason\nFLAG-HS-999\tintent: no such row\n' >"$d/unt-unknown.tsv"
run unt-unknown 2 --tests-root "$d/root" --doc "master=$d/code.md" \
  --no-resize --untestable "$d/unt-unknown.tsv"
grep -q 'FLAG-HS-999 is not a requirement ID' "$d/unt-unknown.err" ||
  { cat "$d/unt-unknown.err"; fail "unt-unknown: no diagnostic"; }

# 11. The goal: the tests of this tree cite at least 90% of the server-side
#     MUST and MUST NOT requirements of the published protocol that a
#     client can test.
run goal 0 "$proto"
pct=$(sed -nE 's/^  published +[0-9]+ of +[0-9]+ testable cited \(([0-9.]+)%\).*/\1/p' \
        "$d/goal.out")
[ -n "$pct" ] || { cat "$d/goal.out"; fail "goal: no published figure"; }
grep -E '^  (published|ext-header|resize) ' "$d/goal.out"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 90 else 1)" "$pct" ||
  fail "server MUST/MUST NOT coverage of the published protocol is $pct%, expected at least 90% (make trace TRACE_FLAGS=--uncovered lists the gaps)"
echo "ok: server MUST/MUST NOT coverage of the published protocol: $pct% (goal 90%)"

# 12. Deterministic: the same run prints the same bytes.
run cov2 0 --resize "$d/resize-ok.md" --tests-root "$d/root" --uncovered \
  --doc "master=$d/code.md" --untestable "$d/unt-real.tsv"
cmp -s "$d/cov.out" "$d/cov2.out" || fail "two identical runs differ"

echo "PASS: requirement trace"
