"""The bad-input corpus: whatever a producer delivers, a batch lands correctly or is quarantined
with a reason naming its file; nothing raises out of `ingest_file`, and nothing is lost (a
quarantined batch leaves no metrics, and the good batch it would have replaced stays in force).

Decided behaviours, each asserted by an example below and relied on by the properties:

- Encodings. A UTF-8 byte-order mark is skipped and the batch lands. UTF-16 or UTF-32 (with a
  byte-order mark, or UTF-16 without one: NULs in the first line) and latin-1 text are
  quarantined as "not UTF-8". They are refused rather than decoded: the contract's encoding is
  UTF-8 (JSON lines require it), a producer that switched encodings changed its export and
  should hear about it, and latin-1 can't be told from UTF-8 reliably, so decoding only the
  self-declaring UTF-16 would make the rule depend on luck.
- NUL bytes in a value are quarantined, naming the column and row (an escaped \u0000 in JSON
  too): PostgreSQL can't store them in text, and a run of them is what a file caught mid-write
  looks like. Reasons quoting such bytes are stored escaped.
- NaN and infinities. In CSV, "NaN", "nan" and an empty field are nulls; "inf", "-inf",
  "Infinity", "INF", "+inf" are present values counted in `infinite` (and left out of min, max,
  mean). JSON is typed: the NaN / Infinity literals Python writes land (NaN as null), while the
  strings "NaN" or "inf" in a float column are quarantined.
- Null spellings ("NA", "NULL", "None", "NaN", ...) are nulls in a CSV string column; in JSON a
  string is a string, only null is null.
- Embedded newlines and quotes (RFC 4180), CRLF, CR-only line ends, blank JSON lines, reordered
  columns and 1 MB fields land.
- Mixed types in a column, ragged rows, duplicated or unnamed header columns (a trailing
  delimiter on every line is one), duplicated or unexpected JSON keys, a column absent from the
  whole batch, zero rows: quarantined with the column or row named. A JSON key absent from some
  lines only is null there.
- 2,000 columns land; a batch lacking some is quarantined with a reason that lists the first 20
  and counts the rest, so it stays readable and within the stored length.
"""
from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from monitors.contract import ColumnSpec, Contract
from monitors.intake import readers
from monitors.intake.ingest import MAX_REASON, ingest_file
from monitors.intake.readers import NULL_STRINGS, read_jsonl
from store import queries
from store.models import Dataset

DAY = dt.date(2026, 3, 2)
NAMES = ["id", "amount", "country", "paid"]
CONTRACT = Contract(columns=[
    ColumnSpec(name="id", type="integer", nullable=False),
    ColumnSpec(name="amount", type="float"),
    ColumnSpec(name="country", type="string"),
    ColumnSpec(name="paid", type="boolean"),
])
GOOD_CSV = "id,amount,country,paid\n1,10.5,ES,true\n2,,FR,false\n"
MB = 1 << 20

# each store is one test function's; examples share it, each with a dataset of its own
PROPERTY = settings(max_examples=80, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])
_numbers = itertools.count()


# --- what a generated batch holds and what must become of it -----------------------------


@dataclass
class Delivery:
    name: str
    content: bytes = b""
    rows: int = 0
    amount_nulls: int = 0
    amount_infinite: int = 0
    country_nulls: int = 0
    # None: the batch must land; else what its quarantine reason must contain ("a|b": either)
    refused: str | None = None
    defect: str = "none"


amounts = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([math.inf, -math.inf, math.nan]),
)
# any text but NUL (the utf-8 codec already rules out lone surrogates): the defects add those
country_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
rows_strategy = st.lists(
    st.tuples(st.integers(-2**63, 2**63 - 1), amounts, st.one_of(st.none(), country_text),
              st.one_of(st.none(), st.booleans())),
    min_size=0, max_size=12)
CSV_DEFECTS = ["mixed type", "ragged", "nul value", "nul number", "duplicated header",
               "empty header", "trailing delimiter", "missing column", "null id", "not utf-8",
               "utf-16"]
