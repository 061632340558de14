"""HTML pages (saved web pages, wiki and Confluence exports) -> blocks.

The page is decoded by its own charset (a BOM, else ``<meta charset>`` or the
``http-equiv`` Content-Type, else the text decoder shared with Markdown) and parsed by
libxml2's HTML parser with ``no_network``: nothing the page refers to is ever fetched,
and HTML has no entity definitions to expand. Only the main content is kept: scripts,
styles, navigation, banners, footers, sidebars, forms, hidden elements and common
boilerplate (menus, breadcrumbs, tables of contents, cookie notices) are dropped, and
``#main-content`` (Confluence), ``<main>``, ``[role=main]`` or a single ``<article>`` is
read alone when the page has one.

Blocks are Markdown-like text, as the chunker and ``markdown_plain`` expect: h1-h6 as
headings of that level, paragraphs, nested lists as list items, tables as pipe tables
(first row as the header), ``pre`` as fenced code and ``blockquote`` as quotes.

The walk over the tree is iterative (an explicit stack), so nesting costs no recursion;
libxml2 itself stops at 256 levels, and such a page is refused with a reason rather
than read in part.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from app.text.decode import NotText, decode_text, utf16_without_bom
from ingest.errors import IngestError
from ingest.types import Block, BlockHint, BlockKind, ParsedDocument

NOT_HTML = (
    "The file is named {suffix} but is not an HTML page (it contains binary data); it may "
    "be damaged or mislabelled. Save the page again as HTML and upload it."
)
NO_TEXT_HTML = (
    "The page contains no text in its main content (only markup, scripts or navigation). "
    "Check that you saved the page itself, not a frame or a redirect."
)
TOO_DEEP_HTML = (
    "The page is nested more than {depth} elements deep and could not be read completely; "
    "it may be malformed. Save it again (for example, print it to PDF) and upload that."
)

# Elements never read: code, styling, navigation and page furniture, embedded objects.
_DROP_TAGS = frozenset(
    {
        "script",
        "style",
        "nav",
        "aside",
        "form",
        "noscript",
        "template",
        "svg",
        "math",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "canvas",
        "button",
        "select",
        "input",
        "textarea",
        "head",
        "audio",
        "video",
        "map",
        "dialog",
    }
)
# Dropped when they are page furniture: outside the main content, and not holding the
# page's heading.
_FURNITURE_TAGS = frozenset({"header", "footer"})
_DROP_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar"}
)
# A class or id naming page furniture, as a whole word of it between separators
# ("left-sidebar", "cookie_notice", "toc"; not "tocsin").
_BOILERPLATE = re.compile(
    r"(?:^|[\s_-])(?:sidebar|nav|side-?bar|breadcrumbs?|menu|navbar|navigation|toc|"
    r"table-of-contents|cookies?|cookie-?banner|consent|skip-?link|share|social|"
    r"advert|ads|banner|footer|site-?header|page-?header-?nav|related|comments?|"
    r"pagination|pager)(?:$|[\s_-])",
    re.IGNORECASE,
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# Elements whose content is a block of its own (a paragraph break before and after).
_BLOCKISH = frozenset(
    {
        "address",
        "article",
        "body",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "header",
        "hgroup",
        "html",
        "legend",
        "li",
        "main",
        "section",
        "summary",
        "caption",
        "td",
        "th",
        "tr",
        "tbody",
        "thead",
        "tfoot",
        "p",
        "hr",
        "ol",
        "ul",
        "pre",
        "blockquote",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    }
)
_LIST_TAGS = frozenset({"ul", "ol", "menu", "dir"})
# A list nested deeper than this is written at this depth (its items stay, flattened).
_MAX_LIST_DEPTH = 8
# Columns of a table beyond this are dropped (colspan can claim thousands).
_MAX_COLUMNS = 64
_MAX_COLSPAN = 64
_LIBXML_MAX_DEPTH = 256

_SPACE = re.compile(r"[ \t\n\r\f\v\xa0]+")
# Charset in a <meta> tag or an XML declaration, in the first bytes of the file.
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]{1,40})""")
_SNIFF = 4096
# Magic numbers of common binary files that may be misnamed .html.
_BINARY_MAGIC = (
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"PK\x03\x04",
    b"\xd0\xcf\x11\xe0",
    b"II*\x00",
    b"MM\x00*",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# A line that Markdown would read as markup: heading, quote, list item, rule, fence,
# table row, indented code; and a "<" that starts what looks like a tag.
_LINE_MARKUP = re.compile(
    r"^(?:#{1,6}(?=\s|$)|>|[-+*](?=\s|$)|\d{1,9}[.)](?=\s|$)|=+\s*$|"
    r"-{3,}\s*$|`{3,}|~{3,}|\|)"
)
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


# --- Markdown writing, shared with the PowerPoint parser ---------------------------------

# A pipe table's header row and rule start every piece the chunker cuts it into.
TABLE_HINT = BlockHint(header_lines=2)


def escape_line(text: str) -> str:
    """``text`` (one line) as Markdown that reads back as the same text."""
    text = _TAG_START.sub(r"\\<", text.strip())
    if _LINE_MARKUP.match(text):
        return "\\" + text
    return text


def _cell(text: str) -> str:
    return escape_line(" ".join(text.split())).replace("|", "\\|")


def pipe_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown pipe table, the first row as its header; empty
    rows and columns are dropped. Its block takes ``TABLE_HINT``."""
    rows = [r[:_MAX_COLUMNS] for r in rows if any(c.strip() for c in r)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    keep = [i for i in range(width) if any(r[i].strip() for r in rows)]
    rows = [[r[i] for i in keep] for r in rows]
    lines = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(keep))
    return "\n".join(lines)


# --- decoding --------------------------------------------------------------------------


def _declared_charset(data: bytes) -> str | None:
    head = data[:_SNIFF]
    found = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if not found:
        return None
    name = found.group(1).decode("ascii").lower()
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # What browsers do (WHATWG Encoding): Latin-1 and ASCII labels mean windows-1252, the
    # Chinese ones their superset GB18030; a page in UTF-16 cannot declare so in ASCII.
    if codec in ("latin-1", "iso8859-1", "ascii", "cp1252"):
        return "cp1252"
    if codec in ("gb2312", "gbk", "gb18030"):
        return "gb18030"
    if codec.startswith("utf-16") or codec.startswith("utf-32"):
        return "utf-8"
    return codec


def decode_html(data: bytes, suffix: str = ".html") -> str:
    """The text of an HTML file, by its BOM, its declared charset or the text decoder."""
    head = data[:_SNIFF]
    if head.startswith(_BINARY_MAGIC):
        raise IngestError(NOT_HTML.format(suffix=suffix))
    bom = data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    charset = None if bom or utf16_without_bom(data) else _declared_charset(data)
    if charset is not None and b"\x00" not in head:
        text = data.decode(charset, errors="replace")
    else:
        try:
            text = decode_text(data)
        except NotText:
            raise IngestError(NOT_HTML.format(suffix=suffix)) from None
    text = text.removeprefix("\ufeff")
    sample = text[:100_000]
    if sample and len(_CONTROL.findall(sample)) > len(sample) * 0.01:
        raise IngestError(NOT_HTML.format(suffix=suffix))
    return text


# --- parsing ---------------------------------------------------------------------------


def parse_html(path: Path) -> ParsedDocument:
    """Parse a saved HTML page into heading and body blocks of its main content."""
    text = decode_html(path.read_bytes(), path.suffix.lower() or ".html")
    return parse_html_text(text)


def parse_html_text(text: str) -> ParsedDocument:
    import lxml.html
    from lxml import etree

    # Handed over as UTF-8 bytes with the encoding fixed, so that the page's own <meta>
    # or XML declaration (already applied) cannot make libxml2 decode it again.
    parser = lxml.html.HTMLParser(
        encoding="utf-8",
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
        recover=True,
        default_doctype=False,
        collect_ids=False,
    )
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8", "replace"), parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        raise IngestError(NO_TEXT_HTML) from None
    if any("depth" in e.message.lower() for e in parser.error_log):
        raise IngestError(TOO_DEEP_HTML.format(depth=_LIBXML_MAX_DEPTH))
    meta_title = _meta_title(root)
    content = _main_content(root)
    blocks = list(_Walker().run(content))
    if not blocks:
        raise IngestError(NO_TEXT_HTML)
    first_h1 = next((b.text for b in blocks if b.kind is BlockKind.HEADING and b.level == 1), None)
    first_heading = next((b.text for b in blocks if b.kind is BlockKind.HEADING), None)
    return ParsedDocument(
        blocks=tuple(blocks),
        title=meta_title or first_h1 or first_heading,
        meta_title=meta_title,
    )


def _tag(el: Any) -> str:
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else ""


def _meta_title(root: Any) -> str | None:
    for meta in root.iter("meta"):
        if (meta.get("property") or meta.get("name") or "").lower() == "og:title":
            title = " ".join((meta.get("content") or "").split())
            if title:
                return title[:300]
    for el in root.iter("title"):
        title = " ".join(el.text_content().split())
        if title:
            return title[:300]
    return None


def _is_boilerplate(el: Any) -> bool:
    tag = _tag(el)
    if tag in _DROP_TAGS:
        return True
    if el.get("hidden") is not None or (el.get("aria-hidden") or "").lower() == "true":
        return True
    style = (el.get("style") or "").replace(" ", "").lower()
    if "display:none" in style or "visibility:hidden" in style:
        return True
    if (el.get("role") or "").lower() in _DROP_ROLES:
        return True
    if tag in ("body", "html", "main", "article"):
        return False
    marks = f"{el.get('class') or ''} {el.get('id') or ''}"
    return bool(marks.strip()) and _BOILERPLATE.search(marks) is not None


def _main_content(root: Any) -> Any:
    """The element holding the page's main content (the body when none is marked)."""
    candidates = [
        *root.xpath("//*[@id='main-content']"),
        *root.xpath("//main"),
        *root.xpath("//*[@role='main']"),
    ]
    articles = root.xpath("//article")
    if len(articles) == 1:
        candidates.append(articles[0])
    for el in candidates:
        if "".join(el.itertext()).strip():
            _drop_boilerplate(el, keep_furniture=True)
            if "".join(el.itertext()).strip():
                return el
    body = root.find("body")
    if body is None:
        body = root
    _drop_boilerplate(body, keep_furniture=False)
    return body


def _drop_boilerplate(container: Any, *, keep_furniture: bool) -> None:
    """Remove boilerplate under ``container``; a header or footer is furniture unless
    it is inside the main content or holds a level-1 heading."""
    doomed = []
    for el in container.iter():
        if el is container or not isinstance(el.tag, str):
            continue
        if _is_boilerplate(el) or (
            not keep_furniture and _tag(el) in _FURNITURE_TAGS and next(el.iter("h1"), None) is None
        ):
            doomed.append(el)
    for el in doomed:
        parent = el.getparent()
        if parent is None:
            continue
        # Keep the text after the element (its tail) where it was.
        tail = el.tail
        if tail:
            prev = el.getprevious()
            if prev is not None:
                prev.tail = (prev.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
        parent.remove(el)


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _inline(el: Any, *, skip_lists: bool = False, block_sep: str = " ") -> tuple[str, list[Any]]:
    """The text of ``el`` as one run (line breaks as "\\n"); with ``skip_lists`` the
    lists inside it are left out and returned, for the caller to write nested."""
    parts: list[str] = []
    nested: list[Any] = []
    # Items: an element to enter, or a string to write.
    stack: list[Any] = [el]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        tag = _tag(item)
        if item is not el:
            if skip_lists and tag in _LIST_TAGS:
                nested.append(item)
                if item.tail:
                    stack.append(item.tail)
                continue
            if tag == "br":
                parts.append("\n")
                if item.tail:
                    stack.append(item.tail)
                continue
            if tag == "img":
                alt = item.get("alt")
                parts.append(f" {alt} " if alt else "")
                if item.tail:
                    stack.append(item.tail)
                continue
        sep = block_sep if tag in _BLOCKISH and item is not el else ""
        later = _contents(item)
        if sep:
            later = [sep, *later, sep]
        if item is not el and item.tail:
            later.append(item.tail)
        stack.extend(reversed(later))
    return "".join(parts), nested


def _contents(item: Any) -> list[Any]:
    """An element's own text, then its child elements and the text after each, in
    document order (comments and processing instructions give only their tails)."""
    out: list[Any] = [item.text] if item.text else []
    for child in item:
        if isinstance(child.tag, str):
            out.append(child)
        elif child.tail:
            out.append(child.tail)
    return out


def _paragraph_lines(text: str) -> list[str]:
    lines = [_collapse(line) for line in text.split("\n")]
    return [escape_line(line) for line in lines if line]


class _Walker:
    """Turns the main content into blocks, iteratively."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.buffer: list[str] = []

    def run(self, root: Any) -> Iterator[Block]:
        # Items: an element to read, a string of inline text, or None (end of a block).
        stack: list[Any] = [root]
        while stack:
            item = stack.pop()
            if item is None:
                self.flush()
            elif isinstance(item, str):
                self.buffer.append(item)
            else:
                tail = item.tail if item is not root else None
                handled = self.element(item)
                if handled:
                    if tail:
                        stack.append(tail)
                    continue
                later: list[Any] = []
                blockish = _tag(item) in _BLOCKISH
                if blockish:
                    self.flush()
                later.extend(_contents(item))
                if blockish:
                    later.append(None)
                if tail:
                    later.append(tail)
                stack.extend(reversed(later))
        self.flush()
        return iter(self.blocks)

    def flush(self) -> None:
        lines = _paragraph_lines("".join(self.buffer))
        self.buffer = []
        if lines:
            self.blocks.append(Block(BlockKind.PARAGRAPH, "\n".join(lines)))

    def element(self, el: Any) -> bool:
        """Write ``el`` if it is a block of its own kind; False to walk into it."""
        tag = _tag(el)
        if tag == "br":
            self.buffer.append("\n")
            return True
        if tag == "img":
            alt = el.get("alt")
            if alt:
                self.buffer.append(f" {alt} ")
            return True
        if tag == "hr":
            self.flush()
            return True
        if tag in _HEADINGS:
            self.flush()
            text = _collapse(_inline(el)[0])
            if text:
                self.blocks.append(Block(BlockKind.HEADING, text, level=_HEADINGS[tag]))
            return True
        if tag == "pre":
            self.flush()
            self.code(el)
            return True
        if tag in _LIST_TAGS:
            self.flush()
            text = _list(el)
            if text:
                self.blocks.append(Block(BlockKind.LIST, text))
            return True
        if tag == "table":
            rows = _table_rows(el)
            if sum(len(r) for r in rows) <= 1:
                return False  # a layout table of one cell: read what it holds
            self.flush()
            caption = el.find("caption")
            if caption is not None:
                lines = _paragraph_lines(_inline(caption)[0])
                if lines:
                    self.blocks.append(Block(BlockKind.PARAGRAPH, "\n".join(lines)))
            text = pipe_table(
                [[_inline(c)[0] if c is not None else "" for c in row] for row in rows]
            )
            if text:
                self.blocks.append(Block(BlockKind.TABLE, text, hint=TABLE_HINT))
            return True
        if tag == "blockquote":
            self.flush()
            paragraphs = _paragraph_lines(_inline(el, block_sep="\n")[0])
            if paragraphs:
                self.blocks.append(
                    Block(BlockKind.QUOTE, "\n>\n".join(f"> {p}" for p in paragraphs))
                )
            return True
        return False

    def code(self, el: Any) -> None:
        text = "".join(el.itertext()).strip("\n")
        if not text.strip():
            return
        fence = "```"
        while fence in text:
            fence += "`"
        language = ""
        for node in (el, *el.iter("code")):
            for cls in (node.get("class") or "").split():
                if cls.startswith(("language-", "lang-")):
                    language = re.sub(r"[^\w+#.-]", "", cls.split("-", 1)[1])[:20]
        self.blocks.append(Block(BlockKind.CODE, f"{fence}{language}\n{text}\n{fence}"))


def _table_rows(table: Any) -> list[list[Any | None]]:
    """The cells of a table's own rows (not those of tables nested in its cells), with
    a cell of colspan N followed by N-1 empty ones."""
    rows: list[list[Any]] = []
    groups: Iterable[Any] = [table, *(g for g in table if _tag(g) in ("thead", "tbody", "tfoot"))]
    for group in groups:
        for tr in group:
            if _tag(tr) != "tr":
                continue
            cells: list[Any | None] = []
            for cell in tr:
                if _tag(cell) not in ("td", "th"):
                    continue
                cells.append(cell)
                try:
                    span = int(cell.get("colspan") or 1)
                except ValueError:
                    span = 1
                cells.extend([None] * (min(max(span, 1), _MAX_COLSPAN) - 1))
            rows.append(cells)
    return rows


def _list(root: Any) -> str:
    """A list (with the lists nested in its items) as Markdown list items."""
    lines: list[str] = []
    # Frames of open lists: [their children still to read, indent, ordered, next number].
    # A nested list is a new frame on top, read to its end before its parent goes on.
    stack: list[tuple[Iterator[Any], str, bool, list[int]]] = [_frame(root, "")]
    while stack:
        children, indent, ordered, number = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        tag = _tag(child)
        if not tag:
            continue
        deeper = len(stack) < _MAX_LIST_DEPTH
        if tag in _LIST_TAGS:  # a list straight inside a list (invalid, but common)
            stack.append(_frame(child, indent + "  " if deeper else indent))
            continue
        text, nested = _inline(child, skip_lists=True)
        marker = f"{number[0]}." if ordered else "-"
        number[0] += 1
        lines.append(f"{indent}{marker} {escape_line(_collapse(text))}".rstrip())
        child_indent = indent + " " * (len(marker) + 1) if deeper else indent
        stack.extend(_frame(n, child_indent) for n in reversed(nested))
    return "\n".join(lines)


def _frame(lst: Any, indent: str) -> tuple[Iterator[Any], str, bool, list[int]]:
    ordered = _tag(lst) == "ol"
    try:
        start = int(lst.get("start") or 1)
    except ValueError:
        start = 1
    return iter(lst), indent, ordered, [start]
