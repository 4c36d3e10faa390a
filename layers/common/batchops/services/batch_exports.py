"""A batch's results as data: flattened fields, aggregated metrics, and the CSV, XLSX and PDF
exports. Pure functions (no AWS); XlsxWriter and fpdf2 are imported only when a file is made."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import Any

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
BASE_COLUMNS = ["job_id", "type", "status", "duration_ms", "error"]
# OWASP CSV injection: a spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PDF_CELL_CHARS = 40


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths of every scalar leaf (list items by index); a bare scalar is `value`."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for n, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{n}" if prefix else str(n)))
        return out
    return {prefix or "value": value}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def aggregate(results: Iterable[Any]) -> dict[str, dict[str, float | int]]:
    """count, average, min, max and sum of every numeric (non-boolean) field, by dotted path."""
    seen: dict[str, list[float | int]] = {}
    for result in results:
        for path, value in flatten(result).items():
            if _number(value):
                seen.setdefault(path, []).append(value)
    return {
        path: {"count": len(v), "average": sum(v) / len(v), "min": min(v), "max": max(v), "sum": sum(v)}
        for path, v in sorted(seen.items())
    }


def summary_of(job_results: list[dict[str, Any]], *, partial: bool, duration_seconds: float | None) -> dict[str, Any]:
    def count(status: str) -> int:
        return sum(1 for j in job_results if j["status"] == status)

    return {
        "jobs_total": len(job_results),
        "completed": count("completed"),
        "failed": count("failed"),
        "cancelled": count("cancelled"),
        "timed_out": count("timed_out"),
        "duration_seconds": duration_seconds,
        "partial": partial,
    }


def _error_text(error: dict[str, Any] | None) -> str:
    return f"{error.get('code')}: {error.get('message')}" if error else ""


def table(job_results: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """One row per job: the fixed columns, then one per flattened result field (first seen first)."""
    flat = [flatten(j["result"]) if j.get("result") is not None else {} for j in job_results]
    fields: dict[str, None] = {}
    for row in flat:
        fields.update(dict.fromkeys(row))
    header = BASE_COLUMNS + list(fields)
    rows = []
    for job, values in zip(job_results, flat, strict=True):
        base = [job["id"], job["type"], job["status"], job.get("duration_ms"), _error_text(job.get("error"))]
        cells = base + [values.get(f) for f in fields]
        rows.append(["" if c is None else c for c in cells])
    return header, rows


def _safe(cell: Any) -> Any:
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def to_csv(job_results: list[dict[str, Any]]) -> bytes:
    header, rows = table(job_results)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_safe(h) for h in header])
    writer.writerows([[_safe(c) for c in row] for row in rows])
    return buffer.getvalue().encode("utf-8")


def to_xlsx(
    batch: dict[str, Any], summary: dict[str, Any], aggregated: dict[str, Any], job_results: list[dict[str, Any]]
) -> bytes:
    import xlsxwriter  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    bold = book.add_format({"bold": True})

    def write(sheet: Any, row: int, col: int, value: Any) -> None:
        # Strings stay strings: a cell starting with "=" must never become a formula.
        if isinstance(value, bool):
            sheet.write_boolean(row, col, value)
        elif _number(value):
            sheet.write_number(row, col, value)
        else:
            sheet.write_string(row, col, "" if value is None else str(value))

    jobs = book.add_worksheet("Jobs")
    header, rows = table(job_results)
    for c, name in enumerate(header):
        jobs.write_string(0, c, name, bold)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            write(jobs, r, c, value)
    jobs.freeze_panes(1, 0)
    summary_sheet = book.add_worksheet("Summary")
    for r, (key, value) in enumerate([*batch.items(), *summary.items()]):
        summary_sheet.write_string(r, 0, str(key), bold)
        write(summary_sheet, r, 1, value)
    metrics = book.add_worksheet("Metrics")
    columns = ["field", "count", "average", "min", "max", "sum"]
    for c, name in enumerate(columns):
        metrics.write_string(0, c, name, bold)
    for r, (path, values) in enumerate(aggregated.items(), start=1):
        write(metrics, r, 0, path)
        for c, name in enumerate(columns[1:], start=1):
            write(metrics, r, c, values[name])
    book.close()
    return buffer.getvalue()


def _latin1(text: Any, limit: int = PDF_CELL_CHARS) -> str:
    # The PDF core fonts are latin-1 only.
    value = "" if text is None else str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "~"
    return value.encode("latin-1", errors="replace").decode("latin-1")


def to_pdf(
    batch: dict[str, Any], summary: dict[str, Any], aggregated: dict[str, Any], job_results: list[dict[str, Any]]
) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="L")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Batch report: {batch.get('name')}", 120), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for key in ("batch_id", "status", "created_at", "finished_at"):
        pdf.cell(0, 6, _latin1(f"{key}: {batch.get(key)}", 200), new_x="LMARGIN", new_y="NEXT")
    for key, value in summary.items():
        pdf.cell(0, 6, _latin1(f"{key}: {value}", 200), new_x="LMARGIN", new_y="NEXT")

    def grid(title: str, header: list[str], rows: list[list[Any]], widths: list[float]) -> None:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "B", 9)
        for name, width in zip(header, widths, strict=True):
            pdf.cell(width, 6, name, border=1)
        pdf.ln()
        pdf.set_font("Helvetica", size=9)
        for row in rows:
            for value, width in zip(row, widths, strict=True):
                pdf.cell(width, 6, _latin1(value, max(4, int(width / 2))), border=1)
            pdf.ln()

    metric_rows = [[p, v["count"], round(v["average"], 4), v["min"], v["max"], v["sum"]] for p, v in aggregated.items()]
    grid(
        "Aggregated metrics", ["field", "count", "average", "min", "max", "sum"], metric_rows, [90, 30, 40, 35, 35, 40]
    )
    job_rows = [
        [j["id"], j["type"], j["status"], j.get("duration_ms"), _error_text(j.get("error"))] for j in job_results
    ]
    grid("Jobs", BASE_COLUMNS, job_rows, [60, 45, 30, 30, 105])
    return bytes(pdf.output())


def render(
    fmt: str,
    batch: dict[str, Any],
    summary: dict[str, Any],
    aggregated: dict[str, Any],
    job_results: list[dict[str, Any]],
) -> bytes:
    if fmt == "csv":
        return to_csv(job_results)
    if fmt == "xlsx":
        return to_xlsx(batch, summary, aggregated, job_results)
    if fmt == "pdf":
        return to_pdf(batch, summary, aggregated, job_results)
    raise ValueError(f"no export format {fmt!r}")
