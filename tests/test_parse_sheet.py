"""Spreadsheets: FAQ sheets and question banks give one chunk per row; other sheets are
tables split between rows under their header; CSV charsets and delimiters; limits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingest.chunk import chunk
from ingest.errors import IngestError
from ingest.parse import parse
from ingest.parse.sheet import (
    SHEET_EMPTY,
    SHEET_TOO_MANY_CELLS,
    SHEET_TOO_MANY_ROWS,
    SheetLimits,
    parse_sheet,
)
from ingest.parse.zipsafe import NOT_AN_OFFICE_FILE
from ingest.types import BlockKind, ChunkKind
from tests.officegen import write_csv, write_xlsx

S, F, Q = ChunkKind.SECTION, ChunkKind.FAQ, ChunkKind.QUESTION


def test_faq_sheet_one_faq_chunk_per_row(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "faq.xlsx",
        {
            "常见问题": [
                ["问题", "答案", "分类"],
                ["年假可以跨年使用吗？", "可以，最多顺延到次年三月底。", "人事"],
                [None, None, None],
                ["报销需要哪些材料", "发票原件和审批单。", "财务"],
                ["How do I reset my password?", "Use the Forgot password link.", "IT"],
            ]
        },
        title="Help desk FAQ",
    )
    parsed = parse(path)
    assert parsed.title == parsed.meta_title == "Help desk FAQ"
    chunks = chunk(parsed)
    assert [(c.kind, c.heading_path, c.question) for c in chunks] == [
        (F, ("常见问题",), "年假可以跨年使用吗？"),
        (F, ("常见问题",), "报销需要哪些材料"),
        (F, ("常见问题",), "How do I reset my password?"),
    ]
    assert chunks[0].text == "年假可以跨年使用吗？\n答案：可以，最多顺延到次年三月底。\n分类：人事"


def test_question_bank_one_question_chunk_per_row(tmp_path: Path) -> None:
    rows = [
        ["Subject", "Type", "Question", "Option A", "Option B", "Option C", "Option D", "Answer",
         "Explanation", "Difficulty"],
        ["Geography", "single choice", "Which city is the capital of China?", "Beijing",
         "Shanghai", "Guangzhou", "Shenzhen", "A", "Beijing has been the capital since 1949.", 1],
        ["Computing", "single choice", "How many bits are in a byte?", 4, 8, 16, 32, "B", None, 2],
        ["Computing", "true/false", "RAM keeps its data without power.", None, None, None, None,
         "False", "RAM is volatile.", 1],
    ]  # fmt: skip
    path = write_xlsx(
        tmp_path / "bank.xlsx",
        {"题库 2024": [["2024 年题库"], *rows]},
        merges={"题库 2024": ["A1:J1"]},
    )
    chunks = chunk(parse(path))
    assert [(c.kind, c.question) for c in chunks] == [
        (S, None),  # the caption above the header
        (Q, "Which city is the capital of China?"),
        (Q, "How many bits are in a byte?"),
        (Q, "RAM keeps its data without power."),
    ]
    assert chunks[0].text == "2024 年题库"
    assert chunks[2].text == (
        "How many bits are in a byte?\nA. 4\nB. 8\nC. 16\nD. 32\nAnswer: B\n"
        "Subject: Computing\nType: single choice\nDifficulty: 2"
    )
    assert all(c.heading_path == ("题库 2024",) for c in chunks)


def test_chinese_question_bank_with_letter_columns(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "题库.xlsx",
        {
            "选择题": [
                ["科目", "题型", "题目", "A", "B", "C", "D", "答案", "解析"],
                [
                    "地理",
                    "单选题",
                    "我国的首都是哪座城市？",
                    "北京",
                    "上海",
                    "广州",
                    "深圳",
                    "A",
                    "北京是首都。",
                ],
            ]
        },
    )
    (c,) = chunk(parse(path))
    assert (c.kind, c.question) == (Q, "我国的首都是哪座城市？")
    assert c.text == (
        "我国的首都是哪座城市？\nA. 北京\nB. 上海\nC. 广州\nD. 深圳\n答案：A\n解析：北京是首都。\n"
        "科目：地理\n题型：单选题"
    )


def test_data_sheet_is_a_table_split_between_rows_with_header_repeated(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Item", None, "Description", "Added"]]
    rows += [
        [
            f"item {i}",
            None,
            f"description of item number {i} with several words",
            dt.date(2024, 1, 1 + i % 28),
        ]
        for i in range(80)
    ]
    rows.insert(10, [None, None, None, None])
    path = write_xlsx(tmp_path / "inventory.xlsx", {"Inventory": rows, "Empty": []})
    parsed = parse(path)
    assert [b.kind for b in parsed.blocks] == [BlockKind.HEADING, BlockKind.TABLE]
    assert parsed.title == "Inventory"
    chunks = chunk(parsed, max_tokens=150)
    assert len(chunks) > 3 and all(c.kind is S for c in chunks)
    header = "| Item | Description | Added |\n|---|---|---|\n"
    assert all(c.text.startswith(header) and c.token_count <= 150 for c in chunks)
    body = [ln for c in chunks for ln in c.text.splitlines() if ln.startswith("| item")]
    assert (
        len(body) == 80
        and body[0] == "| item 0 | description of item number 0 with several words | 2024-01-01 |"
    )


def test_merged_cells_repeat_their_value(tmp_path: Path) -> None:
    rows = [["Team", "Member"], ["Platform", "Ana"], [None, "Bo"], ["Search", "Chen"]]
    path = write_xlsx(tmp_path / "teams.xlsx", {"Teams": rows}, merges={"Teams": ["A2:A3"]})
    (table,) = [b for b in parse(path).blocks if b.kind is BlockKind.TABLE]
    assert table.text.splitlines()[2:] == [
        "| Platform | Ana |",
        "| Platform | Bo |",
        "| Search | Chen |",
    ]


def test_csv_in_gbk_with_semicolons_and_quotes(tmp_path: Path) -> None:
    rows = [
        ["问题", "答案"],
        ["食堂几点开门？", "早上七点；周末八点"],
        ["停车怎么登记", '在前台填写"车辆登记表"'],
    ]
    path = write_csv(tmp_path / "faq.csv", rows, delimiter=";", encoding="gbk")
    chunks = chunk(parse(path))
    assert [(c.kind, c.question, c.heading_path) for c in chunks] == [
        (F, "食堂几点开门？", ()),
        (F, "停车怎么登记", ()),
    ]
    assert chunks[0].text == "食堂几点开门？\n答案：早上七点；周末八点"
    assert chunks[1].text.endswith('答案：在前台填写"车辆登记表"')


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_csv_data_table_with_sniffed_delimiter(tmp_path: Path, delimiter: str) -> None:
    rows = [
        ["host", "port", "note"],
        ["web-1", "7020", "front, public"],
        ["db-1", "5432", "private"],
    ]
    path = write_csv(tmp_path / "hosts.csv", rows, delimiter=delimiter)
    (c,) = chunk(parse(path))
    assert c.text == (
        "| host | port | note |\n|---|---|---|\n| web-1 | 7020 | front, public |\n| db-1 | 5432 | private |"
    )


def test_huge_sheet_is_refused_with_a_reason(tmp_path: Path) -> None:
    rows = [["id", "value"]] + [[i, f"v{i}"] for i in range(300)]
    path = write_xlsx(tmp_path / "huge.xlsx", {"Data": rows})
    with pytest.raises(IngestError) as err:
        parse_sheet(path, "xlsx", limits=SheetLimits(max_rows=200))
    assert err.value.reason == SHEET_TOO_MANY_ROWS.format(limit=200)
    with pytest.raises(IngestError) as err:
        parse_sheet(path, "xlsx", limits=SheetLimits(max_cells=100))
    assert err.value.reason == SHEET_TOO_MANY_CELLS.format(limit=100)
    csv_path = write_csv(tmp_path / "huge.csv", [[str(c) for c in r] for r in rows])
    with pytest.raises(IngestError, match="more than 200 rows"):
        parse_sheet(csv_path, "csv", limits=SheetLimits(max_rows=200))


def test_empty_and_mislabelled_sheets_are_refused(tmp_path: Path) -> None:
    empty = write_xlsx(tmp_path / "empty.xlsx", {"Sheet1": [[None, None]]})
    with pytest.raises(IngestError) as err:
        parse(empty)
    assert err.value.reason == SHEET_EMPTY
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes("这不是表格".encode())
    with pytest.raises(IngestError) as err:
        parse(fake)
    assert err.value.reason == NOT_AN_OFFICE_FILE.format(suffix=".xlsx", label="Excel")
    blank = tmp_path / "blank.csv"
    blank.write_bytes(b" ;\r\n;\r\n")
    with pytest.raises(IngestError) as err:
        parse(blank)
    assert err.value.reason == SHEET_EMPTY
