"""Find FAQ questions and exam questions in a section, so each becomes one chunk.

The chunker asks two things of this module:

* ``question_headings``: which sections are headed by a question ("How do I ...?",
  "5.15.5 How long must ...?", "## 年假可以跨年使用吗？"). Such a section's body is the
  answer, and the whole section becomes one FAQ unit.
* ``units``: how one section's body divides into units. Inside a section, questions
  are found line by line (PDF paragraph blocks often hold several questions, and one
  question may span blocks and pages):

  - FAQ lines: ``Q:``/``Q1.``/``Question:``/``问：``/``***Q***:`` lines, and lines that are
    a bold question alone (``**How do I reset my password?**``). Each runs up to the
    next such line.
  - Exam questions: a run of items numbered 1, 2, 3 ... in one style (``1.``, ``1、``,
    ``（1）``, ``第1题``, ``例1``), each running up to the next item, a part header
    ("二、选择题（每题 3 分）") or the end of the section. A run counts only when it is
    clearly an exam: it follows an exam part header or sits under an exam heading, or
    at least half of its items (and two or more) have options A/B... or an answer or
    explanation line. Items numbered in another style inside a run ("(1)" sub-questions
    of "1.") stay inside their item.

The chunker also asks ``looks_like_man_page`` of the whole document (see below); in a
man page converted to Markdown, ``units`` further divides a section into its options:

  - Man-page options: a line that is an option term alone (``**-A** *NUM*, **--after-
    context=***NUM*``, ``*KillUserProcesses=*``; only option names, their arguments and
    separators, in any inline markup) followed by its description: a block of its own
    followed by a paragraph, quote or indented block, or the first line of a paragraph
    that ends in a hard line break (or whose next line is indented or a ``:``
    definition). Each option runs up to the next option term or, when its description
    is indented (a quote or indented code), up to the first ordinary paragraph after
    it. It takes two or more options in a section. The option term, as plain text,
    is the unit's ``part``: it names the passage in the heading path.

A block a parser marked as a record (``BlockHint.kind``, e.g. a spreadsheet row) is one
unit of that kind whatever its text looks like.

``attach_answer_key`` (used by the Word parser before chunking; generic over blocks) moves
an answer key at the end of an exam paper ("参考答案 1.B 2.C") into its questions.

Units never drop, reorder or add text: a section's units, read in order, are its blocks
(a block cut between two units becomes two blocks of the same kind and page).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise

from markdown_it import MarkdownIt

from app.text.inline import inline_text
from app.text.titles import man_page_title
from ingest.types import Block, BlockKind, ChunkKind

# Longest question text kept; a stem that runs on (an exam item without options) is cut.
_MAX_QUESTION_CHARS = 300

# What may come before a marker on a line: indentation, Markdown quote markers, a bullet.
_LEAD = r"^[\s>]*(?:[-*+•]\s+)?"
# Markdown emphasis around a marker or a whole line: *, **, ***, _, __.
_EMPH = r"[*_]{0,3}"

# A question's own marker at the start of a line or heading: "Q:", "Q1.", "***Q***:",
# "**Q:**", "Question 2:", "问：", "问:", "问题：". The "Q" must stand alone ("Quick:" is not).
_Q_MARKER = re.compile(
    _LEAD
    + _EMPH
    + r"(?:Q(?:uestion)?\s*\d{0,3}|问题?\s*\d{0,3})"
    + _EMPH
    + r"\s*[:：.．)）]"
    + _EMPH
    + r"\s*",
    re.IGNORECASE,
)
# The matching answer marker, only used to confirm that Q lines are a Q/A list.
_A_MARKER = re.compile(
    _LEAD + _EMPH + r"(?:A(?:nswer)?\s*\d{0,3}|答|回答|解答)" + _EMPH + r"\s*[:：.．)）]",
    re.IGNORECASE,
)
# A line that is a bold run alone: "**How do I reset my password?**", "__Why?__".
_BOLD_LINE = re.compile(_LEAD + r"(\*{2,3}|_{2,3})(?P<inner>[^*_].*?)\1\s*[:：]?\s*$")

# Question endings that need no context: a question mark, or Chinese 吗/呢 (+ mark).
_STRONG_END = re.compile(r"(?:[?？]|[吗呢嘛][?？。]?)\s*$")
# Openings and endings that usually make a question, but also start ordinary headings
# ("How it works", "Do not edit"); they count only among other questions or under an
# FAQ heading. English words whole, Chinese ones as prefixes.
_WEAK_START = re.compile(
    r"^(?:(?:how|what|why|when|where|who|whom|whose|which|can|could|should|shall|is|are|"
    r"am|do|does|did|will|would|may|might|must|has|have|was|were)\b|"
    r"如何|怎么|怎样|为什么|为何|什么|哪|谁|是否|能否|可否|能不能|是不是|有没有|可不可以)",
    re.IGNORECASE,
)
_WEAK_END = re.compile(r"(?:多远|多少|多久|多大|多长|几[个次天年]?|什么|哪[里儿些个])\s*$")
# Headings that make their sub-headings an FAQ.
_FAQ_CONTEXT = re.compile(
    r"\bFAQs?\b|frequently asked|\bQ\s*&\s*A\b|常见问题|问答|答疑|问题解答|疑难解答", re.IGNORECASE
)
# Section numbering in front of a heading's words: "5.15.5 ", "3) ", "第二章 ", "一、".
_HEADING_NUMBER = re.compile(
    r"^\s*(?:\d+(?:\.\d+)*[.)．、]?|[（(]\d+[)）]|第[\d一二三四五六七八九十百]+[章节条题部分]+"
    r"|[一二三四五六七八九十]+[、．.])\s*"
)

# An exam part header: "一、选择题（每题 3 分）", "第二部分", "Part II", "Section B".
# Digits after "Section" are left out: "Section 3 describes ..." is prose.
_PART = re.compile(
    r"^\s*(?:[一二三四五六七八九十]{1,3}\s*[、．.]|第[一二三四五六七八九十\d]{1,3}部分"
    r"|(?:Part|Section)\s+(?:[IVX]{1,4}|[A-H])\b"
    r"|Part\s+\d{1,2}\b)"
)
# A part header or heading that names a kind of exam question, and nothing else but its
# numbering and points: "一、选择题（每题 3 分）", "第二部分 阅读理解题", "Part II: Multiple
# Choice (20 points)", "Exercises". "选择题相关" or "选择题示例" (about questions) is not,
# nor a bare "Questions" (a README's "## Questions" lists ways to get help).
_EXAM_HEADER = re.compile(
    r"^\s*(?:[一二三四五六七八九十]{1,3}\s*[、．.]|第[一二三四五六七八九十\d]{1,3}(?:部分|大题)"
    r"|(?:Part|Section)\s+(?:[IVX]{1,4}|[A-H]|\d{1,2})\s*[:：.．-]?|\d{1,2}\s*[.．、])?\s*"
    r"(?:[单多不定]*项?[选择填空判断解答计算证明简答问答应用论述综合分析作图阅读改错翻译]{1,4}题"
    r"|习题|练习题?|试题|考题|测验题?"
    r"|(?:multiple[- ]choice|true[- /]or[- /]false|fill[- ]in[- ]the[- ]blanks?|short[- ]answer)"
    r"(?:\s+questions?)?|(?:essay|review|practice|exam(?:ination)?|quiz|test)\s+questions?"
    r"|exercises?|quiz(?:zes)?)"
    r"\s*(?:[（(][^）)]*[)）])?\s*[:：.．]?\s*$",
    re.IGNORECASE,
)

# Numbered exam items by style. The number may be wrapped in emphasis ("**1.**").
# "1." must not be a decimal ("3.14 is ...").
_ITEM_STYLES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dot", re.compile(_LEAD + _EMPH + r"(\d{1,3})\s*[.．]" + _EMPH + r"(?!\d)\s*")),
    ("comma", re.compile(_LEAD + _EMPH + r"(\d{1,3})\s*、" + _EMPH + r"\s*")),
    ("paren", re.compile(_LEAD + r"[（(]\s*(\d{1,3})\s*[)）]\s*")),
    ("close", re.compile(_LEAD + r"(\d{1,3})\s*[)）]\s*")),
    ("ti", re.compile(r"^\s*第\s*([\d一二三四五六七八九十]{1,4})\s*题[.．:：、]?\s*")),
    ("li", re.compile(r"^\s*例\s*(\d{1,3})(?!\d)[.．:：、]?\s*")),
)
# An option marker: "A." "B、" "C．" "(D)" "（A）", at a line start or after a space
# (options often share a line: "A. 0 B. 1 C. 2 D. 3"). "A.5" is a number, not an option.
_OPTION = re.compile(r"(?:^|(?<=\s))(?:[（(]([A-H])[)）]|([A-H])\s*[.．、](?!\d))")
_OPTION_LINE = re.compile(_LEAD + r"(?:[（(][A-H][)）]|[A-H]\s*[.．、](?!\d))")
# Options A and B inside a line of text (after the stem, on the stem's line).
_INLINE_OPTIONS = re.compile(
    r"\s(?:[（(]A[)）]|A\s*[.．、](?!\d)).*?\s(?:[（(]B[)）]|B\s*[.．、](?!\d))"
)
# Option A inside the stem's line, when option B and on follow on their own lines.
_FIRST_OPTION = re.compile(r"\s(?:[（(]A[)）]|A\s*[.．、](?!\d))")
# An answer or explanation line: "答案：", "【解析】", "Answer:", "正确答案", "解." (a
# worked solution), "证." (a proof), "Explanation:".
_ANSWER = re.compile(
    _LEAD
    + _EMPH
    + r"(?:【\s*(?:答案|解析|解答|分析|详解|点评|答)\s*】|(?:正确答案|参考答案|标准答案)"
    r"|(?:答案|解析|解答|分析|详解|Answers?|Explanation|Solution)\s*" + _EMPH + r"\s*[:：]"
    r"|[解证答]\s*[.．:：]|(?:Proof|Solution)\s*[.:])",
    re.IGNORECASE,
)
# The same inside a line (PDF text joined into long lines): Chinese "解."/"证." after a
# sentence end, bracketed or colon-marked Chinese markers anywhere. English words need
# a line start ("Solution:" inside a sentence is too common).
_ANSWER_INLINE = re.compile(
    r"(?<=[。．.？?！!；;）)])\s*[解证]\s*[.．:：]"
    r"|【\s*(?:答案|解析|解答|分析|详解|点评)\s*】|(?:正确答案|参考答案|答案|解析)\s*[:：]"
)
# An answer filled into the stem's brackets: "... 正确的结果是 ( C )".
_ANSWER_BRACKET = re.compile(r"[（(]\s*[A-H]\s*[)）]\s*[.。．]?\s*$")
# Dot leaders between a stem and its answer bracket ("· · · · ·( C )", ".......").
_LEADERS = re.compile(r"\s*(?:[·.…]\s*){4,}")
_CJK_CHAR = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")
_EMPHASIS = re.compile(r"\*{1,3}|(?<!\w)_{1,3}|_{1,3}(?!\w)")
_SPACES = re.compile(r"\s+")
# Private-use code points: pieces of big brackets and braces in PDF math fonts.
_PRIVATE_USE = re.compile(r"[\ue000-\uf8ff]")

_CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")}

# Man-page option terms (as plain text): option names ("-A", "--after-context",
# "KillUserProcesses="), each with an attached value ("=NUM", "[=WHEN]") and up to two
# argument words ("-A NUM", "-o <file>"), separated by commas or bars.
_OPTION_NAME = r"(?:--?[A-Za-z0-9?#@][\w.+#@?-]*|[A-Za-z_][\w.:-]*=)[^\s,|]*"
_OPTION_ARG = r"(?:\s+[^\s,|;:!?]{1,24})"
_OPTION_TERM = re.compile(
    rf"^{_OPTION_NAME}{_OPTION_ARG}{{0,2}}(?:\s*[,|]\s*{_OPTION_NAME}{_OPTION_ARG}{{0,2}})*$"
)
_MAX_TERM_SOURCE_CHARS = 300
_MAX_TERM_CHARS = 160
# Hyphens groff and converters write for "-": U+2010, U+2011, U+2012, U+2212, U+FE63, U+FF0D.
_OPTION_DASHES = re.compile(r"[\u2010-\u2012\u2212\ufe63\uff0d]")
# "- -after-context": two hyphens parted by a thin, hair or zero-width space.
_SPLIT_DOUBLE_DASH = re.compile(r"(?<![\w-])-[\u2006\u2009\u200a\u200b\u202f]-(?=\w)")
# A description line after a term in the same paragraph: indented or a definition.
_DEFINITION_LINE = re.compile(r"^(?: {2,}|\t|:\s)")
# Blocks that can hold an option's description, and those that are indented.
_DESCRIPTION_KINDS = (BlockKind.PARAGRAPH, BlockKind.QUOTE, BlockKind.CODE, BlockKind.LIST)
_INDENTED_KINDS = (BlockKind.QUOTE, BlockKind.CODE)


@dataclass(frozen=True, slots=True)
class Unit:
    """A run of a section's blocks that is chunked on its own.

    ``part`` is an exam part header found in the text ("二、选择题（每题 3 分）") or a man
    page's option term ("-A NUM, --after-context=NUM") that heads this unit; the chunker
    adds it to the heading path. ``option`` marks a man page's option: its first line
    (the term) is never packed into a chunk alone.
    """

    kind: ChunkKind
    blocks: tuple[Block, ...]
    question: str | None = None
    part: str | None = None
    option: bool = False


@dataclass(frozen=True, slots=True)
class _Line:
    block: int  # index of its block in the section body
    index: int  # line number inside that block
    text: str
    scan: bool  # may start a unit (not a line of code or a table)
    page: int | None


@dataclass(slots=True)
class _Run:
    style: str
    number: int
    items: list[int]  # line index of each item's first line
    part: int | None  # line index of the part header before it
    end: int = 0


# ---------------------------------------------------------------- headings


def question_headings(paths: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """Which section paths end in a question heading, with the question text.

    A heading ending in ?/？/吗 or starting with a Q marker always counts. One that only
    opens like a question ("How to ...", "什么是 ...") counts under an FAQ heading, or
    when at least three of its siblings, and half of them, look like questions.
    """
    siblings: dict[tuple[str, ...], set[str]] = {}
    for path in paths:
        if path:
            siblings.setdefault(path[:-1], set()).add(path[-1])
    looks_like = {
        parent: sum(_heading_strength(h) > 0 for h in heads) for parent, heads in siblings.items()
    }
    found: dict[tuple[str, ...], str] = {}
    for path in paths:
        if not path or path in found:
            continue
        strength = _heading_strength(path[-1])
        parent = path[:-1]
        weak_ok = any(_FAQ_CONTEXT.search(h) for h in parent) or (
            looks_like[parent] >= 3 and 2 * looks_like[parent] >= len(siblings[parent])
        )
        if strength == 2 or (strength == 1 and weak_ok):
            found[path] = _clean(_strip_heading_marks(path[-1]))
    return found


def _heading_strength(heading: str) -> int:
    """2: surely a question; 1: opens or ends like one; 0: not a question."""
    if _Q_MARKER.match(heading):
        return 2
    words = _strip_heading_marks(heading)
    if _STRONG_END.search(words):
        return 2
    if _WEAK_START.match(words) or _WEAK_END.search(words):
        return 1
    return 0


def _strip_heading_marks(heading: str) -> str:
    """The heading's words without a Q marker or section number in front."""
    m = _Q_MARKER.match(heading)
    if m:
        return heading[m.end() :].strip()
    return _HEADING_NUMBER.sub("", heading, count=1).strip()


