#!/usr/bin/env python3
# nbd-conformance: the requirement trace.
#
# Reads a copy of the NBD protocol text (doc/proto.md of the nbd project,
# the published master text or the extended-headers branch), splits it into
# sentences, and checks that every normative sentence (one that uses an
# upper-case RFC 2119 key word) is covered by a row of specs/requirements.tsv,
# and that every row still finds its sentence.  It also reads the RZ-*
# requirement IDs of the project's own draft text, specs/resize.md.  Then it
# reports which requirement IDs the project's tests cite, and the share of
# the server-side MUST/MUST NOT requirements that a client can test (all but
# those listed, with reasons, in specs/untestable.tsv) that some test cites.
#
# Exit status: 0 when the catalogue matches every document checked, 1 when
# it does not (uncatalogued sentences, stale or ambiguous rows, wrong
# levels), 2 when the run itself broke (missing file, malformed catalogue).
#
# Only the Python 3 standard library is used.  See specs/README.md.

import argparse
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PROTO = '/work/shared/upstream/proto.md'
DEFAULT_CATALOG = os.path.join(TOP, 'specs', 'requirements.tsv')
DEFAULT_RESIZE = os.path.join(TOP, 'specs', 'resize.md')
DEFAULT_UNTESTABLE = os.path.join(TOP, 'specs', 'untestable.tsv')
TEST_DIRS = ('suites', 'tests', 'reference-client', 'harness/scenarios')
TEST_EXTS = ('.c', '.h', '.sh', '.py', '.scn')
# The trace's own test names IDs only as fixtures, not as coverage.
COVERAGE_EXCLUDE = ('tests/test-trace.sh',)

COLUMNS = ('id', 'section', 'level', 'role', 'summary', 'source', 'anchor')
LEVELS = ('MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT', 'MAY')
ROLES = ('server', 'client', 'both')
# source: where the sentence is.  master = the published text (and, with at
# most wording changes, the extended-headers branch); master-only = the
# published text, which the branch replaces by an ext-header row;
# ext-header = only in the extended-headers branch; resize = specs/resize.md.
SOURCES = ('master', 'master-only', 'ext-header', 'resize')
DOC_KINDS = ('master', 'ext-header')

# Key words, longest first; the value is the level they are catalogued at.
# RFC 2119 synonyms fold onto the five levels.  "MAY NOT" is not an RFC 2119
# phrase; proto.md uses it for prohibitions ("MAY NOT make any
# assumptions"), so it is read as MUST NOT.
KEYWORDS = (
    ('MUST NOT', 'MUST NOT'), ('SHALL NOT', 'MUST NOT'),
    ('SHOULD NOT', 'SHOULD NOT'), ('NOT RECOMMENDED', 'SHOULD NOT'),
    ('MAY NOT', 'MUST NOT'),
    ('MUST', 'MUST'), ('SHALL', 'MUST'), ('REQUIRED', 'MUST'),
    ('SHOULD', 'SHOULD'), ('RECOMMENDED', 'SHOULD'),
    ('MAY', 'MAY'), ('OPTIONAL', 'MAY'),
)
KEYWORD_RE = re.compile(
    r'(?<![\w\'"])(' + '|'.join(k.replace(' ', r'\s+') for k, _ in KEYWORDS)
    + r')(?![\w\'"])')
KEYWORD_LEVEL = {k: v for k, v in KEYWORDS}

ID_RE = re.compile(r'(?<![A-Za-z0-9_-])([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)'
                   r'(?![A-Za-z0-9_-])')
ID_FORMAT_RE = re.compile(r'^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-[0-9]+$')
RZ_TAG_RE = re.compile(r'\[(RZ-[A-Z0-9]+(?:-[A-Z0-9]+)*)\]')


class Broken(Exception):
    """The run cannot continue (exit 2)."""


# ---------------------------------------------------------------------------
# Markdown to sentences.

class Sentence:
    __slots__ = ('path', 'line', 'section', 'text', 'norm', 'levels',
                 'keywords', 'rows')

    def __init__(self, path, line, section, text):
        self.path = path
        self.line = line
        self.section = section
        self.text = text
        self.norm = normalize(text)
        self.keywords = find_keywords(text)
        self.levels = sorted({KEYWORD_LEVEL[k] for k in self.keywords},
                             key=LEVELS.index)
        self.rows = []


