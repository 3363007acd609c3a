"""A batch lands whole or is quarantined with a precise reason, leaving no metric rows."""
from __future__ import annotations

import datetime as dt
import gzip
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select

from monitors.contract import ColumnSpec, Contract
from monitors.intake.ingest import create_dataset, ingest_file, ingest_sql
from store import queries
from store.models import Batch, Dataset

DAY = dt.date(2026, 3, 2)
CONTRACT = Contract(columns=[
    ColumnSpec(name="id", type="integer", nullable=False),
    ColumnSpec(name="amount", type="float"),
    ColumnSpec(name="country", type="string"),
    ColumnSpec(name="paid", type="boolean"),
])
GOOD_CSV = "id,amount,country,paid\n1,10.5,ES,true\n2,,FR,false\n3,7.25,ES,true\n"


@pytest.fixture
def dataset(sessions, tmp_path):
    with sessions.begin() as session:
        found = Dataset(name="orders", format="csv", source=str(tmp_path),
                        contract=CONTRACT.to_json())
        session.add(found)
    return found


def land(sessions, dataset, path, partition=DAY):
    with sessions.begin() as session:
        return ingest_file(session, session.get(Dataset, dataset.id), path, partition)


def metric_rows(sessions, batch_id=None):
    with sessions() as session:
        return queries.count_metrics(session, batch_id)


def batches(sessions):
    with sessions() as session:
        return [(b.partition, b.status) for b, _ in queries.list_batches(session)]