# ---------------------------------------------------------------- sections


def units(
    path: tuple[str, ...],
    blocks: Sequence[Block],
    question: str | None = None,
    *,
    man_page: bool = False,
) -> list[Unit]:
    """Divide one section's body into units (one, of kind SECTION, when nothing is found).

    ``question`` is the section's heading as a question (see ``question_headings``): the
    whole body is then its answer, one unit. ``man_page`` (see ``looks_like_man_page``)
    looks for option lists first.
    """
    body = tuple(blocks)
    if any(b.hint is not None and b.hint.kind is not None for b in body):
        return _record_units(path, body, question, man_page=man_page)
    lines = _lines(body)
    if question is not None:
        return [Unit(_faq_or_exam(lines, 0, len(lines)), body, question)]
    found = _option_units(body, lines) if man_page else []
    found = found or _faq_units(path, body, lines) or _exam_units(path, body, lines)
    return found or [Unit(ChunkKind.SECTION, body)]


def _record_units(
    path: tuple[str, ...], body: tuple[Block, ...], question: str | None, *, man_page: bool
) -> list[Unit]:
    """A block a parser marked as a record (``BlockHint.kind``: a spreadsheet row) is one
    unit of that kind; the blocks between records are divided as usual."""
    out: list[Unit] = []
    run: list[Block] = []
    for block in body:
        hint = block.hint
        if hint is None or hint.kind is None:
            run.append(block)
            continue
        if run:
            out.extend(units(path, run, question, man_page=man_page))
            run = []
        q = _clean(hint.question) if hint.question else None
        out.append(Unit(hint.kind, (block,), q or None))
    if run:
        out.extend(units(path, run, question, man_page=man_page))
    return out


