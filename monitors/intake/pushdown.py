"""SQL pushdown: a SQL partition's profile computed inside the source database.

The warehouse is the engine: aggregate queries built with SQLAlchemy Core return a few
numbers per column and the rows never leave the database. The metrics are BatchProfiler's,
with its conventions (monitors can't tell which path computed them):

- NaN (PostgreSQL has it; SQLite stores it as NULL) is missing: in ``nulls``, never ``count``.
- ±inf is present: in ``count``, ``distinct``, ``negatives`` (-inf) and ``infinite``, while
  ``min``, ``max``, ``mean``, ``std`` and the quantiles describe the finite values only.
- Undefined metrics (the mean of an all-null column, the std of one value) are left out.
- ``freq`` keys are the values as Arrow spells them cast to strings; ties in the top-k are
  broken by that spelling in code-point order, as BatchProfiler does.

Where pushdown is exact and BatchProfiler switches to sketches (past 100k distinct values or
1M values per column), the two agree within the sketches' error, not to the last bit.

Queries per partition: one aggregate query for every column (counts, nulls, extremes, mean,
std, zeros, negatives, infinities, string lengths, COUNT(DISTINCT), and on PostgreSQL the
quantiles through ``percentile_cont ... WITHIN GROUP``, which interpolates linearly between
order statistics exactly as pandas does), then one GROUP BY per categorical column for its
top-k and its distinct count. All of them read one snapshot on PostgreSQL. Dialects without these aggregates (SQLite) get two more kinds of query, see
``_deviations`` and ``_ranked_quantiles``.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from detectors.result import Detection, Finding
from monitors.contract import ARROW_TYPES, ColumnSpec, Contract, LogicalType
from monitors.credentials import expand, scrub
from monitors.errors import Unreachable
from monitors.intake.profile import QUANTILES, MetricValue, category_key
from monitors.intake.readers import ContractViolation

# dialects with stddev_samp and percentile_cont(array) WITHIN GROUP as aggregates; the others
# take the portable route (two-pass variance, one window query per column for quantiles)
_NATIVE_STATISTICS = {"postgresql"}
# where a float column can hold NaN and ±inf; elsewhere (SQLite turns NaN into NULL, MySQL
# refuses both) binding them as parameters would fail or mean nothing
_KEEPS_NAN = {"postgresql"}
_KEEPS_INFINITY = {"postgresql", "sqlite"}
# the source types a contract type accepts besides its own, as the file readers do
_WIDENINGS = {(LogicalType.integer, LogicalType.float), (LogicalType.date, LogicalType.timestamp),
              (LogicalType.integer, LogicalType.boolean)}
# collations that compare UTF-8 bytes, hence code points, as Arrow does
_BYTE_COLLATIONS = {"postgresql": "C", "sqlite": "BINARY"}
# PostgreSQL refuses a select list longer than 1664 entries and SQLite one past 2000: a wide
# table costs another scan per thousand aggregates (about a hundred columns)
MAX_SELECTED = 1000
# seconds a SQL source may take to accept a connection before it counts as unreachable
CONNECT_TIMEOUT = 10
_EPOCH_DATE = dt.date(1970, 1, 1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def source_type(sql_type: sa.types.TypeEngine) -> LogicalType | None:
    """The logical type a reflected column type stands for; None when it has none."""
    # Boolean before Integer: some dialects derive one from the other
    for kind, logical in ((sa.Boolean, LogicalType.boolean), (sa.Integer, LogicalType.integer),
                          (sa.Float, LogicalType.float), (sa.Numeric, LogicalType.float),
                          (sa.String, LogicalType.string), (sa.DateTime, LogicalType.timestamp),
                          (sa.Date, LogicalType.date)):
        if isinstance(sql_type, kind):
            return logical
    return None


@dataclass
class _Column:
    """One contract column: the expressions of the aggregate query and what they answered."""
    index: int
    spec: ColumnSpec
    found: LogicalType
    column: ColumnElement
    dialect: str
    top_k: int
    labels: list[sa.Label] = field(default_factory=list)

    @property
    def kind(self) -> LogicalType:
        return self.spec.type

    @property
    def numeric(self) -> bool:
        return self.kind in (LogicalType.integer, LogicalType.float)

    @property
    def counted(self) -> bool:
        """Whether it gets freq/freq_other, as BatchProfiler decides."""
        return (self.kind in (LogicalType.string, LogicalType.boolean)
                or (self.numeric and self.spec.categorical))

    @property
    def grouped(self) -> bool:
        """Whether its top-k query also answers its distinct count: the groups of a hashed
        GROUP BY cost a fraction of COUNT(DISTINCT)'s sort (0.16 s against 0.4 s for 1M strings
        of 300 values on PostgreSQL)."""
        return self.counted and self.top_k > 0

    def _add(self, name: str, expression: ColumnElement) -> None:
        # labels are ours, never a column's name: data-borne names reach SQL only as quoted
        # identifiers through the reflected table
        self.labels.append(expression.label(f"c{self.index}_{name}"))

    def value(self, row: Mapping[str, Any], name: str) -> Any:
        return row[f"c{self.index}_{name}"]

    def is_nan(self) -> ColumnElement[bool] | None:
        if self.found != LogicalType.float or self.dialect not in _KEEPS_NAN:
            return None
        # PostgreSQL orders NaN equal to itself, unlike IEEE: '=' finds it
        return self.column == sa.literal(math.nan, sa.Float)

    def is_infinite(self) -> ColumnElement[bool] | None:
        if self.found != LogicalType.float or self.dialect not in _KEEPS_INFINITY:
            return None
        return self.column.in_([sa.literal(math.inf, sa.Float), sa.literal(-math.inf, sa.Float)])

    def present(self) -> ColumnElement[bool]:
        """Not missing: not NULL and not NaN."""
        nan = self.is_nan()
        return self.column.is_not(None) if nan is None else sa.and_(self.column.is_not(None), sa.not_(nan))

    def finite(self) -> ColumnElement[bool]:
        infinite = self.is_infinite()
        return self.present() if infinite is None else sa.and_(self.present(), sa.not_(infinite))

    def finite_values(self) -> ColumnElement:
        values = sa.cast(self.column, sa.Float)
        if self.is_nan() is None and self.is_infinite() is None:
            return values  # NULL stays NULL: a CASE per row per aggregate would buy nothing
        return sa.case((self.finite(), values))

    def build(self) -> list[sa.Label]:
        present = self.present()
        self._add("count", sa.func.count(sa.case((present, 1))))
        if not self.grouped:
            self._add("distinct", sa.func.count(sa.distinct(sa.case((present, self.comparable())))))
        if self.numeric:
            self._numeric()
        elif self.kind == LogicalType.string:
            length = sa.func.length(self.column)
            self._add("length_min", sa.func.min(length))
            self._add("length_sum", sa.func.sum(length))
            self._add("length_max", sa.func.max(length))
        elif self.kind in (LogicalType.date, LogicalType.timestamp):
            self._add("min", sa.func.min(self.column))
            self._add("max", sa.func.max(self.column))
        elif self.kind == LogicalType.boolean and self.found == LogicalType.integer:
            # 0/1 integers may stand for booleans (SQLite stores them so); anything else may not
            self._add("min", sa.func.min(self.column))
            self._add("max", sa.func.max(self.column))
        return self.labels

    def _numeric(self) -> None:
        finite = self.finite_values()
        self._add("finite", sa.func.count(finite))
        self._add("min", sa.func.min(finite))
        self._add("max", sa.func.max(finite))
        self._add("mean", sa.func.avg(finite))
        self._add("zeros", sa.func.count(sa.case((self.column == 0, 1))))
        self._add("negatives", sa.func.count(sa.case((self.column < 0, 1))))
        infinite = self.is_infinite()
        if infinite is not None:
            self._add("infinite", sa.func.count(sa.case((infinite, 1))))
        if self.dialect in _NATIVE_STATISTICS:
            self._add("std", sa.func.stddev_samp(finite))
            ranks = postgresql.array([sa.literal(q, sa.Float) for q in QUANTILES.values()])
            quantiles = sa.func.percentile_cont(ranks, type_=postgresql.ARRAY(sa.Float)).within_group(finite)
            self._add("quantiles", quantiles)

    def comparable(self) -> ColumnElement:
        """The column compared byte by byte where it is text, as Arrow compares strings.

        PostgreSQL's "C" collation and SQLite's BINARY compare UTF-8 bytes: distinct values
        are then distinct bytes whatever the column's collation (a case-insensitive one would
        merge 'a' and 'A'), ordering is by code point, and PostgreSQL's COUNT(DISTINCT) over
        1M strings ran about twice as fast as under the cluster's linguistic default."""
        collation = _BYTE_COLLATIONS.get(self.dialect)
        if self.found != LogicalType.string or collation is None:
            return self.column
        return self.column.collate(collation)

    def order_key(self) -> ColumnElement:
        """BatchProfiler's tie-break: the value as Arrow spells it, in code-point order."""
        if self.found == LogicalType.string:
            return self.comparable()
        spelled = sa.cast(self.column, sa.Text)
        collation = _BYTE_COLLATIONS.get(self.dialect)
        return spelled if collation is None else spelled.collate(collation)


