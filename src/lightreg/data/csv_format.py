"""The form of a CSV file: its text (UTF-8, a byte-order mark dropped), its delimiter (given by name or sniffed from
the first lines), its rows with their line numbers, and a header whose column names are unique."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from lightreg.errors import UserError, listed

SNIFFED = (",", ";", "\t", "|")
"""The delimiters tried when none is given, in order of preference."""
SNIFF_ROWS = 5
"""Rows after the header that must have the header's cell count for a sniffed delimiter."""
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
"""Names a command line can carry: ``data.delimiter='\\t'`` reaches Hydra as the two characters backslash-t,
``data.delimiter=;`` is a Hydra syntax error and a real TAB or space is stripped to an empty string."""


def resolve_delimiter(value: object) -> str | None:
    """The one-character delimiter ``value`` stands for: itself, or a name of :data:`DELIMITER_NAMES`
    (case-insensitive); ``None`` (sniff it) stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) == 1 and value not in '"\r\n':
            return value
        if value.lower() in DELIMITER_NAMES:
            return DELIMITER_NAMES[value.lower()]
    raise UserError(
        f"data.delimiter must be one character or a name: {', '.join(DELIMITER_NAMES)} (or null to sniff it among "
        f", ; TAB |), got {value!r}; e.g. data.delimiter=tab or data.delimiter=semicolon"
    )


def read_text(path: Path) -> str:
    """The text of ``path`` decoded as UTF-8; a leading byte-order mark (Excel's "CSV UTF-8") is dropped, so it
    never ends up in the first column's name."""
    if not path.is_file():
        raise UserError(f"CSV file not found: {str(path)!r} (set data.train_path / data.val_path to an existing file)")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); save it as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {path.name} > utf8.csv"
        ) from None


def _blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def _first_rows(text: str, sep: str, n: int) -> list[list[str]]:
    rows = (row for row in csv.reader(io.StringIO(text), delimiter=sep) if not _blank(row))
    try:
        return list(islice(rows, n))
    except csv.Error:
        return []


def sniff_delimiter(text: str) -> str:
    """The delimiter among ``, ; TAB |`` that splits the header into the most cells (more than one) and gives the
    header's cell count on the next :data:`SNIFF_ROWS` rows; without one that does, the one that splits the header
    most (the row-length check then names the bad line), else a comma. Reads only the first rows, so a table with
    thousands of columns is sniffed as fast as a narrow one."""
    consistent, split = [], []
    for sep in SNIFFED:
        rows = _first_rows(text, sep, SNIFF_ROWS + 1)
        cells = len(rows[0]) if rows else 0
        if cells > 1:
            split.append((cells, sep))
            if all(len(row) == cells for row in rows[1:]):
                consistent.append((cells, sep))
    found = consistent or split
    return max(found, key=lambda pair: pair[0])[1] if found else ","


def read_rows(path: Path, text: str, sep: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header's column names (stripped, unique) and the non-blank data rows, each with its file line number."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    rows: Iterator[tuple[int, list[str]]] = ((reader.line_num, row) for row in reader)
    try:
        numbered = [(line, row) for line, row in rows if not _blank(row)]
    except csv.Error as exc:
        raise UserError(f"{path} line {reader.line_num} cannot be read as CSV (delimiter {sep!r}): {exc}") from None
    if not numbered:
        raise UserError(f"{path} is empty: it needs a header row and at least one data row")
    header = [name.strip() for name in numbered[0][1]]
    _check_unique(path, header)
    return header, numbered[1:]


def _check_unique(path: Path, header: list[str]) -> None:
    """A column name used twice (two ``y`` columns, a name repeated by a join) is refused: reading the first one
    silently would train on a column the user may not mean."""
    positions: dict[str, list[int]] = {}
    for j, name in enumerate(header, start=1):
        positions.setdefault(name, []).append(j)
    repeated = [f"{name!r} (columns {', '.join(map(str, js))})" for name, js in positions.items() if len(js) > 1]
    if repeated:
        raise UserError(
            f"{path} has {len(repeated)} duplicated column name(s) in its header: {listed(repeated)}; "
            "rename them so that each column has its own name"
        )


__all__ = ["DELIMITER_NAMES", "SNIFFED", "read_rows", "read_text", "resolve_delimiter", "sniff_delimiter"]


def columns_by_name(header: Sequence[str], names: Sequence[str]) -> tuple[list[int], list[str]]:
    """The header positions of ``names`` in their order (columns are matched by name, in any order in the file) and
    the names the header lacks; positions are given only when none is lacking."""
    position = {h: j for j, h in enumerate(header)}
    absent = [n for n in names if n not in position]
    return ([] if absent else [position[n] for n in names]), absent