def _lines(blocks: Sequence[Block]) -> list[_Line]:
    out: list[_Line] = []
    for b, block in enumerate(blocks):
        scan = block.kind not in (BlockKind.CODE, BlockKind.TABLE)
        for i, text in enumerate(block.text.splitlines(keepends=True)):
            out.append(_Line(b, i, text, scan, block.page))
    return out


def _cut(
    blocks: Sequence[Block], lines: Sequence[_Line], start: int, end: int
) -> tuple[Block, ...]:
    """The blocks holding lines[start:end]; a block cut there keeps its kind and page."""
    out: list[Block] = []
    i = start
    while i < end:
        b = lines[i].block
        j = i
        while j < end and lines[j].block == b:
            j += 1
        block = blocks[b]
        whole = lines[i].index == 0 and (j == len(lines) or lines[j].block != b)
        if whole:
            out.append(block)
        else:
            text = "".join(line.text for line in lines[i:j])
            if text.strip():
                out.append(replace(block, text=_strip_blank_lines(text)))
        i = j
    return tuple(out)


def _strip_blank_lines(text: str) -> str:
    """Drop blank lines at both ends and trailing space; keep the first line's indent."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def _split(
    blocks: Sequence[Block],
    lines: Sequence[_Line],
    spans: Sequence[tuple[int, int, ChunkKind, str | None, str | None]],
) -> list[Unit]:
    """Units from (start, end, kind, question, part) spans; gaps become SECTION units."""
    out: list[Unit] = []

    def add(start: int, end: int, kind: ChunkKind, q: str | None, part: str | None) -> None:
        cut = _cut(blocks, lines, start, end)
        if cut:
            out.append(Unit(kind, cut, q, part))

    pos = 0
    for start, end, kind, q, part in spans:
        if start > pos:
            add(pos, start, ChunkKind.SECTION, None, None)
        add(start, end, kind, q, part)
        pos = end
    if pos < len(lines):
        add(pos, len(lines), ChunkKind.SECTION, None, None)
    return out


# ---------------------------------------------------------------- man-page options


def looks_like_man_page(blocks: Sequence[Block]) -> bool:
    """Whether a parsed document is a man page, by the test that titles it "find(1)"
    (``app.text.titles.man_page_title``): its first heading is NAME (or 名称) and the
    paragraph after it reads like "find - search for files"."""
    first = next((i for i, b in enumerate(blocks) if b.kind is BlockKind.HEADING), None)
    if first is None:
        return False
    paragraph = next((b.text for b in blocks[first + 1 :] if b.kind is not BlockKind.HEADING), None)
    return man_page_title("", blocks[first].text, paragraph) is not None


def option_term(line: str) -> str | None:
    """The plain text of a line that is an option term alone, else None.

    "**-A** *NUM*, **--after-context=***NUM*  " -> "-A NUM, --after-context=NUM";
    "*KillOnlyUsers=*, *KillExcludeUsers=*" -> "KillOnlyUsers=, KillExcludeUsers=".
    A hard line break at the end and a colon after the term are dropped.
    """
    source = line.strip().removesuffix("\\").strip()
    if not source or len(source) > _MAX_TERM_SOURCE_CHARS:
        return None
    inline = _inline_parser().parseInline(source)
    text = inline_text(inline[0]) if inline else source
    # Stray emphasis marks the converter left unbalanced ("** --include=**PATTERN").
    text = text.replace("*", "")
    # groff's hyphens and minus signs; "- -after-context" with a hair space between.
    text = _OPTION_DASHES.sub("-", text)
    text = _SPLIT_DOUBLE_DASH.sub("--", text)
    text = _SPACES.sub(" ", text).strip().rstrip(":：").rstrip()
    if len(text) > _MAX_TERM_CHARS or _CJK_CHAR.search(text) or not _OPTION_TERM.match(text):
        return None
    return text


@lru_cache(maxsize=1)
def _inline_parser() -> MarkdownIt:
    return MarkdownIt("commonmark")


def _option_units(blocks: Sequence[Block], lines: Sequence[_Line]) -> list[Unit]:
    """Each option term with its description, one SECTION unit named by the term."""
    terms: list[tuple[int, str]] = []  # (line index, term)
    last = -2  # line of the last term seen
    for i in range(len(lines)):
        term = _term_at(blocks, lines, i)
        if term is None:
            continue
        if terms and i == last + 1:
            # "-R" then "-r" then one description: one option with both names.
            terms[-1] = (terms[-1][0], f"{terms[-1][1]}, {term}")
        else:
            terms.append((i, term))
        last = i
    if len(terms) < 2:
        return []
    spans: list[tuple[int, int, ChunkKind, str | None, str | None]] = []
    for k, (start, term) in enumerate(terms):
        end = terms[k + 1][0] if k + 1 < len(terms) else len(lines)
        spans.append((start, _option_end(blocks, lines, start, end), ChunkKind.SECTION, None, term))
    # The units between options (text before the first one) have no part.
    return [replace(u, option=u.part is not None) for u in _split(blocks, lines, spans)]


def _term_at(blocks: Sequence[Block], lines: Sequence[_Line], i: int) -> str | None:
    """The option term that line ``i`` is, when it starts a paragraph and a description."""
    line = lines[i]
    block = blocks[line.block]
    if not line.scan or line.index != 0 or block.kind is not BlockKind.PARAGRAPH:
        return None
    nxt = lines[i + 1] if i + 1 < len(lines) else None
    if nxt is None:
        return None  # a term with no description
    if nxt.block == line.block:
        # Term and description in one paragraph: a hard break ends the term's line, or
        # the description is indented or a definition (": ...").
        hard_break = line.text.rstrip("\n").endswith(("  ", "\\"))
        if not (hard_break or _DEFINITION_LINE.match(nxt.text)):
            return None
    elif blocks[nxt.block].kind not in _DESCRIPTION_KINDS:
        return None
    return option_term(line.text)


def _option_end(blocks: Sequence[Block], lines: Sequence[_Line], start: int, end: int) -> int:
    """Where an option's description ends: at ``end`` (the next term), or, when it is
    indented (quotes, indented code), at the first ordinary paragraph after it."""
    term_block = lines[start].block
    first = next((j for j in range(start + 1, end) if lines[j].block != term_block), end)
    if first == end or blocks[lines[first].block].kind not in _INDENTED_KINDS:
        return end
    for j in range(first, end):
        if blocks[lines[j].block].kind not in (*_INDENTED_KINDS, BlockKind.LIST):
            return j
    return end


# ---------------------------------------------------------------- FAQ lines


def _faq_units(
    path: tuple[str, ...], blocks: Sequence[Block], lines: Sequence[_Line]
) -> list[Unit]:
    """Q:/A:, 问/答 and bold-question lines, each question up to the next one."""
    starts: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if not line.scan:
            continue
        q = _faq_question(line.text)
        if q is not None:
            starts.append((i, q))
    if not starts:
        return []
    answered = any(_A_MARKER.match(line.text) for line in lines[starts[0][0] + 1 :])
    in_faq = any(_FAQ_CONTEXT.search(h) for h in path)
    if not (len(starts) >= 2 or answered or in_faq):
        return []
    spans: list[tuple[int, int, ChunkKind, str | None, str | None]] = []
    for k, (i, q) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        if not q:  # "Q:" alone on its line: the question is on the next one
            q = _next_words(lines, i + 1, end)
        spans.append((i, end, _faq_or_exam(lines, i, end), q or None, None))
    return _split(blocks, lines, spans)


def _faq_question(text: str) -> str | None:
    """The question a line opens (may be "" when it is on the next line), or None."""
    m = _Q_MARKER.match(text)
    if m:
        return _clean(text[m.end() :])
    m = _BOLD_LINE.match(text)
    if m:
        inner = m.group("inner").strip()
        q = _Q_MARKER.match(inner)
        if q:
            return _clean(inner[q.end() :])
        if _STRONG_END.search(inner):
            return _clean(inner)
    return None


def _next_words(lines: Sequence[_Line], start: int, end: int) -> str:
    for line in lines[start:end]:
        if line.text.strip() and not _A_MARKER.match(line.text):
            return _clean(line.text)
    return ""


# ---------------------------------------------------------------- exam questions


def _exam_units(
    path: tuple[str, ...], blocks: Sequence[Block], lines: Sequence[_Line]
) -> list[Unit]:
    """Runs of numbered exam items, each item one QUESTION unit."""
    under_exam = bool(path) and bool(_EXAM_HEADER.match(path[-1]))
    spans: list[tuple[int, int, ChunkKind, str | None, str | None]] = []
    for run in _runs(lines):
        part = lines[run.part].text.strip() if run.part is not None else None
        if not _is_exam(run, lines, under_exam or bool(part and _EXAM_HEADER.match(part))):
            continue
        if run.part is not None and part is not None:
            spans.append((run.part, run.items[0], ChunkKind.SECTION, None, part))
        bounds = [*run.items, run.end]
        for start, end in pairwise(bounds):
            spans.append((start, end, ChunkKind.QUESTION, _stem(lines, start, end) or None, part))
    return _split(blocks, lines, spans) if spans else []


def _runs(lines: Sequence[_Line]) -> Iterator[_Run]:
    """Runs of items numbered n, n+1, ... in one style, cut at part headers.

    Inside a run, an item of another style is a sub-question and stays in its item, and
    one of the same style out of sequence is text (a wrapped line that happens to start
    with "6."); only a new "1" ends the run and starts the next.
    """
    run: _Run | None = None
    part: int | None = None
    for i, line in enumerate(lines):
        if not line.scan:
            continue
        if _PART.match(line.text):
            if run is not None:
                run.end = i
                yield run
            run, part = None, i
            continue
        item = _item(line.text)
        if item is None:
            continue
        style, number, _ = item
        if run is not None:
            if style != run.style:
                continue
            if number == run.number + 1:
                run.items.append(i)
                run.number = number
                continue
            if number != 1:
                continue  # "6. ······6分", a wrapped formula's "3 ．": not a new question
            run.end = i
            yield run
        run, part = _Run(style, number, [i], part), None
    if run is not None:
        run.end = len(lines)
        yield run


def _item(text: str) -> tuple[str, int, int] | None:
    """(style, number, end of the number marker) when the line opens a numbered item."""
    for style, pattern in _ITEM_STYLES:
        m = pattern.match(text)
        if m:
            return style, _number(m.group(1)), m.end()
    return None


def _number(digits: str) -> int:
    """'12' -> 12, '十二' -> 12, '二十' -> 20, '三' -> 3."""
    if digits.isdigit():
        return int(digits)
    tens, _, ones = digits.rpartition("十")
    if "十" not in digits:
        return _CN_DIGITS.get(digits, 0)
    return (_CN_DIGITS.get(tens, 0) if tens else 1) * 10 + _CN_DIGITS.get(ones, 0)


def _is_exam(run: _Run, lines: Sequence[_Line], in_exam_part: bool) -> bool:
    """At least two items, and an exam context or answers/options in half of them."""
    n = len(run.items)
    if n < 2:
        return False
    if in_exam_part:
        return True
    bounds = [*run.items, run.end]
    evidence = sum(_has_exam_evidence(lines, a, b) for a, b in pairwise(bounds))
    return evidence >= 2 and 2 * evidence >= n


def _has_exam_evidence(
    lines: Sequence[_Line], start: int, end: int, *, answers: bool = True
) -> bool:
    """Options A and B, or (with ``answers``) an answer/explanation line or bracket."""
    letters: set[str] = set()
    for i in range(start, end):
        text = lines[i].text
        if answers and (
            _ANSWER.match(text) or _ANSWER_INLINE.search(text) or _ANSWER_BRACKET.search(text)
        ):
            return True
        # Option lines, and the item's own line: "...正确的是 ( C ) (A) 甲" puts A there.
        if i == start or _OPTION_LINE.match(text):
            letters.update(a or b for a, b in _OPTION.findall(text))
    return {"A", "B"} <= letters


def _faq_or_exam(lines: Sequence[_Line], start: int, end: int) -> ChunkKind:
    """A question with options A, B ... is an exam's ("Q1. ... A. ... B. ..."), else FAQ.

    Answer markers alone don't decide: an FAQ has answers too ("A:", "答：").
    """
    has_options = _has_exam_evidence(lines, start, end, answers=False)
    return ChunkKind.QUESTION if has_options else ChunkKind.FAQ


def _stem(lines: Sequence[_Line], start: int, end: int) -> str:
    """The item's words before its options, answer or sub-questions, without its number."""
    first = lines[start].text
    item = _item(first)
    parts = [first[item[2] :] if item else first]
    options_follow = False
    for line in lines[start + 1 : end]:
        text = line.text
        if line.page != lines[start].page:
            break  # the next page's running header is not the stem
        if not text.strip():
            if "".join(parts).strip():
                break
            continue
        if _OPTION_LINE.match(text):
            options_follow = True
            break
        if _ANSWER.match(text) or _item(text) is not None:
            break
        parts.append(text)
    # Cut early: the searches below are quadratic on a pathological one-line item.
    stem = _join_lines(parts)[: 4 * _MAX_QUESTION_CHARS]
    answer = _ANSWER_INLINE.search(stem)
    if answer:
        stem = stem[: answer.start()]
    # Options sharing the stem's line ("... 是( ). A. x B. y") are not the stem.
    inline = _INLINE_OPTIONS.search(stem) or (options_follow and _FIRST_OPTION.search(stem))
    return _clean(stem[: inline.start()] if inline else stem)