EMPHASIS_RE = re.compile(r'(?<![\w*])\*{1,2}(?=\S)(.+?)(?<=\S)\*{1,2}(?![\w*])')


def normalize(text):
    """Text as anchors are compared: no code or emphasis marks, one space."""
    text = text.replace('`', '')
    text = EMPHASIS_RE.sub(r'\1', text)
    return ' '.join(text.split())


def find_keywords(text):
    """Upper-case RFC 2119 key words of a sentence, in order.

    Key words inside code spans or quoted ('MUST', "MUST") are mentions,
    not requirements."""
    text = re.sub(r'`[^`]*`', ' ', text)
    return [' '.join(m.group(1).split()) for m in KEYWORD_RE.finditer(text)]


HEADING_RE = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
FENCE_RE = re.compile(r'^\s{0,3}(```|~~~)')
ITEM_RE = re.compile(r'^(\s*)([*+-]|\d+[.)])\s+(.*)$')
# A top-level list item naming a constant labels the sentences under it:
# "* `NBD_OPT_GO` (7)", "- bit 1, `NBD_FLAG_READ_ONLY`: ...".
LABEL_RE = re.compile(r'^(?:bit \d+,\s*)?`(NBD_[A-Z0-9_]+)`')
ABBREVIATIONS = ('e.g.', 'i.e.', 'etc.', 'vs.', 'cf.', 'approx.', 'no.')


def heading_text(raw):
    return normalize(raw).strip()


def parse_blocks(lines):
    """Yield (section, [(lineno, text), ...]) for each paragraph or list item.

    Fenced and indented code blocks, headings and HTML comments are left
    out.  A line ending in a hard break (two spaces or a backslash) ends a
    sentence, so message layouts ("S: 32 bits, ...") are one sentence a
    line.  The section is the heading, followed by the constant that opens
    the enclosing top-level list item and the constant that opens the
    enclosing nested list item, if any:
    "Option types: NBD_OPT_INFO: NBD_REP_ERR_TLS_REQD"."""
    heading = ''
    label = None
    sublabel = None
    sub_indent = 0
    in_fence = None
    in_code = False
    in_comment = False
    in_list = False
    block = []
    prev_blank = True

    def section():
        return ': '.join(x for x in (heading, label, sublabel) if x)

    cur_section = section()
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip('\n').expandtabs(4)
        stripped = line.strip()
        if in_comment:
            if '-->' in line:
                in_comment = False
            continue
        if in_fence:
            if stripped.startswith(in_fence):
                in_fence = None
            continue
        m = FENCE_RE.match(line)
        if m:
            if block:
                yield cur_section, block
                block = []
            in_fence = m.group(1)
            continue
        if stripped.startswith('<!--'):
            if block:
                yield cur_section, block
                block = []
            if '-->' not in stripped:
                in_comment = True
            continue
        if not stripped:
            if block:
                yield cur_section, block
                block = []
            prev_blank = True
            continue
        indent = len(line) - len(line.lstrip(' '))
        if in_code:
            if indent >= 4:
                continue
            in_code = False
        m = HEADING_RE.match(line)
        if m and indent < 4:
            if block:
                yield cur_section, block
                block = []
            heading = heading_text(m.group(2))
            label = sublabel = None
            in_list = False
            cur_section = section()
            prev_blank = True
            continue
        hard = raw.rstrip('\n').endswith(('  ', '\\'))
        m = ITEM_RE.match(line)
        if m and (indent < 4 or in_list):
            if block:
                yield cur_section, block
                block = []
            lm = LABEL_RE.match(m.group(3))
            if indent == 0:
                in_list = True
                label = lm.group(1) if lm else None
                sublabel = None
            else:
                sublabel = lm.group(1) if lm else None
                sub_indent = indent
            cur_section = section()
            block = [(lineno, m.group(3).strip() + ('\x00' if hard else ''))]
            prev_blank = False
            continue
        text = stripped
        if hard:
            text = text.rstrip('\\').rstrip() + '\x00'
        if block and not prev_blank:
            block.append((lineno, text))
            continue
        # A new paragraph.
        if indent >= 4 and not in_list:
            in_code = True
            continue
        if indent == 0 and in_list:
            in_list = False
            label = sublabel = None
        elif sublabel and indent <= sub_indent:
            sublabel = None
        cur_section = section()
        block = [(lineno, text)]
        prev_blank = False
    if block:
        yield cur_section, block


