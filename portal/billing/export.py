"""CSV export of a usage report: stable column order, fixed decimals, same input -> same bytes.

Spreadsheets run a cell that starts with = + - @ (or a tab or CR) as a formula; such a name is written
with a leading apostrophe, which they show as text (OWASP's advice for CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from portal.billing.report import UsageRow

COLUMNS = ("user", "runtime_hours", "gpu_hours", "cpu_core_hours", "memory_gib_hours",
           "gpu_cost", "cpu_cost", "memory_cost", "total_cost", "currency")


def _text(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def report_csv(rows: Iterable[UsageRow], *, currency: str = "USD", key: str = "user") -> str:
    """``key``: the first column's name (user, gpu_model or namespace: what the report is grouped by)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((key, *COLUMNS[1:]))
    for row in sorted(rows, key=lambda r: r.user_name):
        writer.writerow([
            _text(row.user_name),
            *(f"{value:.4f}" for value in (row.runtime_hours, row.gpu_hours, row.cpu_core_hours,
                                            row.memory_gib_hours)),
            *(f"{value:.2f}" for value in (row.gpu_cost, row.cpu_cost, row.memory_cost, row.total_cost)),
            currency,
        ])
    return out.getvalue()