def _join_lines(parts: Sequence[str]) -> str:
    """Join wrapped lines: no space between two CJK characters, one otherwise."""
    out = ""
    for part in parts:
        text = part.strip()
        if not text:
            continue
        if out and not (_CJK_CHAR.match(out[-1]) and _CJK_CHAR.match(text[0])):
            out += " "
        out += text
    return out


def _clean(text: str) -> str:
    """Question text for display: no emphasis marks, dot leaders or runs of spaces."""
    text = _PRIVATE_USE.sub("", _EMPHASIS.sub("", text))
    text = _LEADERS.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > _MAX_QUESTION_CHARS:
        text = text[: _MAX_QUESTION_CHARS - 1].rstrip() + "…"
    return text


# ---------------------------------------------------------------- answer keys

# The heading of an answer key at the end of a paper: "参考答案", "答案", "Answer key",
# "Answers", "【参考答案】"; the entries may follow on the same line ("答案：1.B 2.C").
_KEY_HEADER = re.compile(
    r"^\s*[【\[]?\s*(?:参考答案|标准答案|答案(?:与解析|及解析)?|Answer\s+keys?|Answers?"
    r"|Key\s+to\s+(?:the\s+)?(?:questions|exercises))\s*[】\]]?\s*[:：]?\s*",
    re.IGNORECASE,
)
_KEY_ANSWER = r"(?:[A-H]{1,8}|[对错√×✓✗]|正确|错误|True|False|T|F)"
# "1.B", "2、C", "3: AD", "4 对", "5-B".
_KEY_ENTRY = re.compile(rf"(?<![\d.])(\d{{1,3}})\s*[.．、:：)）\-]?\s*({_KEY_ANSWER})(?![A-Za-z])")
# "1-5 BCADB", "6～10：ACBDA".
_KEY_RANGE = re.compile(r"(?<!\d)(\d{1,3})\s*[-~～—–]\s*(\d{1,3})\s*[.．:：]?\s*([A-H]{2,40})\b")
_KEY_CELL = re.compile(rf"^{_KEY_ANSWER}$")
# A question's own answer line, and its explanation line.
_GIVEN_ANSWER = re.compile(
    _LEAD
    + _EMPH
    + r"(?:【\s*答案\s*】|(?:正确|参考|标准)?答案\s*[:：]|Answers?\s*[:：]|答\s*[:：])",
    re.IGNORECASE,
)
_EXPLANATION = re.compile(
    _LEAD
    + _EMPH
    + r"(?:【\s*(?:解析|分析|详解)\s*】|(?:答案解析|解析|分析|详解|Explanation)\s*[:：])",
    re.IGNORECASE,
)