def _reflect(engine: Engine, table_name: str, where: str) -> sa.Table:
    try:
        return sa.Table(table_name, sa.MetaData(), autoload_with=engine)
    except NoSuchTableError:
        raise ContractViolation(f"{where}: no table {table_name!r} in the source database") from None


def _plan(source: sa.Table, contract: Contract, partition_key: str, dialect: str, top_k: int,
          where: str) -> list[_Column]:
    missing = [name for name in [*contract.names, partition_key] if name not in source.c]
    if missing:
        raise ContractViolation(f"{where}: missing column(s) {', '.join(map(repr, missing))}; "
                                f"the table has {list(source.c.keys())}")
    plans = []
    for index, spec in enumerate(contract.columns):
        sql_type = source.c[spec.name].type
        found = source_type(sql_type)
        if found is None or (found != spec.type and (found, spec.type) not in _WIDENINGS):
            raise ContractViolation(f"{where}: column {spec.name!r}: expected {spec.type}, "
                                    f"found {found or sql_type}")
        plans.append(_Column(index, spec, found, source.c[spec.name], dialect, top_k))
    return plans


def _partition_value(key: sa.Column, partition: object) -> Any:
    # a partition key kept as text ('2026-03-02') is compared as text: a date parameter
    # against a text column is an error on PostgreSQL
    if isinstance(key.type, sa.String) and isinstance(partition, dt.date):
        return partition.isoformat()
    return partition


