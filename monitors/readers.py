"""Reading one batch from the format zoo as a stream of Arrow record batches that conform
to a contract. Anything that breaks the contract raises `ContractViolation` with a precise
reason: the file, the row or column, what was expected and what was found.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from monitors.contract import Contract, logical_type

# the CSV reader's memory peaks at tens of times its block size: 8 MiB keeps it near 300 MB
CHUNK_BYTES = 8 << 20
NULL_STRINGS = ["", "NA", "N/A", "NULL", "null", "None", "nan", "NaN"]
FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonl.gz": "jsonl"}


class ContractViolation(Exception):
    """The batch can't land: it is quarantined with this reason."""


def detect_format(path: Path) -> str | None:
    name = path.name.lower()
    return next((fmt for suffix, fmt in sorted(FORMATS.items(), key=lambda kv: -len(kv[0]))
                 if name.endswith(suffix)), None)


def fingerprint_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compare_columns(expected: list[str], found: list[str], where: str) -> None:
    """Missing or extra columns break the contract; a pure reordering does not."""
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    duplicated = sorted({c for c in found if found.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(extra)}")
    if duplicated:
        problems.append(f"duplicated column(s) {', '.join(duplicated)}")
    if problems:
        hint = ""
        if len(found) == 1 and len(expected) > 1:
            hint = " (one column found: wrong delimiter?)"
        raise ContractViolation(f"{where}: {'; '.join(problems)}{hint}; "
                                f"expected {len(expected)} columns {expected}, found {found}")


def conform(table: pa.Table | pa.RecordBatch, contract: Contract, where: str,
            first_row: int) -> pa.RecordBatch | pa.Table:
    """Cast a chunk to the contract's types and enforce not-null; rows are 1-based in
    reasons, counted over the whole batch (`first_row` is the chunk's offset)."""
    columns = []
    for spec, target in zip(contract.columns, contract.arrow_schema()):
        column = table.column(spec.name)
        found = logical_type(column.type)
        if column.type != target.type:
            if found is None or (found != spec.type and not _widening(found, spec.type, column)):
                raise ContractViolation(f"{where}: column {spec.name!r}: expected {spec.type}, "
                                        f"found {found or column.type}")
            try:
                column = pc.cast(column, target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ContractViolation(f"{where}: column {spec.name!r}: expected {spec.type}, "
                                        f"found values that don't convert ({exc})") from None
        if not spec.nullable and column.null_count:
            row = first_row + pc.index(pc.is_null(column), True).as_py() + 1
            raise ContractViolation(
                f"{where}: column {spec.name!r} is declared not null but has "
                f"{column.null_count} null value(s), the first at data row {row}")
        columns.append(column)
    cls = pa.RecordBatch if isinstance(table, pa.RecordBatch) else pa.Table
    return cls.from_arrays(columns, schema=contract.arrow_schema())


def _widening(found, expected, column) -> bool:
    # an integer column may land in a float contract, a date in a timestamp one, and 0/1
    # integers in a boolean one (SQLite and many exports store booleans so)
    pair = (str(found), str(expected))
    if pair == ("integer", "boolean"):
        bounds = pc.min_max(column).as_py()
        return bounds["min"] is None or (bounds["min"] >= 0 and bounds["max"] <= 1)
    return pair in {("integer", "float"), ("date", "timestamp")}


def _csv_reason(exc: Exception, names: list[str], where: str) -> str:
    text = str(exc)
    column = re.search(r"In CSV column #(\d+)", text)
    if column and int(column.group(1)) < len(names):
        text = text.replace(column.group(0), f"column {names[int(column.group(1))]!r}")
    if "invalid UTF8" in text or "UTF8" in text:
        text += " (the file is not UTF-8: wrong encoding?)"
    return f"{where}: {text}"


def read_csv(path: Path, contract: Contract) -> Iterator[pa.RecordBatch]:
    where = path.name
    stream = pa.input_stream(str(path), compression="detect")
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=CHUNK_BYTES),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=contract.arrow_schema(), null_values=NULL_STRINGS,
                strings_can_be_null=True, true_values=["true", "True", "TRUE", "1"],
                false_values=["false", "False", "FALSE", "0"]),
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        if "Empty CSV file" in str(exc):
            raise ContractViolation(f"{where}: empty file (no header, no rows)") from None
        raise ContractViolation(_csv_reason(exc, contract.names, where)) from None
    names = reader.schema.names
    compare_columns(contract.names, names, where)
    rows = 0
    while True:
        try:
            chunk = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise ContractViolation(_csv_reason(exc, names, where)
                                    + f" (after data row {rows})") from None
        yield conform(chunk, contract, where, rows)
        rows += chunk.num_rows