def attach_answer_key(blocks: Sequence[Block]) -> tuple[list[Block], bool]:
    """Move an answer key at the end of an exam paper into its questions.

    The key is a heading or line "参考答案" / "答案" / "Answer key" after the questions,
    followed by entries "1.B 2.C 3.A", ranges "1-5 BCADB", or a table pairing numbers
    with letters (a row of numbers over a row of answers, or number and answer cells
    side by side). Each entry whose question (an item numbered like structure's exam
    items, in a run of two or more) is found before the key gets an answer line
    ("答案：B", or "Answer: B" for an English key) after its last line; entries are
    matched by number, the k-th occurrence of a number in the key to the k-th question
    of that number (papers restart numbering in each part). When at least half of the
    entries matched, the key's own blocks are dropped; else nothing changes.
    Returns the blocks and whether a key was attached.
    """
    found = _find_key(blocks)
    if found is None:
        return list(blocks), False
    start, end, entries, english = found
    questions = _question_ends(blocks[:start])
    seen: dict[int, int] = {}
    inserts: dict[tuple[int, int], list[str]] = {}  # (block, line) -> answer lines after it
    matched = 0
    label = "Answer: " if english else "答案："
    for number, answer in entries:
        k = seen.get(number, 0)
        seen[number] = k + 1
        ends = questions.get(number, [])
        if k < len(ends):
            where, has_answer = ends[k]
            matched += 1
            if not has_answer:
                inserts.setdefault(where, []).append(label + answer)
    if not entries or 2 * matched < len(entries):
        return list(blocks), False
    out: list[Block] = []
    for i, block in enumerate(blocks):
        if start <= i < end:
            continue
        lines = block.text.splitlines()
        last = len(lines) - 1
        inner = [(n, inserts[(i, n)]) for n in range(last) if (i, n) in inserts]
        if inner:  # a question ends inside the block (a list of questions): splice
            for n, answers in reversed(inner):
                lines[n + 1 : n + 1] = answers
            block = replace(block, text="\n".join(lines))
        out.append(block)
        for line in inserts.get((i, last), []):
            out.append(Block(BlockKind.PARAGRAPH, line, page=block.page))
    return out, True