def _epoch_seconds(value: Any) -> float:
    """BatchProfiler's temporal extremes: seconds since the epoch, UTC; naive times are UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        # whole microseconds divided once, as the profiler divides its stored integers
        return ((value - _EPOCH) // dt.timedelta(microseconds=1)) / 1_000_000
    return (value - _EPOCH_DATE).days * 86_400.0


def _lerp(low: float, high: float, fraction: float) -> float:
    # numpy's two-sided form, so that both paths agree to the last bit where they can
    step = high - low
    return high - step * (1 - fraction) if fraction >= 0.5 else low + step * fraction


def _ranked_quantiles(connection: Connection, source: sa.Table, condition: ColumnElement[bool],
                      plan: _Column, n: int) -> list[float]:
    """Quantiles without percentile_cont: the two order statistics around each rank.

    One query numbers the finite values with row_number() over one sort and returns only the
    (at most 14) rows at the ranks needed. This beats an ORDER BY ... LIMIT 2 OFFSET k query
    per quantile (seven sorts of the column instead of one) and fetching the column (the
    rows would leave the database, and memory would grow with the partition)."""
    positions = [q * (n - 1) for q in QUANTILES.values()]
    needed = sorted({r for p in positions for r in (math.floor(p) + 1, min(math.floor(p) + 2, n))})
    value = plan.finite_values()
    ranked = (sa.select(value.label("v"), sa.func.row_number().over(order_by=value).label("r"))
              .select_from(source).where(condition, plan.finite()).subquery())
    found = {r: float(v) for v, r in connection.execute(sa.select(ranked.c.v, ranked.c.r)
                                                        .where(ranked.c.r.in_(needed)))}
    return [_lerp(found[math.floor(p) + 1], found[min(math.floor(p) + 2, n)], p - math.floor(p))
            for p in positions]


def _deviations(connection: Connection, source: sa.Table, condition: ColumnElement[bool],
                plans: Sequence[_Column], means: Mapping[int, float]) -> dict[int, tuple[float, float]]:
    """Sums of deviations and of squared deviations about each column's mean, in one query.

    Without stddev_samp the variance comes from sums, but sum(x^2) - sum(x)^2 / n cancels
    catastrophically when the mean is large against the spread (amounts around 1e6 that vary
    by cents would lose every digit). Deviations about the first query's mean are small, and
    their plain sum corrects for that mean's own rounding (the corrected two-pass algorithm)."""
    expressions = []
    for plan in plans:
        deviation = plan.finite_values() - sa.literal(means[plan.index], sa.Float)
        expressions += [sa.func.sum(deviation).label(f"d{plan.index}"),
                        sa.func.sum(deviation * deviation).label(f"s{plan.index}")]
    row = connection.execute(sa.select(*expressions).select_from(source).where(condition)).mappings().one()
    return {plan.index: (float(row[f"d{plan.index}"]), float(row[f"s{plan.index}"])) for plan in plans}


