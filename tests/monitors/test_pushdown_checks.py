"""A SQL dataset's declared static checks are computed inside its database, with a few
failing rows fetched as evidence; a check the dialect can't compute is a finding of its own,
never a silent skip."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from detectors import checks
from monitors.config import CheckConfig, DatasetConfig
from monitors.contract import ColumnSpec, Contract
from monitors.intake.pushdown import Unsupported, check_sql_partition

DAY = dt.date(2026, 3, 2)
ROWS = 3_000
CONTRACT = Contract(columns=[
    ColumnSpec(name="id", type="integer", sensitive=True),
    ColumnSpec(name="amount", type="float"),
    ColumnSpec(name="status", type="string"),
])


def _rows(rng: np.random.Generator) -> pd.DataFrame:
    ids = np.arange(ROWS, dtype=np.int64)
    ids[-1000:] = ids[:1000]  # 1,000 ids used twice
    amount = -rng.uniform(1, 500, ROWS).round(2)  # every amount negative
    amount[::50] = np.nan
    status = rng.choice(["paid", "open", "void", "PAID?"], ROWS, p=[0.5, 0.3, 0.19, 0.01])
    return pd.DataFrame({"id": ids, "amount": amount, "status": status})


@pytest.fixture
def warehouse(settings, tmp_path):
    """The rows of DAY (and a clean day after it) in a table of the source database."""
    if settings.db_url.startswith("sqlite"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    else:
        engine = sa.create_engine(settings.db_url)
    frame = _rows(np.random.default_rng(3))
    table = sa.Table("payments", sa.MetaData(), sa.Column("day", sa.Date),
                     sa.Column("id", sa.BigInteger), sa.Column("amount", sa.Float),
                     sa.Column("status", sa.Text))
    table.create(engine)
    records = [{"day": DAY, "id": int(i), "amount": None if np.isnan(a) else float(a), "status": s}
               for i, a, s in frame.itertuples(index=False)]
    records.append({"day": DAY + dt.timedelta(days=1), "id": 1, "amount": 5.0, "status": "paid"})
    with engine.begin() as connection:
        connection.execute(table.insert(), records)
    yield engine, frame
    engine.dispose()


CASES = [
    ("not_null", ["amount"], {}),
    ("in_range", ["amount"], {"min": 0, "max": 10_000}),
    ("allowed_values", ["status"], {"values": ["paid", "open", "void"]}),
    ("unique", ["id"], {}),
]


@pytest.mark.parametrize("check, columns, options", CASES)
def test_a_check_counted_in_the_database_agrees_with_the_check_over_the_rows(warehouse, check,
                                                                              columns, options):
    engine, frame = warehouse
    at = pd.Timestamp(DAY)

    pushed = check_sql_partition(engine, "payments", "day", DAY, CONTRACT, check, columns,
                                 options, at=at, mask=["id"])
    subject = (columns,) if check == "unique" else (columns[0],)
    in_memory = getattr(checks, check)(frame, *subject, at=at, mask=["id"], **options)

    (found,), (expected,) = pushed.findings, in_memory.findings
    assert (found.count, found.detail) == (expected.count, expected.detail)
    assert 0 < len(found.examples) <= 5
    assert all(row["id"] == "***" for row in found.examples)  # sensitive stays masked


def test_the_duplicated_ids_and_negative_amounts_are_named_in_words(warehouse):
    engine, _ = warehouse

    unique = check_sql_partition(engine, "payments", "day", DAY, CONTRACT, "unique", ["id"], {})
    negative = check_sql_partition(engine, "payments", "day", DAY, CONTRACT, "in_range",
                                   ["amount"], {"min": 0})

    assert unique.findings[0].detail.startswith("[unique] id: 2,000 of 3,000 rows sharing 1,000 duplicated keys")
    assert negative.findings[0].count == ROWS - ROWS // 50  # every present amount
    clean = check_sql_partition(engine, "payments", "day", DAY + dt.timedelta(days=1), CONTRACT,
                                "unique", ["id"], {})
    assert clean.findings == () and clean.skipped is None


def test_a_pattern_is_matched_in_the_database_or_refused_in_words(warehouse):
    engine, frame = warehouse
    options = {"pattern": "[a-z]+"}

    if engine.dialect.name == "sqlite":
        with pytest.raises(Unsupported, match="sqlite has no regular-expression operator"):
            check_sql_partition(engine, "payments", "day", DAY, CONTRACT, "matches_pattern",
                                ["status"], options)
        return
    pushed = check_sql_partition(engine, "payments", "day", DAY, CONTRACT, "matches_pattern",
                                 ["status"], options)
    expected = checks.matches_pattern(frame, "status", **options)
    assert pushed.findings[0].count == expected.findings[0].count > 0


def test_a_run_reports_every_declared_check_of_a_sql_dataset(warehouse, sessions):
    """Through a run's evaluation: each declared check gives a verdict; the one the dialect
    can't compute is a failure naming why, not a silent skip."""
    from monitors.intake.ingest import ingest_sql
    from monitors.judge.evaluate import MetricHistory, evaluate_partition
    from monitors.judge.plan import plan_monitors
    from store.models import Dataset

    engine, _ = warehouse
    url = engine.url.render_as_string(hide_password=False)
    declared = DatasetConfig(
        name="payments", format="sql", source=url, table="payments", partition_key="day",
        contract=CONTRACT, checks=[
            CheckConfig(check="unique", column="id"),
            CheckConfig(check="in_range", column="amount", options={"min": 0}),
            CheckConfig(check="expression", options={"expr": "amount < 0"})])
    specs = [s for s in plan_monitors("data", CONTRACT, declared) if s.kind == "check"]
    with sessions.begin() as session:
        dataset = Dataset(name="payments", format="sql", source=url, table_name="payments",
                          partition_key="day", contract=CONTRACT.to_json())
        session.add(dataset)
        session.flush()
        assert ingest_sql(session, dataset, DAY).status == "ingested"
        verdicts = {v.spec.name: v for v in evaluate_partition(
            session, dataset, CONTRACT, specs, MetricHistory(pd.DataFrame(
                columns=["partition", "column", "metric", "key", "value"])), DAY, None)}

    assert set(verdicts) == {"unique:id", "in_range:amount", "expression:rows"}
    assert verdicts["unique:id"].finding.count == 2_000
    assert verdicts["unique:id"].evidence["examples"]
    assert verdicts["in_range:amount"].finding.detail.startswith("[in_range] amount:")
    refused = verdicts["expression:rows"]
    assert refused.failed and "can't be computed inside the" in refused.finding.detail