def _find_key(
    blocks: Sequence[Block],
) -> tuple[int, int, list[tuple[int, str]], bool] | None:
    """(first block, end block, entries, English?) of the last answer key, if any."""
    for i in range(len(blocks) - 1, -1, -1):
        block = blocks[i]
        if block.kind not in (BlockKind.HEADING, BlockKind.PARAGRAPH):
            continue
        first = block.text.strip().split("\n", 1)[0]
        m = _KEY_HEADER.match(first)
        if m is None or len(first) > 200:
            continue
        rest = block.text.strip()[m.end() :]
        if rest and not _key_entries(rest):
            continue  # "答案：见第三章" or a sentence, not a key
        end = i + 1
        while end < len(blocks):
            nxt = blocks[end]
            if nxt.kind is BlockKind.HEADING and (
                block.kind is not BlockKind.HEADING or nxt.level <= block.level
            ):
                break
            if nxt.kind is not BlockKind.TABLE and not _key_entries(nxt.text):
                break
            end += 1
        entries = _key_entries(rest)
        for nxt in blocks[i + 1 : end]:
            entries.extend(_table_key(nxt.text) if nxt.kind is BlockKind.TABLE else [])
            if nxt.kind is not BlockKind.TABLE:
                entries.extend(_key_entries(nxt.text))
        if not entries:
            return None
        english = not _CJK_CHAR.search(first)
        return i, end, entries, english
    return None