def section_labels(section):
    """The list-item constants part of a section name."""
    return section[len(section_head(section)):]


def section_head(section):
    """The heading part of a section name."""
    return re.sub(r': NBD_.*$', '', section)


SPLIT_RE = re.compile(r'([.!?])(["\')\]]*)(\s+)(?=[A-Z`*(\["\'_0-9])')


def split_sentences(text):
    """Split one paragraph (lines joined with spaces) into sentences.

    Returns (offset, sentence) pairs.  A full stop ends a sentence when
    followed by white space and an upper-case letter, a digit, a code span
    or an opening bracket, unless it ends a known abbreviation."""
    out = []
    start = 0
    for m in SPLIT_RE.finditer(text):
        end = m.end(2)
        before = text[start:end]
        word = before.split()[-1] if before.split() else ''
        if m.group(1) == '.' and word.lower().rstrip('"\')]').endswith(
                ABBREVIATIONS):
            continue
        out.append((start, text[start:end]))
        start = m.end()
    out.append((start, text[start:]))
    return [(o, s.strip()) for o, s in out if s.strip()]


def read_sentences(path):
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.readlines()
    except OSError as e:
        raise Broken('cannot read %s: %s' % (path, e.strerror))
    return sentences_of(path, lines)


def sentences_of(path, lines):
    sentences = []
    for section, block in parse_blocks(lines):
        # Join the lines, remembering where each starts; a hard break
        # (marked \0) ends a segment.
        segments = [[]]
        for lineno, text in block:
            hard = text.endswith('\x00')
            segments[-1].append((lineno, text.rstrip('\x00').strip()))
            if hard:
                segments.append([])
        for seg in segments:
            if not seg:
                continue
            text = ''
            starts = []
            for lineno, piece in seg:
                if text:
                    text += ' '
                starts.append((len(text), lineno))
                text += piece
            for off, sent in split_sentences(text):
                line = starts[0][1]
                for o, ln in starts:
                    if o <= off:
                        line = ln
                sentences.append(Sentence(path, line, section, sent))
    return sentences


def doc_kind(path, sentences):
    for s in sentences:
        if s.section.startswith('Extended reply chunk message'):
            return 'ext-header'
    return 'master'


# ---------------------------------------------------------------------------
# The catalogue.

class Row:
    __slots__ = ('id', 'section', 'level', 'role', 'summary', 'source',
                 'anchor', 'where', 'norm_anchor', 'found')

    def __init__(self, where, fields):
        self.where = where
        for name, value in zip(COLUMNS, fields):
            setattr(self, name, value)
        self.norm_anchor = normalize(self.anchor)
        self.found = {}


def read_catalog(path):
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
    except OSError as e:
        raise Broken('cannot read %s: %s' % (path, e.strerror))
    if not lines or lines[0].split('\t') != list(COLUMNS):
        raise Broken('%s:1: header must be: %s' % (path, '\t'.join(COLUMNS)))
    rows = []
    problems = []
    seen = {}
    for n, line in enumerate(lines[1:], 2):
        if not line.strip() or line.startswith('#'):
            continue
        fields = line.split('\t')
        where = '%s:%d' % (path, n)
        if len(fields) != len(COLUMNS):
            problems.append('%s: %d columns, expected %d'
                            % (where, len(fields), len(COLUMNS)))
            continue
        row = Row(where, [f.strip() for f in fields])
        if not ID_FORMAT_RE.match(row.id):
            problems.append('%s: bad ID %r' % (where, row.id))
        if row.id in seen:
            problems.append('%s: duplicate ID %s (first at %s)'
                            % (where, row.id, seen[row.id]))
        seen[row.id] = where
        if row.level not in LEVELS:
            problems.append('%s: %s: bad level %r' % (where, row.id, row.level))
        if row.role not in ROLES:
            problems.append('%s: %s: bad role %r' % (where, row.id, row.role))
        if row.source not in SOURCES:
            problems.append('%s: %s: bad source %r'
                            % (where, row.id, row.source))
        if not row.summary or not row.anchor or not row.section:
            problems.append('%s: %s: empty column' % (where, row.id))
        if len(row.anchor.split()) > 8:
            problems.append('%s: %s: anchor longer than 8 words'
                            % (where, row.id))
        rows.append(row)
    if problems:
        raise Broken('malformed catalogue:\n  ' + '\n  '.join(problems))
    return rows