def write(tmp_path, name, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


FRAME = pd.DataFrame({"id": [1, 2, 3], "amount": [10.5, None, 7.25],
                      "country": ["ES", "FR", "ES"], "paid": [True, False, True]})


@pytest.mark.parametrize("name", ["b.csv", "b.csv.gz", "b.parquet", "b.jsonl"])
def test_each_file_format_lands_with_its_profile(sessions, dataset, tmp_path, name):
    path = tmp_path / name
    if name == "b.csv":
        path.write_text(GOOD_CSV)
    elif name == "b.csv.gz":
        path.write_bytes(gzip.compress(GOOD_CSV.encode()))
    elif name == "b.parquet":
        pq.write_table(pa.Table.from_pandas(FRAME, preserve_index=False), path)
    else:
        path.write_text("\n".join(json.dumps(r) for r in FRAME.to_dict("records")).replace("NaN", "null"))

    outcome = land(sessions, dataset, path)

    assert outcome.status == "ingested", outcome.reason
    assert outcome.rows == 3
    with sessions() as session:
        nulls = queries.read_metric_series(session, dataset.id, "nulls", "amount")
        rows = queries.read_metric_series(session, dataset.id, "row_count")
    assert nulls.tolist() == [1.0]
    assert rows.index[0].date() == DAY and rows.tolist() == [3.0]


def test_a_sql_table_partition_lands(sessions, tmp_path):
    source_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    frame = FRAME.assign(paid_on=["2026-03-02", "2026-03-02", "2026-03-03"])
    frame.to_sql("payments", create_engine(source_url), index=False)
    with sessions.begin() as session:
        dataset = Dataset(name="payments", format="sql", source=source_url, table_name="payments",
                          partition_key="paid_on", contract=CONTRACT.to_json())
        session.add(dataset)
        session.flush()
        outcome = ingest_sql(session, dataset, DAY)
        again = ingest_sql(session, dataset, DAY)
    assert (outcome.status, outcome.rows) == ("ingested", 2)
    assert again.status == "unchanged"


MALFORMED = {
    "truncated mid-row": ("id,amount,country,paid\n1,10.5,ES,true\n2,3.5", "Expected 4 columns, got 2"),
    "wrong encoding": ("id,amount,country,paid\n1,10.5,Espa\xf1a,true\n".encode("latin-1"), "UTF-8"),
    "wrong delimiter": ("id;amount;country;paid\n1;10.5;ES;true\n", "wrong delimiter?"),
    "wrong type": ("id,amount,country,paid\n1,ten,ES,true\n", "column 'amount'"),
    "missing column": ("id,amount,paid\n1,10.5,true\n", "missing column(s) country"),
    "extra column": ("id,amount,country,paid,vip\n1,10.5,ES,true,no\n", "unexpected column(s) vip"),
    "renamed column": ("id,amount,region,paid\n1,10.5,ES,true\n", "missing column(s) country; unexpected column(s) region"),
    "empty file": ("", "empty file"),
    "header only": ("id,amount,country,paid\n", "no rows"),
    "ragged rows": ("id,amount,country,paid\n1,10.5,ES,true,extra\n2,1.0,FR,false\n", "Expected 4 columns, got 5"),
    "null in a not-null column": ("id,amount,country,paid\n1,1.0,ES,true\n,2.0,FR,false\n", "declared not null"),
    "duplicated header": ("id,amount,country,paid,paid\n1,1.0,ES,true,true\n", "duplicated column(s) paid"),
    "truncated gzip": (gzip.compress(GOOD_CSV.encode() * 50)[:60], "b.csv.gz"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_quarantined_with_its_reason_and_leaves_nothing(sessions, dataset, tmp_path, case):
    content, expected_reason = MALFORMED[case]
    path = write(tmp_path, "b.csv.gz" if "gzip" in case else "b.csv", content)

    outcome = land(sessions, dataset, path)

    assert outcome.status == "quarantined"
    assert expected_reason in outcome.reason
    assert outcome.reason.startswith(path.name)
    assert metric_rows(sessions) == 0
    assert batches(sessions) == [(DAY, "quarantined")]


def test_a_truncated_parquet_file_is_quarantined(sessions, dataset, tmp_path):
    path = tmp_path / "b.parquet"
    pq.write_table(pa.Table.from_pandas(FRAME, preserve_index=False), path)
    path.write_bytes(path.read_bytes()[:-40])
    outcome = land(sessions, dataset, path)
    assert outcome.status == "quarantined"
    assert "not a readable Parquet file" in outcome.reason
    assert metric_rows(sessions) == 0


def test_a_parquet_column_of_the_wrong_type_is_quarantined(sessions, dataset, tmp_path):
    path = tmp_path / "b.parquet"
    pq.write_table(pa.Table.from_pandas(FRAME.assign(id=["a", "b", "c"]), preserve_index=False), path)
    outcome = land(sessions, dataset, path)
    assert outcome.status == "quarantined"
    assert "column 'id': expected integer, found string" in outcome.reason


def test_parquet_text_read_dictionary_encoded_profiles_as_plain_text(tmp_path):
    from monitors.intake.profile import BatchProfiler
    from monitors.intake.readers import read_file

    countries = ["ES", "FR", None, "", "DE", "ES"] * 500
    table = pa.table({"id": list(range(len(countries))), "amount": [1.5] * len(countries),
                      "country": countries, "paid": [True] * len(countries)})
    path = tmp_path / "b.parquet"
    pq.write_table(table, path, row_group_size=1_000)

    def profile(dictionaries: bool) -> tuple[set, list]:
        profiler = BatchProfiler(CONTRACT.arrow_schema())
        types = set()
        for chunk in read_file(path, "parquet", CONTRACT, dictionaries=dictionaries):
            types.add(chunk.schema.field("country").type)
            profiler.update(chunk)
        return types, profiler.metrics()

    encoded_types, encoded = profile(True)
    plain_types, plain = profile(False)
    assert all(pa.types.is_dictionary(t) for t in encoded_types) and plain_types == {pa.string()}
    assert encoded == plain


@pytest.mark.parametrize("column, values, reason", [
    ("country", ["ES", "E\x00S", "FR"], "column 'country' holds a NUL byte at data row 2"),
    ("id", ["1", None, "3"], "column 'id' is declared not null but has 1 null value(s), the first at data row 2"),
])
def test_dictionary_encoded_parquet_text_is_checked_as_plain_text(sessions, tmp_path, column, values, reason):
    contract = Contract(columns=[ColumnSpec(name="id", type="string", nullable=False),
                                 ColumnSpec(name="country", type="string")])
    frame = {"id": ["1", "2", "3"], "country": ["ES", "FR", "ES"]}
    frame[column] = values
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table(frame), path)
    with sessions.begin() as session:
        found = Dataset(name="codes", format="parquet", source=str(tmp_path), contract=contract.to_json())
        session.add(found)
    outcome = land(sessions, found, path)
    assert outcome.status == "quarantined"
    assert reason in outcome.reason


def test_a_malformed_redelivery_leaves_the_good_batch_in_force(sessions, dataset, tmp_path):
    good = land(sessions, dataset, write(tmp_path, "good.csv", GOOD_CSV))
    bad = land(sessions, dataset, write(tmp_path, "bad.csv", "id,amount\n1,2\n"))

    assert bad.status == "quarantined"
    with sessions() as session:
        assert queries.get_current_batch(session, dataset.id, DAY).id == good.batch_id
    assert metric_rows(sessions, good.batch_id) > 0
    assert sorted(batches(sessions), key=str) == [(DAY, "ingested"), (DAY, "quarantined")]


def test_a_good_redelivery_supersedes_the_earlier_batch(sessions, dataset, tmp_path):
    first = land(sessions, dataset, write(tmp_path, "first.csv", GOOD_CSV))
    second = land(sessions, dataset, write(tmp_path, "second.csv", GOOD_CSV + "4,1.0,IT,false\n"))

    assert second.status == "ingested" and second.rows == 4
    with sessions() as session:
        assert session.get(Batch, first.batch_id).status == "superseded"
        assert queries.read_metric_series(session, dataset.id, "row_count").tolist() == [4.0]
    assert metric_rows(sessions, first.batch_id) == 0


def test_the_same_content_twice_changes_nothing(sessions, dataset, tmp_path):
    first = land(sessions, dataset, write(tmp_path, "a.csv", GOOD_CSV))
    before = metric_rows(sessions)
    again = land(sessions, dataset, write(tmp_path, "copy.csv", GOOD_CSV))

    assert again.status == "unchanged" and again.batch_id == first.batch_id
    assert metric_rows(sessions) == before
    assert batches(sessions) == [(DAY, "ingested")]


def test_the_same_malformed_file_twice_is_quarantined_once(sessions, dataset, tmp_path):
    path = write(tmp_path, "bad.csv", "nonsense")
    land(sessions, dataset, path)
    assert land(sessions, dataset, path).status == "unchanged"
    assert batches(sessions) == [(DAY, "quarantined")]


def test_a_new_dataset_takes_its_contract_from_its_first_batch(sessions, tmp_path):
    path = write(tmp_path, "events_2026-03-02.csv", GOOD_CSV)
    with sessions.begin() as session:
        dataset = create_dataset(session, "events", path)
        outcome = ingest_file(session, dataset, path)
        contract = Contract.model_validate(dataset.contract)
    assert outcome.status == "ingested" and outcome.partition == DAY
    assert [(c.name, c.type) for c in contract.columns] == [
        ("id", "integer"), ("amount", "float"), ("country", "string"), ("paid", "boolean")]
    # frozen: a later batch with another shape is quarantined
    later = write(tmp_path, "events_2026-03-03.csv", "id,amount\n1,2\n")
    with sessions.begin() as session:
        assert ingest_file(session, session.get(Dataset, dataset.id), later).status == "quarantined"


def test_the_arrival_delay_is_recorded_from_the_file_time(sessions, dataset, tmp_path):
    path = write(tmp_path, "a.csv", GOOD_CSV)
    arrived = dt.datetime(2026, 3, 3, 14, 30, tzinfo=dt.UTC)
    with sessions.begin() as session:
        ingest_file(session, session.get(Dataset, dataset.id), path, DAY, arrived_at=arrived)
    with sessions() as session:
        delay = queries.read_metric_series(session, dataset.id, "arrival_delay_hours")
        stored = session.scalar(select(Batch.arrived_at))
    assert delay.tolist() == [14.5]
    assert stored == arrived