def is_answer_key_line(text: str) -> bool:
    """Whether ``text`` is mostly answer-key entries ("1.B 2.C 3.A", "一、1.对 2.错")."""
    return bool(_key_entries(text))


def _key_entries(text: str) -> list[tuple[int, str]]:
    """Entries of a key written as text; [] unless the text is mostly entries."""
    out: list[tuple[int, str]] = []
    spans: list[tuple[int, int]] = []
    for m in _KEY_RANGE.finditer(text):
        first, last, letters = int(m.group(1)), int(m.group(2)), m.group(3)
        if last - first + 1 == len(letters):
            out.extend((first + k, letters[k]) for k in range(len(letters)))
            spans.append(m.span())
    for m in _KEY_ENTRY.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        out.append((int(m.group(1)), m.group(2)))
        spans.append(m.span())
    covered = sum(b - a for a, b in spans)
    rest = re.sub(r"[\s,，;；、|/]+", "", text)
    if not out or covered * 2 < len(rest):
        return []
    return out


def _table_key(text: str) -> list[tuple[int, str]]:
    """Entries of a key written as a pipe table."""
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.strip() and not re.fullmatch(r"[\s|:\-]+", line)
    ]
    out: list[tuple[int, str]] = []
    r = 0
    while r < len(rows):
        row = rows[r]
        nums = [c.isdigit() for c in row]
        if r + 1 < len(rows) and sum(nums) >= 2 and sum(nums) >= len(row) - 1:
            below = rows[r + 1]
            pairs = [
                (int(c), below[k].upper() if below[k].isascii() else below[k])
                for k, c in enumerate(row)
                if c.isdigit() and k < len(below) and _KEY_CELL.match(below[k].strip())
            ]
            if pairs:
                out.extend(pairs)
                r += 2
                continue
        for k in range(len(row) - 1):
            if row[k].isdigit() and _KEY_CELL.match(row[k + 1]):
                out.append((int(row[k]), row[k + 1]))
        r += 1
    return out


