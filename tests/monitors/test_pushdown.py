"""A SQL partition profiled inside the database equals the Arrow profile of the same rows."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from monitors.contract import ColumnSpec, Contract
from monitors.intake.profile import MetricValue, profile_table
from monitors.intake.pushdown import profile_sql_partition
from monitors.intake.readers import ContractViolation

DAY = dt.date(2026, 3, 2)
ROWS = 1_500
TOP_K = 20
# a tail beyond top_k, and ties at the cut whose order differs between code-point order and
# a linguistic collation ('Zulu' < 'apple' < 'zulu 🦊' < 'Émile' by code points)
TIED = ["Zulu", "apple", "Émile", "émile", "zulu 🦊"]
CATEGORIES = [f"cat{n:02d}" for n in range(17)] + TIED + [f"tail{n:02d}" for n in range(12)]


def _values(rng: np.random.Generator, rows: int) -> dict[str, list]:
    counts = [120 - 5 * n for n in range(17)] + [20] * len(TIED) + [3 + n % 4 for n in range(12)]
    category = [c for c, n in zip(CATEGORIES, counts) for _ in range(n)]
    category = (category + [None] * rows)[:rows]
    rng.shuffle(category)
    # a mean far from zero against its spread: sums of squares would cancel on SQLite
    amount = (1_000_000 + rng.normal(0, 0.5, rows)).tolist()
    for i in rng.choice(rows, rows // 20, replace=False):
        amount[i] = None
    amount[3], amount[4] = math.inf, -math.inf
    ratio = np.round(rng.normal(0, 1, rows), 2).tolist()
    ratio[5], ratio[6], ratio[7] = 0.0, -0.0, math.nan  # NaN on PostgreSQL, NULL on SQLite: missing either way
    quantity = rng.integers(-5, 40, rows).tolist()
    quantity[8] = None
    code = rng.choice([10, 9, 100, 7], rows).tolist()
    paid = [None if i % 11 == 0 else bool(v) for i, v in enumerate(rng.random(rows) < 0.3)]
    shipped = [None if i % 13 == 0 else DAY - dt.timedelta(days=int(d))
               for i, d in enumerate(rng.integers(0, 60, rows))]
    seen = [dt.datetime(2026, 3, 2, tzinfo=dt.UTC) + dt.timedelta(seconds=int(s), microseconds=int(u))
            for s, u in zip(rng.integers(0, 86_400, rows), rng.integers(0, 1_000_000, rows))]
    return {"quantity": quantity, "code": code, "amount": amount, "ratio": ratio,
            "category": category, "paid": paid, "shipped_on": shipped, "seen_at": seen}


CONTRACT = Contract(columns=[
    ColumnSpec(name="quantity", type="integer"),
    ColumnSpec(name="code", type="integer", nullable=False, categorical=True),
    ColumnSpec(name="amount", type="float"),
    ColumnSpec(name="ratio", type="float"),
    ColumnSpec(name="category", type="string"),
    ColumnSpec(name="paid", type="boolean"),
    ColumnSpec(name="shipped_on", type="date"),
    ColumnSpec(name="seen_at", type="timestamp"),
])
SQL_TYPES = {"quantity": sa.BigInteger, "code": sa.Integer, "amount": sa.Float, "ratio": sa.Float,
             "category": sa.Text, "paid": sa.Boolean, "shipped_on": sa.Date,
             "seen_at": sa.DateTime(timezone=True)}


@pytest.fixture
def source(settings, tmp_path):
    """An engine on the test's database: a SQLite file or a fresh PostgreSQL database."""
    if settings.db_url.startswith("sqlite"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    else:
        engine = sa.create_engine(settings.db_url)
    yield engine
    engine.dispose()


def _create(engine, name: str, data: dict[str, list], partition_key: str = "day",
            renames: dict[str, str] | None = None, days: list[dt.date] | None = None) -> sa.Table:
    renames = renames or {}
    table = sa.Table(name, sa.MetaData(), sa.Column(partition_key, sa.Date),
                     *(sa.Column(renames.get(c, c), SQL_TYPES[c]) for c in data))
    table.create(engine)
    rows = len(next(iter(data.values())))
    days = days or [DAY] * rows
    records = [{partition_key: d, **{renames.get(c, c): v[i] for c, v in data.items()}}
               for i, d in enumerate(days)]
    with engine.begin() as connection:
        connection.execute(table.insert(), records)
    return table


def _arrow_profile(data: dict[str, list], contract: Contract, keep: list[bool] | None = None):
    """The pandas/Arrow path over the same rows (NaN counts as missing there too)."""
    schema = contract.arrow_schema()
    columns = {}
    for spec, target in zip(contract.columns, schema):
        values = data[spec.name] if keep is None else [v for v, k in zip(data[spec.name], keep) if k]
        columns[spec.name] = pa.array(values, target.type, from_pandas=False)
    return profile_table(pa.table(columns, schema=schema), categorical=contract.categorical(), top_k=TOP_K)


def _index(metrics: list[MetricValue]) -> dict[tuple, float]:
    return {(m.column, m.metric, m.key): m.value for m in metrics}


def assert_same_profile(pushed: list[MetricValue], expected: list[MetricValue]) -> None:
    found, wanted = _index(pushed), _index(expected)
    assert sorted(found, key=str) == sorted(wanted, key=str)
    for key, value in wanted.items():
        assert found[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_the_pushdown_profile_equals_the_arrow_profile_metric_by_metric(source):
    rng = np.random.default_rng(11)
    data = _values(rng, ROWS)
    other = _values(rng, 200)
    both = {c: data[c] + other[c] for c in data}
    # another day's rows in the same table must not count
    _create(source, "orders", both, days=[DAY] * ROWS + [DAY + dt.timedelta(days=1)] * 200)

    pushed = profile_sql_partition(source, "orders", "day", DAY, CONTRACT, top_k=TOP_K)

    expected = _arrow_profile(data, CONTRACT)
    assert_same_profile(pushed, expected)
    found = _index(pushed)
    assert found[(None, "row_count", "")] == ROWS
    # the checks that make this comparison meaningful: ties cut at top_k, a tail, infinities
    tied = [key for (column, metric, key) in found if column == "category" and metric == "freq" and key in TIED]
    assert tied == ["Zulu", "apple", "zulu 🦊"]
    assert found[("category", "freq_other", "")] > 0
    assert found[("amount", "infinite", "")] == 2 and found[("amount", "std", "")] == pytest.approx(0.5, rel=0.1)
    assert found[("paid", "freq", "false")] > found[("paid", "freq", "true")]


def test_the_pushdown_order_of_metrics_is_the_profilers(source):
    data = _values(np.random.default_rng(3), 50)
    _create(source, "orders", data)
    pushed = profile_sql_partition(source, "orders", "day", DAY, CONTRACT, top_k=TOP_K)
    assert [(m.column, m.metric, m.key) for m in pushed] == [
        (m.column, m.metric, m.key) for m in _arrow_profile(data, CONTRACT)]


def test_an_empty_partition_has_counts_and_no_undefined_metrics(source):
    data = _values(np.random.default_rng(5), 40)
    _create(source, "orders", data)

    pushed = profile_sql_partition(source, "orders", "day", DAY + dt.timedelta(days=7), CONTRACT)

    assert_same_profile(pushed, _arrow_profile(data, CONTRACT, keep=[False] * 40))
    assert _index(pushed)[(None, "row_count", "")] == 0


def test_names_needing_quotes_are_quoted_not_pasted(source):
    table = 'order "lines"; DROP TABLE x; --'
    column = 'unit price "usd" (net)'
    key = "Delivery Day"
    data = {"amount": [1.5, 2.5, None, 4.0], "category": ["a", "b", "a", None]}
    _create(source, table, data, partition_key=key, renames={"amount": column})
    contract = Contract(columns=[ColumnSpec(name=column, type="float"),
                                 ColumnSpec(name="category", type="string")])

    pushed = _index(profile_sql_partition(source, table, key, DAY, contract))

    assert pushed[(None, "row_count", "")] == 4
    assert pushed[(column, "nulls", "")] == 1 and pushed[(column, "mean", "")] == pytest.approx(8 / 3)
    assert pushed[(column, "p50", "")] == 2.5
    assert pushed[("category", "freq", "a")] == 2
    assert sa.inspect(source).has_table(table)


def test_a_missing_column_is_named_in_a_clear_error(source):
    _create(source, "orders", {"amount": [1.0, 2.0]})
    contract = Contract(columns=[ColumnSpec(name="amount", type="float"),
                                 ColumnSpec(name="vat rate", type="float")])

    with pytest.raises(ContractViolation, match=r"missing column\(s\) 'vat rate'"):
        profile_sql_partition(source, "orders", "day", DAY, contract)
    with pytest.raises(ContractViolation, match="no table 'invoices'"):
        profile_sql_partition(source, "invoices", "day", DAY, contract)


def test_contract_types_and_not_null_are_checked_without_reading_rows(source):
    _create(source, "orders", {"category": ["a", "b"], "code": [1, 2], "quantity": [0, 1]})

    wrong_type = Contract(columns=[ColumnSpec(name="category", type="integer")])
    with pytest.raises(ContractViolation, match="column 'category': expected integer, found string"):
        profile_sql_partition(source, "orders", "day", DAY, wrong_type)

    # integers widen to floats; 0/1 integers stand for booleans
    widened = Contract(columns=[ColumnSpec(name="code", type="float"),
                                ColumnSpec(name="quantity", type="boolean")])
    found = _index(profile_sql_partition(source, "orders", "day", DAY, widened))
    assert found[("code", "mean", "")] == 1.5 and found[("code", "infinite", "")] == 0
    assert found[("quantity", "freq", "true")] == 1 and found[("quantity", "freq", "false")] == 1
    not_boolean = Contract(columns=[ColumnSpec(name="code", type="boolean")])
    with pytest.raises(ContractViolation, match="expected boolean, found integer"):
        profile_sql_partition(source, "orders", "day", DAY, not_boolean)


def test_a_null_in_a_not_null_column_is_a_violation(source):
    _create(source, "orders", {"code": [1, None, None]})
    contract = Contract(columns=[ColumnSpec(name="code", type="integer", nullable=False)])
    with pytest.raises(ContractViolation, match="'code' is declared not null but has 2 null value"):
        profile_sql_partition(source, "orders", "day", DAY, contract)


def test_ingest_sql_lands_the_pushdown_profile_and_notices_a_changed_value(sessions, source):
    from monitors.intake.ingest import ingest_sql
    from store import queries
    from store.models import Batch, Dataset

    data = _values(np.random.default_rng(17), 300)
    table = _create(source, "payments", data)
    url = source.url.render_as_string(hide_password=False)
    with sessions.begin() as session:
        dataset = Dataset(name="payments", format="sql", source=url, table_name="payments",
                          partition_key="day", contract=CONTRACT.to_json())
        session.add(dataset)
        session.flush()
        first = ingest_sql(session, dataset, DAY)
        again = ingest_sql(session, dataset, DAY)
    assert (first.status, first.rows, again.status) == ("ingested", 300, "unchanged")
    with sessions() as session:
        stored = queries.read_metric_series(session, dataset.id, "p95", "amount").tolist()
    assert stored == [pytest.approx(_index(_arrow_profile(data, CONTRACT))[("amount", "p95", "")], rel=1e-9)]

    # one value moved: the profile, hence the fingerprint, changes and the batch is superseded
    with source.begin() as connection:
        connection.execute(table.update().where(table.c.quantity == data["quantity"][0])
                           .values(quantity=table.c.quantity + 1000))
    with sessions.begin() as session:
        changed = ingest_sql(session, session.get(Dataset, dataset.id), DAY)
    assert changed.status == "ingested"
    with sessions() as session:
        assert session.get(Batch, first.batch_id).status == "superseded"

    # a null where the contract forbids one quarantines the partition with its reason
    with source.begin() as connection:
        connection.execute(table.update().where(table.c.quantity > 1000).values(code=None))
    with sessions.begin() as session:
        broken = ingest_sql(session, session.get(Dataset, dataset.id), DAY)
    assert broken.status == "quarantined"
    assert "'code' is declared not null" in broken.reason


def test_a_wide_table_is_profiled_in_several_aggregate_queries(source):
    # 230 float columns ask for more aggregates than one select list may hold (PostgreSQL: 1664,
    # SQLite: 2000)
    rng = np.random.default_rng(23)
    names = [f"x{n:03d}" for n in range(230)]
    data = {name: rng.normal(n, 1, 30).tolist() for n, name in enumerate(names)}
    table = sa.Table("wide", sa.MetaData(), sa.Column("day", sa.Date), *(sa.Column(n, sa.Float) for n in names))
    table.create(source)
    with source.begin() as connection:
        connection.execute(table.insert(), [{"day": DAY, **{n: data[n][i] for n in names}} for i in range(30)])
    contract = Contract(columns=[ColumnSpec(name=n, type="float") for n in names])

    pushed = profile_sql_partition(source, "wide", "day", DAY, contract)

    assert_same_profile(pushed, _arrow_profile(data, contract))


def test_top_k_zero_keeps_distinct_counts_and_lumps_every_value_in_other(source):
    data = _values(np.random.default_rng(29), 200)
    _create(source, "orders", data)
    pushed = profile_sql_partition(source, "orders", "day", DAY, CONTRACT, top_k=0)
    schema = CONTRACT.arrow_schema()
    table = pa.table({f.name: pa.array(data[f.name], f.type, from_pandas=False) for f in schema}, schema=schema)
    assert_same_profile(pushed, profile_table(table, categorical=CONTRACT.categorical(), top_k=0))


# PostgreSQL only: sqlite3 reports no row count for a SELECT, PostgreSQL's driver does
@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_only_results_leave_the_database(source):
    data = _values(np.random.default_rng(31), ROWS)
    _create(source, "orders", data)
    returned: list[tuple[int, str]] = []

    def count_rows(connection, cursor, statement, parameters, context, executemany):
        if "pg_catalog" not in statement:  # reflection reads the catalog, not the table
            returned.append((cursor.rowcount, statement))

    sa.event.listen(source, "after_cursor_execute", count_rows)
    try:
        profile_sql_partition(source, "orders", "day", DAY, CONTRACT, top_k=TOP_K)
    finally:
        sa.event.remove(source, "after_cursor_execute", count_rows)
    # one aggregate row, then at most top_k rows for each of the three counted columns
    assert returned and all("orders" in statement and rows >= 1 for rows, statement in returned)
    assert sum(rows for rows, _ in returned) <= 1 + 3 * TOP_K