JSONL_DEFECTS = ["mixed type", "nan string", "nul value", "duplicated key", "extra key",
                 "missing key", "not utf-8", "utf-16", "truncated"]


def _count(batch: Delivery, amounts_found: list[float | None]) -> None:
    batch.amount_nulls = sum(a is None or math.isnan(a) for a in amounts_found)
    batch.amount_infinite = sum(a is not None and math.isinf(a) for a in amounts_found)


def _amount_text(value: float | None, spellings: dict[str, str]) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return spellings["nan"]
    if math.isinf(value):
        return spellings["inf"] if value > 0 else "-" + spellings["inf"].lstrip("+")
    return repr(value)


def _csv_field(value: str) -> str:
    # RFC 4180 quoting; Python's csv module leaves a lone CR unquoted, which no reader survives
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_batches(draw) -> Delivery:
    rows = draw(rows_strategy)
    batch = Delivery(name=f"b{next(_numbers)}.csv", rows=len(rows))
    if rows and draw(st.booleans()):
        # a 1 MB field, with the quotes and newlines that force quoting
        at = draw(st.integers(0, len(rows) - 1))
        rows[at] = (rows[at][0], rows[at][1], 'say "hi"\r\n' * (MB // 10), rows[at][3])
    _count(batch, [a for _, a, _, _ in rows])
    batch.country_nulls = sum(c is None or c in NULL_STRINGS for _, _, c, _ in rows)
    spellings = {"nan": draw(st.sampled_from(["NaN", "nan", ""])),
                 "inf": draw(st.sampled_from(["inf", "Infinity", "INF", "+inf"]))}
    order = list(draw(st.permutations(NAMES)))  # a reordering is no breach
    header = list(order)
    lines = [[{"id": str(i), "amount": _amount_text(a, spellings), "country": "" if c is None else c,
               "paid": "" if p is None else draw(st.sampled_from([str(p), str(p).lower(), str(int(p))]))}[n]
              for n in order] for i, a, c, p in rows]
    batch.defect = defect = draw(st.sampled_from(["none"] * 4 + CSV_DEFECTS))
    if not rows:
        batch.refused = "no rows"
    row = draw(st.integers(0, len(rows) - 1)) if rows else None
    # header defects come first (the header is checked before any row); row defects need rows
    if defect == "mixed type" and rows:
        column = draw(st.sampled_from(["id", "amount", "paid"]))
        lines[row][order.index(column)] = draw(st.sampled_from(["x1", "1.5", "yes"]))
        if not (column == "amount" and lines[row][order.index(column)] == "1.5"):
            batch.refused = f"column {column!r}"
        else:
            batch.defect, values = "none", [a for _, a, _, _ in rows]
            values[row] = 1.5
            _count(batch, values)
    elif defect == "ragged" and rows:
        lines[row].append("extra") if draw(st.booleans()) else lines[row].pop()
        batch.refused = "Expected 4 columns"
    elif defect == "nul value" and rows:
        lines[row][order.index("country")] += "\x00"
        batch.refused = "NUL byte"
    elif defect == "nul number" and rows:
        lines[row][order.index("id")] += "\x00"
        batch.refused = "column 'id'"
    elif defect == "duplicated header":
        header[draw(st.integers(0, 3))] = header[draw(st.integers(0, 3))]
        if len(set(header)) < 4:
            batch.refused = "duplicated column(s)"
    elif defect == "empty header":
        header[draw(st.integers(0, 3))] = ""
        batch.refused = "without a name"
    elif defect == "trailing delimiter":
        for line in [header, *lines]:
            line.append("")
        batch.refused = "trailing delimiter?"
    elif defect == "missing column":
        gone = draw(st.integers(0, 3))
        for line in [header, *lines]:
            line.pop(gone)
        batch.refused = f"missing column(s) {order[gone]}"
    elif defect == "null id" and rows:
        lines[row][order.index("id")] = ""
        batch.refused = "declared not null"
    elif defect == "not utf-8":
        # a latin-1 'ñ' in one more row (a lone surrogate encodes back to the raw byte)
        lines.append([{"id": "9", "amount": "2.5", "country": "Espa\udcf1a", "paid": "true"}[n]
                      for n in order])
        batch.refused = "UTF-8"
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = "".join(",".join(_csv_field(v) for v in line) + newline for line in [header, *lines])
    if defect == "utf-16":
        batch.content, batch.refused = text.encode("utf-16"), "UTF-16"
    else:
        batch.content = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])), "surrogateescape")
    return batch