def _top(connection: Connection, source: sa.Table, condition: ColumnElement[bool],
         plan: _Column) -> tuple[list[tuple[str, int]], int]:
    """The top-k values with their counts, and how many distinct values there are."""
    value = plan.comparable()
    count = sa.func.count().label("n")
    # the window runs over the groups before LIMIT keeps k of them
    groups = sa.func.count().over().label("groups")
    query = (sa.select(value, count, groups).select_from(source).where(condition, plan.present())
             .group_by(value).order_by(count.desc(), plan.order_key()).limit(plan.top_k))
    rows = connection.execute(query).all()
    if not rows:
        return [], 0
    values = [v + 0.0 if isinstance(v, float) else v for v, _, _ in rows]  # -0.0 is 0.0, as for pandas
    keys = pc.cast(pc.cast(pa.array(values), ARROW_TYPES[plan.kind]), pa.string()).to_pylist()
    return [(key, int(n)) for key, (_, n, _) in zip(keys, rows)], int(rows[0][2])


def _check(plan: _Column, row: Mapping[str, Any], rows: int, where: str) -> None:
    name = plan.spec.name
    nulls = rows - int(plan.value(row, "count"))
    if not plan.spec.nullable and nulls:
        raise ContractViolation(f"{where}: column {name!r} is declared not null but has "
                                f"{nulls} null value(s)")
    if plan.kind == LogicalType.boolean and plan.found == LogicalType.integer:
        low, high = plan.value(row, "min"), plan.value(row, "max")
        if low is not None and (low < 0 or high > 1):
            raise ContractViolation(f"{where}: column {name!r}: expected boolean, found integer "
                                    f"(values from {low} to {high})")


def _metrics(connection: Connection, source: sa.Table, condition: ColumnElement[bool], plan: _Column,
             row: Mapping[str, Any], rows: int, extra: Mapping[str, Any]) -> list[MetricValue]:
    """One column's metrics, in BatchProfiler's order."""
    count = int(plan.value(row, "count"))
    found: list[tuple[str, float]] = [("count", count), ("nulls", rows - count)]
    if rows:
        found.append(("null_fraction", (rows - count) / rows))
    top, distinct = _top(connection, source, condition, plan) if plan.grouped else ([], None)
    if distinct is None:
        distinct = int(plan.value(row, "distinct"))
    found.append(("distinct", distinct))
    if plan.numeric:
        finite = int(plan.value(row, "finite"))
        if finite:
            found += [("min", plan.value(row, "min")), ("max", plan.value(row, "max")),
                      ("mean", plan.value(row, "mean"))]
        if finite > 1:
            found.append(("std", extra["std"]))
        found += list(zip(QUANTILES, extra.get("quantiles") or []))
        found += [("zeros", plan.value(row, "zeros")), ("negatives", plan.value(row, "negatives"))]
        if plan.kind == LogicalType.float:
            found.append(("infinite", 0 if plan.is_infinite() is None else plan.value(row, "infinite")))
    elif plan.kind == LogicalType.string and count:
        found += [("length_min", plan.value(row, "length_min")),
                  ("length_mean", plan.value(row, "length_sum") / count),
                  ("length_max", plan.value(row, "length_max"))]
    elif plan.kind in (LogicalType.date, LogicalType.timestamp) and count:
        found += [("min", _epoch_seconds(plan.value(row, "min"))),
                  ("max", _epoch_seconds(plan.value(row, "max")))]
    metrics = [MetricValue(plan.spec.name, metric, float(value)) for metric, value in found]
    if plan.counted:
        metrics += [MetricValue(plan.spec.name, "freq", float(n), category_key(key))
                    for key, n in top]
        other = max(count - sum(n for _, n in top), 0)
        metrics.append(MetricValue(plan.spec.name, "freq_other", float(other)))
    return metrics


