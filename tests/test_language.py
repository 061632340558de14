"""Language per document and per chunk: detection reads prose, not code, identifiers or
TeX; ingest stores each chunk's own language; the language filter and the language share
of search read the chunk's (the document's for rows stored before chunks had one)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from sqlalchemy import select, update

from app.db import transaction
from app.documents.models import Chunk, Document
from app.runtime import Runtime
from app.search.service import SearchFilters, _language_share, search
from app.text.language import detect_language
from ingest.parse import parse
from tests.factories import get_document, settle, store_upload
from tests.pdfgen import CJK_FONT

# A Chinese manual of a fictional LaTeX package: a little prose, much code.
TEX_CODE = r"""\documentclass[a4paper,12pt]{article}
\usepackage[UTF8]{ctex}
\usepackage{xcolor,graphicx,hyperref}
\usepackage[margin=2cm]{geometry}
\newcommand{\boxedtitle}[1]{\fbox{\textbf{#1}}}
\NewDocumentCommand \setupboxes { m } { \keys_set:nn { boxes } {#1} }
\cs_new_protected:Npn \__boxes_draw:nn #1#2 { \tl_set:Nn \l__boxes_tmp_tl {#2} }
\keys_define:nn { boxes } { width .dim_set:N = \l__boxes_width_dim }
\begin{document}
\setupboxes{width=3cm, height=1.5cm, color=blue!20, frame=dashed}
\boxedtitle{Hello}
\end{document}"""

CHINESE_PROSE = (
    "方框宏包用于在正文中绘制带边框的文字。安装以后，在导言区载入宏包即可使用。"
    "下面的例子演示了常用的设置方法，宽度和高度都可以在选项中修改。"
)

CHINESE_MANUAL_MD = f"""# 方框宏包使用说明

{CHINESE_PROSE}

```latex
{TEX_CODE}
```

可以用 `\\setupboxes` 命令修改 `width`、`height` 等选项，例如 `\\setupboxes{{width=2cm}}`。
选项的默认值见 <https://example.org/boxes/manual.pdf> 或者 `doc/boxes-manual.tex` 文件。

    \\boxedtitle{{Indented code}} % also code
    \\cs_set:Npn \\boxes_tmp:n #1 {{ #1 }}
"""

ENGLISH_WITH_CHINESE_CODE_MD = """# Printing greetings

This short guide shows how the greeting tool prints a message in the reader's own
language. Install it first, then run the example below from a terminal window.

```python
greetings = {"zh": "你好，世界！欢迎使用问候工具，这是中文的问候语。", "en": "Hello"}
print(greetings["zh"])  # 打印中文问候语，然后退出程序
```

The tool reads the language from the environment and falls back to English when the
language it finds has no greeting yet.
"""

# A bilingual README: the English half, then its Chinese translation.
BILINGUAL_MD = """# Lantern Notes

## Overview

Lantern Notes keeps the meeting minutes of a small team in plain text files. Every
note has a date, a list of people who attended and the decisions that were taken.

## Installation

Copy the program into a folder of your choice and run the setup command once. The
setup asks for the folder where the notes are kept and creates it when it is missing.

## 简介

灯笼笔记把小团队的会议记录保存在纯文本文件里。每条记录都有日期、参会人员名单以及会上作出的决定。

## 安装

把程序复制到任意文件夹，然后运行一次安装命令。安装程序会询问保存笔记的文件夹，如果文件夹不存在就自动创建。
"""


def _han(text: str) -> int:
    return len(re.findall(r"[\u4e00-\u9fff]", text))


def _letters(text: str) -> int:
    return len(re.findall(r"[A-Za-z]", text))


# --- detection ------------------------------------------------------------------------------


def test_chinese_prose_with_much_latex_code_is_chinese() -> None:
    # Counted over everything, the code's letters outweigh the Chinese characters.
    assert _han(CHINESE_MANUAL_MD) < _letters(CHINESE_MANUAL_MD) / 5
    assert detect_language(CHINESE_MANUAL_MD) == "zh"


def test_english_prose_with_chinese_in_a_code_block_is_english() -> None:
    text = ENGLISH_WITH_CHINESE_CODE_MD
    assert _han(text) > 0
    assert detect_language(text) == "en"
    # The same prose with the code indented instead of fenced.
    indented = re.sub(
        r"```python\n(.*?)```\n",
        lambda m: "".join("    " + line + "\n" for line in m.group(1).splitlines()),
        text,
        flags=re.S,
    )
    assert "```" not in indented and detect_language(indented) == "en"


def test_tex_commands_and_their_arguments_are_not_prose() -> None:
    # Unfenced TeX, as a PDF's text layer gives it: commands, options, macro soup.
    text = f"{CHINESE_PROSE}\n{TEX_CODE}\n{TEX_CODE}\n{TEX_CODE}"
    assert _han(text) < _letters(text) / 5
    assert detect_language(text) == "zh"
    # A brace group with Chinese text in it keeps its text.
    assert detect_language(r"\section{引言} \label{sec:intro} \textbf{重要说明}") == "zh"
    # TeX alone has no prose: strict says so, the fallback reads its letters.
    assert detect_language(TEX_CODE, strict=True) is None
    assert detect_language(TEX_CODE) == "en"


def test_identifiers_paths_urls_and_options_are_not_prose() -> None:
    line = (
        "配置文件里的 max_tokens、chunkOverlap、app.search.service、--dry-run、"
        "~/.config/kb/settings.toml、https://example.org/docs/index.html 和 UTF8 都要检查。"
    )
    assert _han(line) < _letters(line) / 5
    assert detect_language(line) == "zh"
    # A numbered code listing, as a PDF of documented source prints it.
    listing = "\n".join(f"{n} local value = compute_total(items, {n})" for n in range(1, 40))
    assert detect_language(f"下面的代码计算所有条目的总和。\n{listing}") == "zh"


def test_plain_prose_and_short_texts() -> None:
    assert detect_language("The hub restarts when the button is held for five seconds.") == "en"
    assert detect_language("按住按钮五秒钟，集线器就会重新启动。") == "zh"
    assert detect_language("ボタンを五秒間押すと、ハブが再起動します。") == "ja"
    assert detect_language("버튼을 5초 동안 누르면 허브가 다시 시작됩니다.") == "ko"
    assert detect_language("2024-05-01 12:30") is None
    # Too little prose to tell a chunk's language: its document's will do.
    assert detect_language("Updated: 2021-10-07", strict=True) is None
    assert detect_language("x = f(0) + 1", strict=True) is None
    # A query made of an identifier still has a language (the letters decide).
    assert detect_language("max_tokens") == "en"


def test_long_texts_are_sampled_over_their_whole_length() -> None:
    # English code first, Chinese prose after it: the first 20,000 characters alone
    # would say English.
    code = "\n".join(f"value_{n} = compute(items[{n}]);" for n in range(2000))
    prose = "\n".join([CHINESE_PROSE] * 200)
    assert detect_language(code + "\n" + prose) == "zh"


# --- ingest and search ----------------------------------------------------------------------


def _code_heavy_chinese_pdf(path: Path) -> Path:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4)
    c.setTitle("方框宏包使用说明")
    y = A4[1] - 72
    c.setFont(CJK_FONT, 18)
    c.drawString(72, y, "方框宏包使用说明")
    y -= 36
    c.setFont(CJK_FONT, 11)
    for i in range(0, len(CHINESE_PROSE), 36):
        c.drawString(72, y, CHINESE_PROSE[i : i + 36])
        y -= 16
    for _ in range(2):
        for line in TEX_CODE.splitlines():
            y -= 14
            c.drawString(72, y, line[:80])
    c.showPage()
    c.save()
    path.write_bytes(buffer.getvalue())
    return path


def test_code_heavy_chinese_pdf_is_stored_as_chinese(rt: Runtime, tmp_path: Path) -> None:
    pdf = _code_heavy_chinese_pdf(tmp_path / "boxes-manual.pdf")
    text = parse(pdf).text
    assert "方框宏包" in text and "usepackage" in text
    assert _han(text) < _letters(text) / 5  # the code outweighs the prose, letter for letter

    doc_id = store_upload(rt, "boxes-manual.pdf", pdf.read_bytes())
    settle(rt)
    assert get_document(rt, doc_id).language == "zh"
    with rt.sessions() as s:
        languages = list(s.scalars(select(Chunk.language).where(Chunk.document_id == doc_id)))
    assert languages and set(languages) == {"zh"}


def test_bilingual_document_has_chunks_in_both_languages(rt: Runtime) -> None:
    doc_id = store_upload(rt, "lantern.md", BILINGUAL_MD.encode())
    store_upload(rt, "boxes.md", CHINESE_MANUAL_MD.encode())
    settle(rt)
    with rt.sessions() as s:
        rows = s.execute(
            select(Chunk.id, Chunk.language, Chunk.text).where(Chunk.document_id == doc_id)
        ).all()
    assert {lang for _, lang, _ in rows} == {"en", "zh"}
    chinese = {cid for cid, lang, _ in rows if lang == "zh"}
    english = {cid for cid, lang, _ in rows if lang == "en"}
    assert all(_han(text) for cid, _, text in rows if cid in chinese)
    assert not any(_han(text) for cid, _, text in rows if cid in english)

    # The language filter reads the chunk's language: the Chinese half only.
    only = SearchFilters(language="zh", document_id=doc_id)
    for mode in ("hybrid", "lexical"):
        hits = search(rt, query="会议记录 meeting notes", k=10, filters=only, mode=mode).hits
        assert {h.chunk_id for h in hits} <= chinese, mode
        assert all(h.language == "zh" for h in hits)
    hits = search(rt, query="meeting minutes", k=10, filters=only, mode="dense").hits
    assert {h.chunk_id for h in hits} == chinese
    hits = search(
        rt, query="meeting minutes", k=10, filters=SearchFilters(language="en"), mode="dense"
    ).hits
    assert english <= {h.chunk_id for h in hits}
    assert not chinese & {h.chunk_id for h in hits}
    assert all(h.language == "en" for h in hits)


def test_chunks_stored_before_they_had_a_language_take_their_documents(rt: Runtime) -> None:
    zh_doc = store_upload(rt, "lantern.md", BILINGUAL_MD.encode())
    en_doc = store_upload(rt, "greetings.md", ENGLISH_WITH_CHINESE_CODE_MD.encode())
    settle(rt)
    with transaction(rt.sessions) as s:
        # Old rows: no chunk language; the bilingual document's language says Chinese.
        s.execute(update(Chunk).values(language=None))
        s.execute(update(Document).where(Document.id == zh_doc).values(language="zh"))
        s.execute(update(Document).where(Document.id == en_doc).values(language="en"))
    with rt.sessions() as s:
        zh_ids = set(s.scalars(select(Chunk.id).where(Chunk.document_id == zh_doc)))
        en_ids = set(s.scalars(select(Chunk.id).where(Chunk.document_id == en_doc)))
        share = _language_share(rt, s, [rt.collection(s)], "会议记录保存在哪里？")
    assert share == len(zh_ids) / (len(zh_ids) + len(en_ids))
    hits = search(
        rt, query="meeting notes", k=20, filters=SearchFilters(language="zh"), mode="dense"
    ).hits
    assert {h.chunk_id for h in hits} == zh_ids
    assert all(h.language == "zh" for h in hits)


def test_language_share_counts_chunks_by_their_own_language(rt: Runtime) -> None:
    doc_id = store_upload(rt, "lantern.md", BILINGUAL_MD.encode())
    settle(rt)
    with rt.sessions() as s:
        languages = list(s.scalars(select(Chunk.language).where(Chunk.document_id == doc_id)))
        col = rt.collection(s)
        zh = _language_share(rt, s, [col], "会议记录保存在哪里？")
        en = _language_share(rt, s, [col], "Where are the meeting minutes kept?")
    assert zh == languages.count("zh") / len(languages)
    assert en == languages.count("en") / len(languages)
    assert 0 < zh < 1 and zh + en == 1