@st.composite
def jsonl_batches(draw) -> Delivery:
    rows = draw(rows_strategy)
    batch = Delivery(name=f"b{next(_numbers)}.jsonl", rows=len(rows))
    records = [{"id": i, "amount": a, "country": c, "paid": p} for i, a, c, p in rows]
    if rows and draw(st.booleans()):
        records[draw(st.integers(0, len(rows) - 1))]["country"] = "z" * MB
    if len(rows) > 1 and draw(st.booleans()):
        # a key absent from some lines (never all) reads as null there
        for record in draw(st.lists(st.sampled_from(records[1:]), unique_by=id)):
            record.pop("amount")
    _count(batch, [r.get("amount") for r in records])
    batch.country_nulls = sum(r["country"] is None for r in records)
    lines = [json.dumps(r) for r in records]  # NaN and ±Infinity bare, as Python writes them
    batch.defect = defect = draw(st.sampled_from(["none"] * 4 + JSONL_DEFECTS))
    if not rows:
        batch.refused = "empty file"
    row = draw(st.integers(0, len(rows) - 1)) if rows else None
    if defect == "mixed type" and rows:
        lines[row] = json.dumps({**records[row], "id": "x1"})
        batch.refused = "Column(/id)|column 'id'"  # within a block, or a block of its own
    elif defect == "nan string" and rows:
        lines[row] = json.dumps({**records[row], "amount": draw(st.sampled_from(["NaN", "inf"]))})
        batch.refused = "Column(/amount)|column 'amount'"
    elif defect == "nul value" and rows:
        lines[row] = json.dumps({**records[row], "country": "a\x00b"})
        batch.refused = "NUL byte"
    elif defect == "duplicated key" and rows:
        lines[row] = lines[row][:-1] + ', "id": 5}'
        batch.refused = "specified twice"
    elif defect == "extra key" and rows:
        lines[row] = json.dumps({**records[row], "vip": 1})
        batch.refused = "unexpected column(s) vip"
    elif defect == "missing key" and rows:
        lines = [json.dumps({k: v for k, v in r.items() if k != "country"}) for r in records]
        batch.refused = "missing column(s) country"
    elif defect == "truncated" and rows:
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
        batch.refused = "not valid JSON lines"
    elif defect == "not utf-8" and rows:
        lines[row] = json.dumps({**records[row], "country": "Espa\udcf1a"}, ensure_ascii=False)
        batch.refused = "UTF-8"
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 3]))
    if defect == "utf-16":
        batch.content, batch.refused = text.encode("utf-16"), "UTF-16"
    else:
        batch.content = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])), "surrogateescape")
    return batch


# --- landing one generated batch over an earlier good one ------------------------------------


def _new_dataset(sessions, tmp_path) -> int:
    with sessions.begin() as session:
        dataset = Dataset(name=f"bad{next(_numbers)}", format="csv", source=str(tmp_path),
                          contract=CONTRACT.to_json())
        session.add(dataset)
        session.flush()
        return dataset.id


def _ingest(sessions, dataset_id, path):
    with sessions.begin() as session:
        return ingest_file(session, session.get(Dataset, dataset_id), path, DAY)


def _metric(sessions, dataset_id, metric, column=None) -> float:
    with sessions() as session:
        series = queries.read_metric_series(session, dataset_id, metric, column)
    assert len(series) == 1, f"{metric} {column}: {series.tolist()}"
    return series.iloc[0]