UNTESTABLE_COLUMNS = ('id', 'reason')
REASON_RE = re.compile(r'^([a-z][a-z0-9-]*): (\S.*)$')


def read_untestable(path):
    """Return {id: (category, text)} from the list of requirements that
    no client can test (specs/untestable.tsv): id, reason, where the
    reason is 'CATEGORY: why'."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
    except OSError as e:
        raise Broken('cannot read %s: %s' % (path, e.strerror))
    if not lines or lines[0].split('\t') != list(UNTESTABLE_COLUMNS):
        raise Broken('%s:1: header must be: %s'
                     % (path, '\t'.join(UNTESTABLE_COLUMNS)))
    out = {}
    problems = []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip() or line.startswith('#'):
            continue
        fields = [x.strip() for x in line.split('\t')]
        where = '%s:%d' % (path, n)
        if len(fields) != len(UNTESTABLE_COLUMNS):
            problems.append('%s: %d columns, expected %d'
                            % (where, len(fields), len(UNTESTABLE_COLUMNS)))
            continue
        rid, reason = fields
        m = REASON_RE.match(reason)
        if not ID_FORMAT_RE.match(rid):
            problems.append('%s: bad ID %r' % (where, rid))
        elif rid in out:
            problems.append('%s: %s listed twice' % (where, rid))
        elif not m:
            problems.append('%s: %s: the reason must be "CATEGORY: why" '
                            '(category in lower case)' % (where, rid))
        else:
            out[rid] = (m.group(1), m.group(2), where)
    if problems:
        raise Broken('malformed list of untestable requirements:\n  '
                     + '\n  '.join(problems))
    return out


def expected_in(row, kind):
    if row.source == 'master':
        return True
    if row.source == 'master-only':
        return kind == 'master'
    if row.source == 'ext-header':
        return kind == 'ext-header'
    return False


def home_kind(row):
    return 'ext-header' if row.source == 'ext-header' else 'master'


# ---------------------------------------------------------------------------
# specs/resize.md: the RZ-* IDs.

def strongest(levels):
    for lv in LEVELS:
        if lv in levels:
            return lv
    return None


def read_resize(path):
    """Return (rows, untagged sentences, notes) for the project's draft.

    Each normative sentence carries one or more [RZ-...] tags; a tag just
    after the full stop belongs to the sentence before it."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError as e:
        raise Broken('cannot read %s: %s' % (path, e.strerror))
    # Move tags that follow a full stop in front of it.
    text = re.sub(r'([.!?])([ \t]*)((?:\[RZ-[A-Z0-9-]+\][ \t]*)+)',
                  lambda m: ' ' + m.group(3).strip() + m.group(1) + ' ', text)
    sentences = sentences_of(path, text.splitlines(True))
    rows = {}
    untagged = []
    notes = []
    for s in sentences:
        tags = list(RZ_TAG_RE.finditer(s.text))
        if not tags:
            if s.keywords:
                untagged.append(s)
            continue
        prev = 0
        for i, m in enumerate(tags):
            if m.start() == 0 or not s.text[:m.start()].strip():
                nxt = tags[i + 1].start() if i + 1 < len(tags) else None
                clause = s.text[m.end():nxt]
            else:
                clause = s.text[prev:m.start()]
            prev = m.end()
            levels = {KEYWORD_LEVEL[k] for k in find_keywords(clause)} \
                or set(s.levels)
            rid = m.group(1)
            if rid in rows:
                continue            # a later mention refers back
            if not levels:
                notes.append('%s:%d: %s tags a sentence without a key word'
                              % (s.path, s.line, rid))
                continue
            level = strongest(levels)
            lower = clause.lower()
            kw = KEYWORD_RE.search(clause)
            subject = lower[:kw.start()] if kw else lower
            role = 'both'
            if 'server' in subject and 'client' not in subject:
                role = 'server'
            elif 'client' in subject and 'server' not in subject:
                role = 'client'
            summary = ' '.join(RZ_TAG_RE.sub('', s.norm).split())
            summary = re.sub(r' ([.;:,])', r'\1', summary)
            row = Row('%s:%d' % (s.path, s.line),
                      [rid, 'RESIZE ' + s.section, level, role, summary,
                       'resize', rid])
            rows[rid] = row
    return list(rows.values()), untagged, notes