def _question_ends(
    blocks: Sequence[Block],
) -> dict[int, list[tuple[tuple[int, int], bool]]]:
    """For each question number, in document order: where the question's last line is
    (block index, line index in the block) and whether it already has an answer line."""
    out: dict[int, list[tuple[tuple[int, int], bool]]] = {}
    segments: list[list[int]] = [[]]
    for i, block in enumerate(blocks):
        if block.kind is BlockKind.HEADING:
            segments.append([])
        else:
            segments[-1].append(i)
    for segment in segments:
        if not segment:
            continue
        body = [blocks[i] for i in segment]
        lines = _lines(body)
        for run in _runs(lines):
            if len(run.items) < 2:
                continue
            bounds = [*run.items, run.end]
            for start, end in pairwise(bounds):
                last = end - 1
                while last > start and not lines[last].text.strip():
                    last -= 1
                has_answer = any(
                    _GIVEN_ANSWER.match(lines[j].text) or _ANSWER_BRACKET.search(lines[j].text)
                    for j in range(start, end)
                )
                # The answer goes before the explanation, if the question has one.
                why = next(
                    (j for j in range(start + 1, end) if _EXPLANATION.match(lines[j].text)), None
                )
                if why is not None:
                    last = why - 1
                    while last > start and not lines[last].text.strip():
                        last -= 1
                number = _item(lines[start].text)
                if number is None:
                    continue
                where = (segment[lines[last].block], lines[last].index)
                out.setdefault(number[1], []).append((where, has_answer))
    return out