def check_lands_or_is_quarantined(sessions, tmp_path, batch: Delivery) -> None:
    dataset_id = _new_dataset(sessions, tmp_path)
    good_path = tmp_path / f"good{next(_numbers)}.csv"
    good_path.write_text(GOOD_CSV)
    good = _ingest(sessions, dataset_id, good_path)
    path = tmp_path / batch.name
    path.write_bytes(batch.content)

    outcome = _ingest(sessions, dataset_id, path)  # nothing may raise out of it
    event(f"{batch.defect}: {outcome.status}")

    with sessions() as session:
        current = queries.get_current_batch(session, dataset_id, DAY)
        new_metrics = queries.count_metrics(session, outcome.batch_id)
        good_metrics = queries.count_metrics(session, good.batch_id)
    if batch.refused is None:
        assert outcome.status == "ingested", f"{batch.defect}: {outcome.reason}"
        assert outcome.rows == batch.rows
        assert current.id == outcome.batch_id and good_metrics == 0 < new_metrics
        assert _metric(sessions, dataset_id, "row_count") == batch.rows
        assert _metric(sessions, dataset_id, "nulls", "amount") == batch.amount_nulls
        assert _metric(sessions, dataset_id, "infinite", "amount") == batch.amount_infinite
        assert _metric(sessions, dataset_id, "nulls", "country") == batch.country_nulls
    else:
        assert outcome.status == "quarantined", f"expected {batch.refused!r} ({batch.defect})"
        assert outcome.reason.startswith(batch.name + ":")
        assert any(part in outcome.reason for part in batch.refused.split("|")), (
            batch.defect, outcome.reason[:300])
        assert len(outcome.reason) <= MAX_REASON
        assert new_metrics == 0
        assert current.id == good.batch_id and good_metrics > 0
        assert _metric(sessions, dataset_id, "row_count") == 2


@PROPERTY
@given(batch=csv_batches())
def test_any_csv_batch_lands_correctly_or_is_quarantined_with_a_reason(sessions, tmp_path, batch):
    check_lands_or_is_quarantined(sessions, tmp_path, batch)


@PROPERTY
@given(batch=jsonl_batches(), block_bytes=st.sampled_from([64, 4096, None]))
def test_any_jsonl_batch_lands_correctly_or_is_quarantined_with_a_reason(
        sessions, tmp_path, monkeypatch, batch, block_bytes):
    # small blocks put sparse keys, type inference and row numbers across block boundaries
    monkeypatch.setattr(readers, "CHUNK_BYTES", block_bytes or (8 << 20))
    check_lands_or_is_quarantined(sessions, tmp_path, batch)


# --- the decided behaviours, one example each ------------------------------------------------