# ---------------------------------------------------------------------------
# Matching.

def check_doc(path, kind, sentences, rows, errors, notes):
    """Map rows to the normative sentences of one document."""
    normative = [s for s in sentences if s.keywords]
    for row in rows:
        if not expected_in(row, kind):
            continue
        cands = [s for s in normative if row.norm_anchor in s.norm]
        if len(cands) > 1:
            narrowed = [s for s in cands if s.section == row.section]
            if not narrowed:
                head = section_head(row.section)
                narrowed = [s for s in cands
                            if section_head(s.section) == head]
            cands = narrowed or cands
        if not cands:
            errors.append(('STALE', '%s %s [%s] anchor "%s" is in no '
                           'normative sentence' % (row.id, row.level,
                                                   row.section, row.anchor)))
            continue
        if len(cands) > 1:
            errors.append(('AMBIGUOUS', '%s anchor "%s" is in %d sentences '
                           '(lines %s)' % (row.id, row.anchor, len(cands),
                                           ', '.join(str(s.line)
                                                     for s in cands))))
            continue
        s = cands[0]
        row.found[kind] = s
        s.rows.append(row)
        if s.section != row.section:
            msg = ('%s is catalogued under [%s] but its sentence (line %d) '
                   'is under [%s]' % (row.id, row.section, s.line, s.section))
            # The other document may rename a heading, but the constants
            # that label list items stay.
            if kind != home_kind(row) and \
                    section_labels(s.section) == section_labels(row.section):
                notes.append(msg)
            else:
                errors.append(('SECTION', msg))
        if row.level not in s.levels:
            errors.append(('LEVEL', '%s is catalogued as %s but line %d says '
                           '%s: %s' % (row.id, row.level, s.line,
                                       '/'.join(s.keywords),
                                       clip(s.norm))))
    for s in normative:
        if not s.rows:
            errors.append(('UNCATALOGUED', '%s:%d: [%s] %s: %s'
                           % (path, s.line, s.section, '/'.join(s.levels),
                              clip(s.norm, 400))))
            continue
        have = {r.level for r in s.rows}
        missing = [lv for lv in s.levels if lv not in have]
        if missing:
            errors.append(('UNCATALOGUED', '%s:%d: [%s] the %s in this '
                           'sentence has no row (rows: %s): %s'
                           % (path, s.line, s.section, '/'.join(missing),
                              ', '.join(r.id for r in s.rows),
                              clip(s.norm, 400))))
    return normative


def clip(text, n=160):
    return text if len(text) <= n else text[:n - 3] + '...'


# ---------------------------------------------------------------------------
# Coverage.

def test_files(top):
    out = []
    for d in TEST_DIRS:
        root = os.path.join(top, d)
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(x for x in dirnames if not x.startswith('.'))
            for fn in sorted(filenames):
                if not fn.endswith(TEST_EXTS):
                    continue
                p = os.path.join(dirpath, fn)
                rel = os.path.relpath(p, top)
                if rel in COVERAGE_EXCLUDE:
                    continue
                out.append(rel)
    return sorted(out)


def cited_ids(top, files):
    cited = {}
    for rel in files:
        try:
            with open(os.path.join(top, rel), encoding='utf-8',
                      errors='replace') as f:
                text = f.read()
        except OSError:
            continue
        for m in ID_RE.finditer(text):
            cited.setdefault(m.group(1), set()).add(rel)
    return cited


