"""Document titles people recognise: generic headings, junk metadata, file-name titles.

Pure functions: ingest picks a document's title with them, and the read side uses
``display_title`` for documents stored before titles were chosen this way.
"""

from __future__ import annotations

import re

# Headings that name a part of any document, not this one (compared case- and
# space-insensitively, after a leading section number such as "1." or "第一章").
_GENERIC_HEADINGS = frozenset(
    {
        "name",
        "名称",
        "introduction",
        "intro",
        "简介",
        "介绍",
        "前言",
        "引言",
        "faq",
        "faqs",
        "常见问题",
        "readme",
        "contents",
        "content",
        "目录",
        "abstract",
        "摘要",
        "overview",
        "概述",
        "tableofcontents",
        "preface",
        "index",
        "索引",
        "synopsis",
        "description",
        "summary",
        "untitled",
    }
)

# A leading section number: "1", "1.2.", "IV.", "Chapter 3", "Part II", "第一章", "第3节".
_NUMBER = r"(?:\d+(?:\.\d+)*\.?|[ivxlcdm]+\.)"
_CHAPTER = (
    r"(?:(?:chapter|part|section|appendix)\s*(?:\d+|[ivxlcdm]+|[a-z])\.?"
    r"|第\s*[0-9一二三四五六七八九十百零〇两]+\s*[章节部篇卷])"
)
_PREFIX = re.compile(rf"^\s*(?:{_CHAPTER}|{_NUMBER})(?:\s*[:：.、-]\s*|\s+|$)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")

# PDF metadata titles that name the file or the tool, not the document.
_JUNK_METADATA = re.compile(
    r"^(?:microsoft\s+\w+\s*-\s*.*"  # "Microsoft Word - report.doc"
    r"|untitled(?:[\s_-]*\d+)?|unknown|title|document|none|null|no\s+title"
    r"|slide\s*\d*|presentation\d*|book\d*|sheet\d*)$",
    re.IGNORECASE,
)
_FILE_EXTENSION = re.compile(
    r"\.(?:pdf|docx?|odt|rtf|txt|md|markdown|tex|dvi|ps|pptx?|xlsx?|html?|indd|qxd|pages)$",
    re.IGNORECASE,
)

# A man page's NAME paragraph: "find - search for files", "**ls**, dir \- list".
_MAN_NAME = re.compile(
    r"^\s*([A-Za-z0-9_.+:@-]+)(?:\s*,\s*[A-Za-z0-9_.+:@-]+)*\s+(?:\\?[-–—])+\s+\S"
)
_MAN_FILE = re.compile(
    r"^(?P<cmd>[A-Za-z0-9_.+:@-]+?)\.(?P<section>[1-9][a-z0-9]*)(?:\.(?:md|markdown|txt|text))?$",
    re.IGNORECASE,
)
_MAN_HEADINGS = frozenset({"name", "名称"})
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,9}$")


def _squash(text: str) -> str:
    return _SPACE.sub("", text).casefold()


def is_generic_heading(text: str | None) -> bool:
    """Whether a heading (or stored title) names no particular document.

    Empty text, "NAME", "FAQ", "Introduction", "1. Introduction", "Chapter 1", "第一章",
    "目录"… are generic; "Installing Lumen" or "第一章 年假" are not.
    """
    if text is None:
        return True
    squashed = _squash(text)
    if not squashed:
        return True
    if squashed in _GENERIC_HEADINGS:
        return True
    rest = _PREFIX.sub("", text.strip(), count=1)
    if rest == text.strip():
        return False
    rest = _squash(rest.strip(" :：.、-"))
    return not rest or rest in _GENERIC_HEADINGS


def is_meaningful_metadata_title(title: str | None) -> bool:
    """Whether a PDF's metadata title names the document.

    Not empty, not a tool's placeholder ("untitled", "Microsoft Word - a.doc"), not a file
    name or path, not only digits or punctuation.
    """
    if title is None:
        return False
    text = " ".join(title.split())
    if not text or not any(ch.isalpha() for ch in text):
        return False
    if _JUNK_METADATA.match(text) or _FILE_EXTENSION.search(text):
        return False
    if "/" in text or "\\" in text:  # a path
        return False
    return not (" " not in text and "_" in text)  # a file name like "final_v2_print"


def declared_title(title: object) -> str | None:
    """A title a file declares in its metadata (PDF info, Office core properties), with
    whitespace collapsed, or None when it names nothing (see
    :func:`is_meaningful_metadata_title`) or is not text."""
    if not isinstance(title, str):
        return None
    text = " ".join(title.split())
    return text if is_meaningful_metadata_title(text) else None


def title_from_filename(filename: str) -> str:
    """A readable title made of a file name: no folder or extension, ``_``/``-`` as spaces.

    "mnras_guide.pdf" -> "mnras guide", "Hatch-FAQ.md" -> "Hatch FAQ"; case is kept.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem = _EXTENSION.sub("", name) or name
    title = " ".join(stem.replace("_", " ").replace("-", " ").split())
    return title or name or "untitled"


def man_page_title(filename: str, heading: str | None, first_paragraph: str | None) -> str | None:
    """``find(1)`` for a man page converted to Markdown or text, else None.

    A man page is one whose first heading is NAME and whose first paragraph reads like
    "find - search for files", or whose file name is like ``find.1.md``.
    """
    if heading is None or _squash(heading) not in _MAN_HEADINGS:
        return None
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    by_file = _MAN_FILE.match(name) if _EXTENSION.search(name) else None
    paragraph = (first_paragraph or "").replace("*", "").replace("`", "")
    by_text = _MAN_NAME.match(paragraph)
    if by_text is None and by_file is None:
        return None
    command = by_text.group(1) if by_text else by_file["cmd"] if by_file else ""
    section = by_file["section"] if by_file else None
    return f"{command}({section})" if section else command


def display_title(stored: str | None, filename: str) -> str:
    """The title to show: the stored one unless it is empty or generic, else the file's."""
    if stored and stored.strip() and not is_generic_heading(stored):
        return stored.strip()
    return man_page_title(filename, stored, None) or title_from_filename(filename)