HEADER = "id,amount,country,paid\n"
JSON_ROW = '{"id": 1, "amount": 1.5, "country": "ES", "paid": true}\n'
LANDS = {
    "b.csv: utf-8 byte-order mark": (
        "\ufeff" + HEADER + "1,1.5,ES,true\n", {("row_count", None): 1, ("freq", "country", "ES"): 1}),
    "b.csv: nan spellings and an empty field are nulls": (
        HEADER + "1,NaN,ES,true\n2,nan,ES,true\n3,,ES,true\n4,1,ES,true\n",
        {("nulls", "amount"): 3, ("count", "amount"): 1}),
    "b.csv: infinities are present values, counted apart": (
        HEADER + "1,inf,ES,true\n2,-inf,ES,true\n3,Infinity,ES,true\n4,INF,ES,true\n"
        "5,+inf,ES,true\n6,2,ES,true\n",
        {("count", "amount"): 6, ("infinite", "amount"): 5, ("max", "amount"): 2}),
    "b.csv: the null spellings are nulls in a string column too": (
        HEADER + "1,1,NaN,true\n2,1,None,true\n3,1,NULL,true\n4,1,ES,true\n",
        {("nulls", "country"): 3}),
    "b.csv: embedded newlines, quotes and CRLF": (
        'id,amount,country,paid\r\n1,1,"a ""b"",\r\nc",true\r\n2,1,"x\ny",false\r\n',
        {("row_count", None): 2, ("freq", "country", 'a "b",\r\nc'): 1}),
    "b.csv: CR line ends": ("id,amount,country,paid\r1,1,ES,true\r", {("row_count", None): 1}),
    "b.csv: a 1 MB field": (
        HEADER + "1,1," + "x" * MB + ",true\n2,1,ES,false\n", {("row_count", None): 2}),
    "b.csv: a reordered header": ("paid,country,amount,id\ntrue,ES,1.5,1\n", {("max", "amount"): 1.5}),
    "b.jsonl: utf-8 byte-order mark": ("\ufeff" + JSON_ROW, {("row_count", None): 1}),
    "b.jsonl: NaN and Infinity literals": (
        '{"id": 1, "amount": NaN}\n{"id": 2, "amount": Infinity}\n{"id": 3, "amount": -Infinity}\n'
        '{"id": 4, "amount": 2, "country": "ES", "paid": false}\n',
        {("nulls", "amount"): 1, ("infinite", "amount"): 2, ("max", "amount"): 2}),
    "b.jsonl: strings spelled like nulls are strings": (
        '{"id": 1, "amount": 1, "country": "NaN", "paid": null}\n{"id": 2, "country": null}\n',
        {("nulls", "country"): 1, ("freq", "country", "NaN"): 1}),
    "b.jsonl: CRLF and blank lines": ("\r\n" + JSON_ROW.replace("\n", "\r\n") * 2 + "\r\n\r\n",
                                      {("row_count", None): 2}),
    "b.jsonl: a key absent from some lines is null there": (
        JSON_ROW + '{"id": 2, "amount": 2.5}\n', {("nulls", "country"): 1, ("nulls", "paid"): 1}),
    "b.jsonl: a key null on every line": (
        '{"id": 1, "amount": null, "country": null, "paid": null}\n', {("nulls", "amount"): 1}),
    "b.jsonl: text that looks like a date stays text": (
        '{"id": 1, "amount": 1, "country": "2026-03-02", "paid": true}\n',
        {("freq", "country", "2026-03-02"): 1}),
    "b.jsonl: a 1 MB value": (
        JSON_ROW + json.dumps({"id": 2, "country": "y" * MB}) + "\n", {("row_count", None): 2}),
}
REFUSED = {
    "b.csv: utf-16 with its byte-order mark": ((HEADER + "1,1,ES,true\n").encode("utf-16"),
                                              "not UTF-8: it starts with a UTF-16 LE byte-order mark"),
    "b.csv: utf-16 big-endian": ((HEADER + "1,1,ES,true\n").encode("utf-16-be").join(
        [b"\xfe\xff", b""]), "UTF-16 BE"),
    "b.csv: utf-16 without a byte-order mark": ((HEADER + "1,1,ES,true\n").encode("utf-16-le"),
                                               "NUL bytes in the first line"),
    "b.csv: a latin-1 header": ("id,amount,pa\xeds,paid\n1,1,ES,true\n".encode("latin-1"),
                                "the header is not UTF-8"),
    "b.csv: latin-1 text": ((HEADER + "1,1,Espa\xf1a,true\n").encode("latin-1"), "not UTF-8"),
    "b.csv: a NUL byte in a value": (HEADER + "1,1,E\x00S,true\n",
                                     "column 'country' holds a NUL byte at data row 1"),
    "b.csv: a zero-filled tail (caught mid-write)": ("id,amount,paid,country\n1,1,true,ES\n2,1,false,F" + "\x00" * 64,
                                                    "NUL byte at data row 2"),
    "b.csv: a NUL byte in a number": (HEADER + "1\x00,1,ES,true\n", "column 'id'"),
    "b.csv: mixed types in a column": (HEADER + "1,1,ES,true\n2,abc,FR,false\n", "column 'amount'"),
    "b.csv: an empty header name": ("id,,country,paid\n1,1,ES,true\n",
                                    "column(s) without a name at position(s) 2"),
    "b.csv: a trailing delimiter": ("id,amount,country,paid,\n1,1,ES,true,\n", "(a trailing delimiter?)"),
    "b.csv: a short row": (HEADER + "1,1,ES\n", "Expected 4 columns, got 3"),
    "b.csv: a header only": (HEADER, "no rows"),
    "b.csv: a lone newline": ("\n", "empty file"),
    "b.jsonl: utf-16": (JSON_ROW.encode("utf-16"), "UTF-16 LE byte-order mark"),
    "b.jsonl: latin-1 text": (JSON_ROW.replace("ES", "Espa\xf1a").encode("latin-1"),
                              "text that is not UTF-8"),
    "b.jsonl: an escaped NUL": (JSON_ROW.replace("ES", "E\\u0000S"), "holds a NUL byte at data row 1"),
    "b.jsonl: a number as a string": (JSON_ROW.replace("1.5", '"NaN"'),
                                      "column 'amount': expected float, found string"),
    "b.jsonl: mixed types in a key": (JSON_ROW + JSON_ROW.replace("1.5", '"abc"'),
                                      "Column(/amount) changed from number to string in data row 2"),
    "b.jsonl: a duplicated key": (JSON_ROW.replace("}", ', "id": 2}'), "specified twice"),
    "b.jsonl: an empty key": (JSON_ROW.replace("}", ', "": 2}'), "without a name"),
    "b.jsonl: an unexpected key": (JSON_ROW.replace("}", ', "vip": 2}'), "unexpected column(s) vip"),
    "b.jsonl: a key absent from every line": ('{"id": 1, "amount": 1, "paid": true}\n',
                                             "missing column(s) country"),
    "b.jsonl: a not-null key absent": ('{"amount": 1, "country": "ES", "paid": true}\n',
                                      "missing column(s) id"),
    "b.jsonl: cut mid-line": (JSON_ROW + JSON_ROW[:20], "not valid JSON lines"),
    "b.jsonl: blank lines only": ("\n\n", "empty file (no rows)"),
    "b.jsonl.gz: cut mid-stream": (gzip.compress(JSON_ROW.encode() * 5000)[:300],
                                   "unreadable after data row"),
    "b.jsonl: an array, not an object": ("[1, 2]\n", "not valid JSON lines"),
}