def source_engine(source: str) -> Engine:
    """An engine on a SQL source (its `${NAME}` secrets read only now) that gives up on a
    server that does not answer within CONNECT_TIMEOUT seconds, where the driver takes a
    bound (PostgreSQL's own default is to wait for ever): an outage, not a hung run."""
    url = sa.make_url(expand(source))
    connect_args = {}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    return sa.create_engine(url, connect_args=connect_args)


def _reach(engine: Engine, where: str) -> None:
    """Connect once before anything is asked: whatever fails here (refused, timed out, no
    such host, a database file that cannot be opened) is the source being out of reach, told
    apart from a query the database refuses, which is about the data or the contract."""
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        raise _unreachable(exc, engine, where) from None


def _unreachable(exc: SQLAlchemyError, engine: Engine, where: str) -> Unreachable:
    said = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return Unreachable(f"{where}: source unreachable ({scrub(said[0] if said else type(exc).__name__, engine.url)})")


def _snapshot(engine: Engine) -> Connection:
    """A connection whose queries all see one snapshot, where the dialect offers it cheaply:
    rows committed between the aggregate and the top-k queries would otherwise make the
    frequencies disagree with the counts."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return connection


def _statistics(connection: Connection, source: sa.Table, condition: ColumnElement[bool],
                numeric: Sequence[_Column], row: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Each numeric column's std and quantiles: read from the aggregate row where the dialect
    computed them, else from the extra queries of the portable route."""
    extra: dict[int, dict[str, Any]] = {plan.index: {} for plan in numeric}
    finite = {plan.index: int(plan.value(row, "finite")) for plan in numeric}
    native = [plan for plan in numeric if plan.dialect in _NATIVE_STATISTICS]
    for plan in native:
        extra[plan.index]["std"] = plan.value(row, "std")
        extra[plan.index]["quantiles"] = plan.value(row, "quantiles") if finite[plan.index] else None
    portable = [plan for plan in numeric if plan.dialect not in _NATIVE_STATISTICS]
    for plan in portable:
        if finite[plan.index]:
            extra[plan.index]["quantiles"] = _ranked_quantiles(connection, source, condition, plan,
                                                               finite[plan.index])
    spread = [plan for plan in portable if finite[plan.index] > 1]
    means = {plan.index: float(plan.value(row, "mean")) for plan in spread}
    for start in range(0, len(spread), MAX_SELECTED // 2):
        part = spread[start:start + MAX_SELECTED // 2]
        for index, (first, second) in _deviations(connection, source, condition, part, means).items():
            n = finite[index]
            extra[index]["std"] = math.sqrt(max(second - first * first / n, 0.0) / (n - 1))
    return extra


def profile_sql_partition(engine: Engine, table_name: str, partition_key: str, partition: object,
                          contract: Contract, *, top_k: int = 20) -> list[MetricValue]:
    """The profile of the rows of ``table_name`` where ``partition_key = partition``.

    Raises ContractViolation, with the reason a quarantined batch shows, when the table or a
    column is missing, a column's type can't hold the contract's, a not-null column has
    nulls, or the database refuses a query. Names are reflected and quoted by SQLAlchemy.

    Raises Unreachable when the database cannot be reached (it refuses the connection,
    times out, or drops it midway): an outage says nothing about the data, so it must not
    quarantine a batch."""
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    where = f"{table_name} where {partition_key} = {partition}"
    _reach(engine, where)
    try:
        source = _reflect(engine, table_name, where)
        dialect = engine.dialect.name
        plans = _plan(source, contract, partition_key, dialect, top_k, where)
        key = source.c[partition_key]
        condition = key == _partition_value(key, partition)
        with _snapshot(engine) as connection:
            aggregates = [sa.func.count().label("rows")] + [label for plan in plans for label in plan.build()]
            row: dict[str, Any] = {}
            for start in range(0, len(aggregates), MAX_SELECTED):
                query = sa.select(*aggregates[start:start + MAX_SELECTED]).select_from(source).where(condition)
                row.update(connection.execute(query).mappings().one())
            rows = int(row["rows"])
            for plan in plans:
                _check(plan, row, rows, where)
            extra = _statistics(connection, source, condition, [p for p in plans if p.numeric], row)
            metrics = [MetricValue(None, "row_count", float(rows)),
                       MetricValue(None, "column_count", float(len(plans)))]
            for plan in plans:
                metrics += _metrics(connection, source, condition, plan, row, rows, extra.get(plan.index, {}))
    except SQLAlchemyError as exc:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:  # lost midway
            raise _unreachable(exc, engine, where) from None
        # the reason is shown everywhere (batches, alerts, notifications); some drivers
        # quote their connection string in it
        raise ContractViolation(f"{where}: {scrub(str(exc).splitlines()[0], engine.url)}") from None
    except ValueError as exc:
        # a result processor that can't parse what SQLite holds in a DATE or DATETIME column
        raise ContractViolation(f"{where}: values that don't convert ({exc})") from None
    return metrics


def infer_table_contract(dataset) -> Contract:
    """A SQL dataset's contract from its table's columns (reflected, no rows read): every
    column a contract type fits, the partition key left out (one value per partition)."""
    engine = source_engine(dataset.source)
    try:
        table_name = dataset.table_name or dataset.name
        _reach(engine, f"dataset {dataset.name}")
        source = _reflect(engine, table_name, f"dataset {dataset.name}")
    finally:
        engine.dispose()
    columns = [ColumnSpec(name=c.name, type=kind) for c in source.columns
               if c.name != dataset.partition_key and (kind := source_type(c.type)) is not None]
    return Contract(columns=columns, inferred=True)


# ---- static checks computed inside the source database ---------------------------------


class Unsupported(Exception):
    """A declared check this dialect cannot compute in the database: reported as the
    monitor's failure (a finding someone fixes), never skipped."""


# dialects with a regular-expression operator SQLAlchemy compiles (`regexp_match`)
_REGEX_DIALECTS = {"postgresql", "mysql", "mariadb", "oracle"}


def check_sql_partition(engine: Engine, table_name: str, partition_key: str, partition: object,
                        contract: Contract, check: str, columns: Sequence[str],
                        options: Mapping[str, Any], *, at: Any = None,
                        mask: Sequence[str] = ()) -> Detection:
    """A static check (detectors.checks' names and options) over the rows of one partition,
    computed by the database: the failing rows are counted there and at most `examples` of
    them are fetched as evidence (sensitive columns masked). Returns a Detection, as the
    in-memory checks do. Raises Unsupported when the dialect can't compute the check
    (`expression` anywhere, `matches_pattern` without a regular-expression operator)."""
    options = dict(options)
    examples = int(options.pop("examples", 5))
    max_fraction = float(options.pop("max_fraction", 0.0))
    dialect = engine.dialect.name
    if check == "expression":
        raise Unsupported(f"expression: a pandas expression can't be computed inside the "
                          f"{dialect} database; declare it as in_range, allowed_values, "
                          f"not_null, unique or matches_pattern, or drop it")
    if check == "matches_pattern" and dialect not in _REGEX_DIALECTS:
        raise Unsupported(f"matches_pattern: {dialect} has no regular-expression operator, so "
                          f"this check can't be computed inside the database")
    where = f"{table_name} where {partition_key} = {partition}"
    try:
        source = _reflect(engine, table_name, where)
        plans = {p.spec.name: p for p in _plan(source, contract, partition_key, dialect, 0, where)}
        unknown = [c for c in columns if c not in plans]
        if unknown:
            raise ValueError(f"{check}: column {unknown[0]!r} is not in the contract")
        key = source.c[partition_key]
        condition = key == _partition_value(key, partition)
        failing, subject, what, groups = _failing(check, [plans[c] for c in columns], options,
                                                  source, condition)
        with _snapshot(engine) as connection:
            rows = connection.execute(sa.select(sa.func.count()).select_from(source)
                                      .where(condition)).scalar_one()
            if not rows:
                return Detection(check, skipped="batch has no rows")
            count = connection.execute(sa.select(sa.func.count()).select_from(source)
                                       .where(condition, failing)).scalar_one()
            fraction = count / rows
            if count == 0 or fraction <= max_fraction:
                return Detection(check)
            if groups is not None:
                n_keys = connection.execute(groups).scalar_one()
                what = f"sharing {n_keys:,} duplicated key{'s' if n_keys != 1 else ''}"
            extra = ""
            if check == "allowed_values":
                plan = plans[columns[0]]
                found = connection.execute(sa.select(plan.column).where(condition, failing)
                                           .distinct().limit(3)).scalars().all()
                extra = "; e.g. " + ", ".join(repr(_plain(v)) for v in found)
            evidence = connection.execute(sa.select(source).where(condition, failing)
                                          .limit(examples)).mappings().all() if examples else []
    except SQLAlchemyError as exc:
        raise Unsupported(f"{check}: the {dialect} database refused the check's query: "
                          f"{scrub(str(exc).splitlines()[0], engine.url)}") from None
    hidden = set(mask)
    shown = tuple({name: "***" if name in hidden else _plain(value) for name, value in row.items()}
                  for row in evidence)
    detail = f"[{check}] {subject}: {count:,} of {rows:,} rows {what} ({fraction:.1%}){extra}"
    if max_fraction > 0:
        detail += f"; tolerance {max_fraction:.1%}"
    return Detection(check, (Finding(at=at, value=float(count), expected=0.0, lower=None,
                                     upper=max_fraction * rows, score=fraction, detail=detail,
                                     count=int(count), fraction=fraction, examples=shown),))


def _failing(check: str, plans: Sequence[_Column], options: Mapping[str, Any], source: sa.Table,
             condition: ColumnElement[bool]) -> tuple[ColumnElement[bool], str, str, Any]:
    """The condition a failing row meets, the subject and words of the message, and for
    `unique` the query counting the duplicated keys."""
    plan = plans[0]
    column, present = plan.column, plan.present()
    if check == "not_null":
        return sa.not_(present), plan.spec.name, "null", None
    if check == "in_range":
        low, high = options.get("min"), options.get("max")
        if low is None and high is None:
            raise ValueError("in_range: give min, max or both")
        outside = [column < low] if low is not None else []
        outside += [column > high] if high is not None else []
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        return sa.and_(present, sa.or_(*outside)), plan.spec.name, f"outside {bounds}", None
    if check == "allowed_values":
        values = list(options["values"])
        return (sa.and_(present, column.not_in(values)), plan.spec.name,
                "outside the allowed set", None)
    if check == "matches_pattern":
        pattern = options["pattern"]
        regex = f"^(?:{pattern})$" if options.get("full", True) else pattern
        text = column if plan.found == LogicalType.string else sa.cast(column, sa.Text)
        return (sa.and_(present, sa.not_(text.regexp_match(regex))), plan.spec.name,
                f"not matching /{pattern}/", None)
    if check == "unique":
        keys = [p.column for p in plans]
        complete = sa.and_(*(p.present() for p in plans))
        duplicated = (sa.select(*keys).select_from(source).where(condition, complete)
                      .group_by(*keys).having(sa.func.count() > 1).subquery())
        # a row fails when its whole key is among the duplicated ones (a tuple IN is not
        # portable; EXISTS with one equality per key column is)
        same = sa.and_(*(duplicated.c[k.name] == k for k in keys))
        subject = plans[0].spec.name if len(plans) == 1 else \
            "(" + ", ".join(p.spec.name for p in plans) + ")"
        groups = sa.select(sa.func.count()).select_from(duplicated)
        return sa.exists().where(same), subject, "", groups
    raise Unsupported(f"{check}: not a check that can be computed inside the database")


def _plain(value: Any) -> Any:
    """Evidence as JSON-friendly values."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)
