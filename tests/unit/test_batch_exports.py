"""Batches results as data and files: flattening, aggregates, and the CSV, XLSX and PDF exports
read back with csv, openpyxl and pypdf."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
from pypdf import PdfReader

from batchops.services import batch_exports as exports

BATCH = {"batch_id": "batch_1", "name": "Q3 résumé ✓", "status": "completed", "created_at": "t0", "finished_at": "t1"}


def job(job_id: str, result: Any, status: str = "completed", error: dict[str, str] | None = None) -> dict[str, Any]:
    return {"id": job_id, "type": "http", "status": status, "duration_ms": 12, "result": result, "error": error}


def test_flatten_walks_dicts_and_lists() -> None:
    assert exports.flatten({"a": {"b": 1, "c": [2, {"d": 3}]}, "e": None}) == {
        "a.b": 1,
        "a.c.0": 2,
        "a.c.1.d": 3,
        "e": None,
    }
    assert exports.flatten(7) == {"value": 7}


def test_aggregate_counts_only_finite_non_boolean_numbers() -> None:
    found = exports.aggregate([{"s": 1, "ok": True, "t": "x"}, {"s": 3.5, "n": float("nan")}, {"s": "2"}])
    assert found == {"s": {"count": 2, "average": 2.25, "min": 1, "max": 3.5, "sum": 4.5}}


def test_table_has_fixed_columns_then_every_result_field() -> None:
    header, rows = exports.table([job("a", {"x": 1}), job("b", {"y": 2}, "failed", {"code": "E", "message": "m"})])
    assert header == ["job_id", "type", "status", "duration_ms", "error", "x", "y"]
    assert rows == [["a", "http", "completed", 12, "", 1, ""], ["b", "http", "failed", 12, "E: m", "", 2]]


def test_csv_reads_back_and_defuses_formulas() -> None:
    text = exports.to_csv([job("a", {"cmd": "=HYPERLINK(1)", "n": -3})]).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["job_id", "type", "status", "duration_ms", "error", "cmd", "n"]
    assert rows[1][5] == "'=HYPERLINK(1)" and rows[1][6] == "-3"


def test_xlsx_opens_with_openpyxl() -> None:
    results = [job("a", {"score": 4, "cmd": "=1+1"})]
    data = exports.to_xlsx(
        BATCH,
        exports.summary_of(results, partial=False, duration_seconds=1.0),
        exports.aggregate([{"score": 4}]),
        results,
    )
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Jobs", "Summary", "Metrics"]
    sheet = book["Jobs"]
    assert [c.value for c in sheet[1]] == ["job_id", "type", "status", "duration_ms", "error", "score", "cmd"]
    assert sheet["F2"].value == 4 and sheet["F2"].data_type == "n"
    assert sheet["G2"].value == "=1+1" and sheet["G2"].data_type == "s"
    assert book["Metrics"]["A2"].value == "score"


def test_pdf_text_names_the_batch_jobs_and_metrics_and_spans_pages() -> None:
    results = [job(f"job_{n}", {"score": n}) for n in range(1000)]
    data = exports.to_pdf(
        BATCH,
        exports.summary_of(results, partial=False, duration_seconds=None),
        exports.aggregate(r["result"] for r in results),
        results,
    )
    reader = PdfReader(io.BytesIO(data))
    first = reader.pages[0].extract_text()
    assert "Batch report: Q3 r" in first and "score" in first and "job_0" in first
    assert len(reader.pages) > 1


def test_render_refuses_unknown_formats() -> None:
    try:
        exports.render("zip", BATCH, {}, {}, [])
    except ValueError as error:
        assert "zip" in str(error)
    else:
        raise AssertionError("zip was rendered")