def _ingest_example(sessions, tmp_path, name: str, content: str | bytes):
    path = tmp_path / name.split(":")[0]
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    dataset_id = _new_dataset(sessions, tmp_path)
    return dataset_id, _ingest(sessions, dataset_id, path)


@pytest.mark.parametrize("case", sorted(LANDS))
def test_odd_but_valid_input_lands_with_its_profile(sessions, tmp_path, case):
    content, expected = LANDS[case]
    dataset_id, outcome = _ingest_example(sessions, tmp_path, case, content)
    assert outcome.status == "ingested", outcome.reason
    with sessions() as session:
        for (metric, column, *key), value in expected.items():
            series = queries.read_metric_series(session, dataset_id, metric, column, *key)
            assert series.tolist() == [value], (metric, column, key)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_input_is_quarantined_with_a_reason_naming_the_file(sessions, tmp_path, case):
    content, expected_reason = REFUSED[case]
    _, outcome = _ingest_example(sessions, tmp_path, case, content)
    assert outcome.status == "quarantined"
    assert outcome.reason.startswith(case.split(":")[0] + ": ")
    assert expected_reason in outcome.reason
    assert "\x00" not in outcome.reason  # stored as text on PostgreSQL too
    with sessions() as session:
        assert queries.count_metrics(session, outcome.batch_id) == 0


# --- thousands of columns --------------------------------------------------------------------

WIDE = Contract(columns=[ColumnSpec(name=f"c{i:04d}", type=["integer", "float", "string", "boolean"][i % 4])
                         for i in range(2000)])