def pct(a, b):
    return '%3d%%' % (100 * a // b) if b else '   -'


# The requirements a server can break: role server, and role both (the
# rule binds either party).  These are what the conformance suite must
# cover.
SERVER_SIDE = ('server', 'both')
STRONG = ('MUST', 'MUST NOT')
# Groups of the server-side coverage figure, by where the row comes from.
SOURCE_GROUPS = (
    ('published', ('master', 'master-only'), 'the published protocol'),
    ('ext-header', ('ext-header',), 'only in the extended-headers branch'),
    ('resize', ('resize',), 'the draft RESIZE extension (RZ-*)'),
)


def print_server_coverage(rows, covered, untestable, cited, uncovered, out):
    """The figure the suite is held to: of the server-side MUST and MUST
    NOT requirements that a client can test, how many a test cites."""
    strong = [r for r in rows if r.role in SERVER_SIDE and r.level in STRONG]
    print('', file=out)
    print('SERVER COVERAGE: MUST/MUST NOT requirements of role server or '
          'both, cited by a test,', file=out)
    print('  of those a client can test (specs/untestable.tsv lists the '
          'others, with reasons)', file=out)
    for key, sources, title in SOURCE_GROUPS:
        g = [r for r in strong if r.source in sources]
        if not g:
            continue
        t = [r for r in g if r.id not in untestable]
        c = [r for r in t if r.id in covered]
        print('  %-11s %3d of %3d testable cited (%s); %d rows, %d marked '
              'untestable  [%s]'
              % (key, len(c), len(t),
                 ('%.1f%%' % (100.0 * len(c) / len(t))) if t else '-',
                 len(g), len(g) - len(t), title), file=out)
    marked = [r for r in strong if r.id in untestable]
    if marked:
        cats = {}
        for r in marked:
            cats.setdefault(untestable[r.id][0], []).append(r.id)
        print('  untestable by reason: ' + ', '.join(
            '%s %d' % (k, len(cats[k])) for k in sorted(cats)), file=out)
    both = sorted(r.id for r in rows if r.id in untestable and r.id in cited)
    if both:
        print('  note: marked untestable but cited by a test: '
              + ', '.join(both), file=out)
    if uncovered:
        todo = [r for r in strong if r.id not in covered
                and r.id not in untestable]
        print('', file=out)
        print('UNCOVERED testable server MUST/MUST NOT requirements: %d'
              % len(todo), file=out)
        for r in todo:
            print('  %-18s %-8s %-40s %s' % (r.id, r.level,
                                             clip(r.section, 40), r.summary),
                  file=out)
        print('', file=out)
        print('UNTESTABLE server MUST/MUST NOT requirements: %d'
              % len(marked), file=out)
        for r in marked:
            cat, why, _ = untestable[r.id]
            print('  %-18s %-8s %s: %s' % (r.id, r.level, cat, clip(why, 110)),
                  file=out)


def print_coverage(rows, section_order, uncovered, top, out,
                   untestable=None):
    files = test_files(top)
    cited = cited_ids(top, files)
    ids = {r.id for r in rows}
    print('COVERAGE: %d requirement IDs, %d test source files scanned (%s)'
          % (len(rows), len(files), ', '.join(TEST_DIRS)), file=out)
    covered = {r.id for r in rows if r.id in cited}
    print('  cited by at least one test: %d of %d (%s)'
          % (len(covered), len(rows), pct(len(covered), len(rows)).strip()),
          file=out)

    def table(title, keyfn, order):
        groups = {}
        for r in rows:
            groups.setdefault(keyfn(r), []).append(r)
        keys = [k for k in order if k in groups]
        keys += sorted(k for k in groups if k not in keys)
        width = max([len(title)] + [len(k) for k in keys])
        print('  %-*s %6s %6s %5s' % (width, title, 'IDs', 'cited', ''),
              file=out)
        for k in keys:
            g = groups[k]
            c = sum(1 for r in g if r.id in covered)
            print('  %-*s %6d %6d %5s' % (width, k, len(g), c,
                                          pct(c, len(g))), file=out)

    print('', file=out)
    table('by section', lambda r: section_head(r.section), section_order)
    print('', file=out)
    table('by level', lambda r: r.level, LEVELS)
    print('', file=out)
    table('by role', lambda r: r.role, ROLES)
    # Tokens shaped like IDs (AREA-N, AREA-SUB-N) that are not in the
    # catalogue: likely typos or IDs of another scheme.  Two-part tokens
    # with an unknown area (UTF-8, SHA-256) are not IDs.
    areas = {x.id.split('-')[0] for x in rows}
    unknown = sorted(i for i in cited if i not in ids and
                     ID_FORMAT_RE.match(i) and
                     (i.split('-')[0] in areas or i.count('-') >= 2))
    if unknown:
        print('', file=out)
        print('WARNING: tests cite IDs that are not in the catalogue:',
              file=out)
        for i in unknown:
            print('  %s (%s)' % (i, ', '.join(sorted(cited[i]))), file=out)
    print_server_coverage(rows, covered, untestable or {}, cited, uncovered,
                          out)


# ---------------------------------------------------------------------------

def shown(path):
    """A path as printed: relative to the current directory if inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith('..') else rel


def print_errors(errors, out):
    for what, msg in errors:
        print('  %s: %s' % (what, msg), file=out)


def main(argv):
    ap = argparse.ArgumentParser(
        description='Check specs/requirements.tsv against copies of the NBD '
        'protocol text, then report which requirement IDs the tests cite.')
    ap.add_argument('docs', nargs='*', metavar='PROTO.md',
                    help='protocol text to check; its kind (master or '
                    'ext-header) is detected (default: %s)' % DEFAULT_PROTO)
    ap.add_argument('--doc', action='append', default=[],
                    metavar='KIND=PATH',
                    help='a protocol text with its kind given: '
                    'master=PATH or ext-header=PATH')
    ap.add_argument('--catalog', default=DEFAULT_CATALOG, metavar='TSV',
                    help='the catalogue (default: specs/requirements.tsv)')
    ap.add_argument('--resize', default=DEFAULT_RESIZE, metavar='MD',
                    help='the draft RESIZE text with [RZ-...] tags '
                    '(default: specs/resize.md, if it exists)')
    ap.add_argument('--untestable', default=DEFAULT_UNTESTABLE, metavar='TSV',
                    help='requirements no client can test, with reasons '
                    '(default: specs/untestable.tsv, if it exists)')
    ap.add_argument('--no-resize', action='store_true',
                    help='do not read the RESIZE draft')
    ap.add_argument('--uncovered', action='store_true',
                    help='list the testable server-side MUST/MUST NOT IDs '
                    'no test cites, and the untestable ones with reasons')
    ap.add_argument('--no-coverage', action='store_true',
                    help='check the catalogue only')
    ap.add_argument('--tests-root', default=TOP, metavar='DIR',
                    help='where to look for %s (default: this checkout)'
                    % ', '.join(TEST_DIRS))
    ap.add_argument('--sentences', action='store_true',
                    help='list every normative sentence with its rows')
    ap.add_argument('-v', '--verbose', action='store_true',
                    help='also print notes (rows found under a section '
                    'renamed by the other document)')
    args = ap.parse_args(argv)
    out = sys.stdout

    docs = [(None, path) for path in args.docs]
    for spec in args.doc:
        kind, sep, path = spec.partition('=')
        if not sep or kind not in DOC_KINDS:
            raise Broken('--doc wants KIND=PATH with KIND one of %s'
                         % ', '.join(DOC_KINDS))
        docs.append((kind, path))
    if not docs:
        docs.append((None, DEFAULT_PROTO))

    rows = read_catalog(args.catalog)
    all_errors = []
    notes = []
    section_order = []
    kinds = set()
    for kind, path in docs:
        sentences = read_sentences(path)
        if kind is None:
            kind = doc_kind(path, sentences)
        kinds.add(kind)
        for s in sentences:
            head = section_head(s.section)
            if s.keywords and head not in section_order:
                section_order.append(head)
        errors = []
        normative = check_doc(path, kind, sentences, rows, errors, notes)
        nrows = [r for r in rows if expected_in(r, kind)]
        print('TRACE %s (%s): %d normative sentences, %d catalogue rows'
              % (path, kind, len(normative), len(nrows)), file=out)
        counts = {}
        for s in normative:
            for k in s.keywords:
                counts[KEYWORD_LEVEL[k]] = counts.get(KEYWORD_LEVEL[k], 0) + 1
        print('  key words: ' + ', '.join('%s %d' % (lv, counts.get(lv, 0))
                                          for lv in LEVELS), file=out)
        rcounts = {}
        for r in nrows:
            rcounts[r.level] = rcounts.get(r.level, 0) + 1
        print('  rows:      ' + ', '.join('%s %d' % (lv, rcounts.get(lv, 0))
                                          for lv in LEVELS), file=out)
        if args.sentences:
            for s in normative:
                print('  %s:%d [%s] %s <- %s' % (
                    path, s.line, s.section, clip(s.norm, 100),
                    ', '.join(r.id for r in s.rows) or '-'), file=out)
        print_errors(errors, out)
        all_errors += errors

    # The RZ-* IDs of the project's draft.  They may also be in the TSV
    # (appended from resize.md by tooling); the TSV must then agree.
    resize_path = None
    if not args.no_resize and (os.path.exists(args.resize)
                               or args.resize != DEFAULT_RESIZE):
        resize_path = shown(args.resize)
    if resize_path:
        rz_rows, untagged, rz_notes = read_resize(resize_path)
        notes += rz_notes
        errors = []
        md_ids = {r.id for r in rz_rows}
        tsv_rz = {r.id for r in rows if r.source == 'resize'}
        for r in rows:
            if r.source == 'resize' and r.id not in md_ids:
                errors.append(('STALE', '%s (%s) is not tagged in %s'
                               % (r.id, r.where, resize_path)))
        for s in untagged:
            errors.append(('UNCATALOGUED', '%s:%d: [%s] %s: no [RZ-...] tag: '
                           '%s' % (s.path, s.line, s.section,
                                   '/'.join(s.levels), clip(s.norm, 400))))
        rows = rows + [r for r in rz_rows if r.id not in tsv_rz]
        for r in rz_rows:
            if r.section not in section_order:
                section_order.append(r.section)
        print('TRACE %s (resize): %d RZ IDs' % (resize_path, len(rz_rows)),
              file=out)
        rcounts = {}
        for r in rz_rows:
            rcounts[r.level] = rcounts.get(r.level, 0) + 1
        print('  rows:      ' + ', '.join('%s %d' % (lv, rcounts.get(lv, 0))
                                          for lv in LEVELS), file=out)
        print_errors(errors, out)
        all_errors += errors
    if args.verbose:
        for n in notes:
            print('  note: %s' % n, file=out)

    print('', file=out)
    if all_errors:
        by = {}
        for w, _ in all_errors:
            by[w] = by.get(w, 0) + 1
        print('RESULT: FAIL (%s)' % ', '.join(
            '%d %s' % (by[w], w.lower()) for w in sorted(by)), file=out)
    else:
        print('RESULT: OK (every normative sentence is catalogued and every '
              'row found)', file=out)
    if not args.no_coverage:
        untestable = {}
        if os.path.exists(args.untestable) or \
                args.untestable != DEFAULT_UNTESTABLE:
            untestable = read_untestable(args.untestable)
            known = {r.id for r in rows}
            bad = sorted('%s: %s is not a requirement ID of the catalogue '
                         'or of %s' % (v[2], k, resize_path or 'resize.md')
                         for k, v in untestable.items() if k not in known
                         and (resize_path or not k.startswith('RZ-')))
            if bad:
                raise Broken('\n  '.join(['untestable list:'] + bad))
        cover = [r for r in rows if r.source == 'resize'
                 or any(expected_in(r, k) for k in kinds)]
        print('', file=out)
        print_coverage(cover, section_order, args.uncovered, args.tests_root,
                       out, untestable)
    return 1 if all_errors else 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except Broken as e:
        print('trace: error: %s' % e, file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(2)