def read_parquet(path: Path, contract: Contract) -> Iterator[pa.RecordBatch]:
    where = path.name
    try:
        # without pre-buffering, row groups already read are released: memory stays flat
        parquet = pq.ParquetFile(str(path), pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ContractViolation(f"{where}: not a readable Parquet file ({exc})") from None
    compare_columns(contract.names, parquet.schema_arrow.names, where)
    rows = 0
    try:
        for chunk in parquet.iter_batches(batch_size=256_000, columns=contract.names):
            yield conform(chunk, contract, where, rows)
            rows += chunk.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise ContractViolation(f"{where}: unreadable after data row {rows} ({exc})") from None


def read_jsonl(path: Path, contract: Contract) -> Iterator[pa.Table]:
    where = path.name
    stream = pa.input_stream(str(path), compression="detect")
    try:
        table = pajson.read_json(stream, read_options=pajson.ReadOptions(block_size=CHUNK_BYTES))
    except (pa.ArrowInvalid, OSError) as exc:
        if "Empty JSON file" in str(exc):
            raise ContractViolation(f"{where}: empty file (no rows)") from None
        raise ContractViolation(f"{where}: not valid JSON lines ({exc})") from None
    compare_columns(contract.names, table.column_names, where)
    yield conform(table.select(contract.names), contract, where, 0)


def read_schema(path: Path, fmt: str) -> pa.Schema:
    """The schema a file declares or implies, for inferring a new dataset's contract."""
    where = path.name
    try:
        if fmt == "parquet":
            return pq.ParquetFile(str(path)).schema_arrow
        stream = pa.input_stream(str(path), compression="detect")
        if fmt == "csv":
            options = pacsv.ConvertOptions(null_values=NULL_STRINGS, strings_can_be_null=True)
            return pacsv.open_csv(stream, convert_options=options).schema
        return pajson.read_json(stream).schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise ContractViolation(f"{where}: can't infer a contract from it ({exc})") from None


def read_file(path: Path, fmt: str, contract: Contract) -> Iterator[pa.RecordBatch | pa.Table]:
    readers = {"csv": read_csv, "parquet": read_parquet, "jsonl": read_jsonl}
    if fmt not in readers:
        raise ValueError(f"format {fmt!r} is not a file format ({', '.join(readers)})")
    return readers[fmt](path, contract)


def read_sql(url: str, table_name: str, partition_key: str, partition: object,
             contract: Contract, chunk_rows: int = 100_000) -> Iterator[pa.Table]:
    """One partition of a SQL table, streamed in chunks. Names come from config and are
    quoted by SQLAlchemy, never pasted into SQL."""
    from sqlalchemy import column, create_engine, select, table
    from sqlalchemy.exc import SQLAlchemyError

    where = f"{table_name} where {partition_key} = {partition}"
    source = table(table_name, *(column(n) for n in [*contract.names, partition_key]))
    query = select(*(source.c[n] for n in contract.names)).where(
        source.c[partition_key] == partition)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(query)
            rows = 0
            for part in result.partitions(chunk_rows):
                arrays = list(zip(*part)) or [[] for _ in contract.names]
                chunk = pa.table({n: pa.array(a) for n, a in zip(contract.names, arrays)})
                yield conform(chunk, contract, where, rows)
                rows += chunk.num_rows
    except SQLAlchemyError as exc:
        raise ContractViolation(f"{where}: {str(exc).splitlines()[0]}") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ContractViolation(f"{where}: values that don't convert ({exc})") from None
    finally:
        engine.dispose()