WIDE_VALUES = {"integer": "7", "float": "2.5", "string": "x", "boolean": "true"}


def _wide_dataset(sessions, tmp_path) -> int:
    with sessions.begin() as session:
        dataset = Dataset(name=f"wide{next(_numbers)}", format="csv", source=str(tmp_path),
                          contract=WIDE.to_json())
        session.add(dataset)
        session.flush()
        return dataset.id


def _wide_csv(columns) -> str:
    row = ",".join(WIDE_VALUES[c.type] for c in columns)
    return ",".join(c.name for c in columns) + "\n" + (row + "\n") * 3


def test_a_batch_of_2000_columns_lands(sessions, tmp_path):
    dataset_id = _wide_dataset(sessions, tmp_path)
    path = tmp_path / "wide.csv"
    path.write_text(_wide_csv(WIDE.columns))
    outcome = _ingest(sessions, dataset_id, path)
    assert (outcome.status, outcome.rows) == ("ingested", 3), outcome.reason
    assert _metric(sessions, dataset_id, "column_count") == 2000
    assert _metric(sessions, dataset_id, "mean", "c1996") == 7.0


@pytest.mark.parametrize("name", ["wide.csv", "wide.jsonl"])
def test_a_batch_lacking_some_of_2000_columns_is_quarantined_with_a_bounded_reason(
        sessions, tmp_path, name):
    dataset_id = _wide_dataset(sessions, tmp_path)
    lacking = [c for c in WIDE.columns if c.name not in {f"c{i:04d}" for i in range(100, 130)}]
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text(_wide_csv(lacking))
    else:
        path.write_text(json.dumps({c.name: "x" if c.type == "string" else json.loads(WIDE_VALUES[c.type])
                                    for c in lacking}) + "\n")
    outcome = _ingest(sessions, dataset_id, path)
    assert outcome.status == "quarantined"
    assert outcome.reason.startswith(f"{name}: missing column(s) c0100, c0101,")
    assert "and 10 more" in outcome.reason and len(outcome.reason) < MAX_REASON


# --- JSON lines in bounded memory ------------------------------------------------------------


def _jsonl_rows(n: int) -> str:
    return "".join(json.dumps({"id": i, "amount": None if i % 7 == 0 else i / 4,
                               "country": ["ES", "FR", "2026-03-02"][i % 3], "paid": i % 2 == 0}) + "\n"
                   for i in range(n))


def test_a_jsonl_file_with_many_rows_is_read_in_several_chunks(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text(_jsonl_rows(20_000))
    chunks = list(read_jsonl(path, CONTRACT, block_bytes=64 << 10))
    assert len(chunks) > 10
    assert sum(c.num_rows for c in chunks) == 20_000
    # each chunk holds about a block's worth of lines, never the file
    assert max(c.num_rows for c in chunks) < 2_000
    assert all(c.schema == CONTRACT.arrow_schema() for c in chunks)


def test_a_chunked_jsonl_batch_has_the_profile_of_a_whole_one(sessions, tmp_path, monkeypatch):
    path = tmp_path / "many.jsonl"
    path.write_text(_jsonl_rows(5_000))
    whole = _new_dataset(sessions, tmp_path)
    _ingest(sessions, whole, path)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 16 << 10)
    chunked = _new_dataset(sessions, tmp_path)
    _ingest(sessions, chunked, path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(_jsonl_rows(5_000) + '{"id": "x"}\n')
    # rows in a reason count from the start of the file, not of the block
    assert "in data row 5001" in _ingest(sessions, chunked, broken).reason
    with sessions() as session:
        for metric, column in [("row_count", None), ("nulls", "amount"), ("mean", "amount"),
                               ("p50", "amount"), ("distinct", "country"), ("nulls", "paid")]:
            expected = queries.read_metric_series(session, whole, metric, column).tolist()
            assert queries.read_metric_series(session, chunked, metric, column).tolist() == expected
