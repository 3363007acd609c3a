"""Monitors as code: the YAML file that declares datasets (and, later, their monitors).

Validation errors name the key and the line, so a typo is found in seconds.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from detectors import registry
from monitors.contract import Contract
from monitors.credentials import holds_secret
from monitors.errors import Invalid
from monitors.intake.file_roots import inside_roots
from monitors.intake.labels import LabelsConfig
from monitors.notifications import NotificationsConfig
from monitors.pipeline.schedule import cron_trigger
from monitors.settings import Limits, Settings
from monitors.stage_config import StageConfig, parse_stages
from store.models import Severity

DATASET_NAME = r"^[A-Za-z0-9_.-]{1,200}$"


# the names, not the enum: the config is written back to YAML as plain strings
SeverityName = Literal[tuple(s.value for s in Severity)]
# the names come from the detector registry, which also knows each one's options
CHECKS = registry.CHECKS
DETECTORS = registry.MONITORS


def check_options(detector: str, options: Any) -> dict[str, Any]:
    """`options` as a plain dict when `detector` takes every one of them with the right type
    (detectors.registry); else Invalid naming each bad option and listing the allowed ones.
    What config loading applies to every monitor and check, for callers that edit one."""
    try:
        return registry.validate_options(detector, options)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


class CheckConfig(BaseModel):
    """A static check run on every batch's rows (detectors.checks)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None          # default: "<check>:<column(s)>"
    check: Literal[CHECKS]
    column: str | None = None
    columns: list[str] | None = None  # unique over a compound key
    options: dict[str, Any] = {}     # min/max, values, pattern, expr, max_fraction
    severity: SeverityName = "critical"
    enabled: bool = True

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        check = info.data.get("check")  # absent when the check's name was refused
        return value if check is None else registry.validate_options(check, value)

    def label(self) -> str:
        subject = ",".join(self.columns or [self.column or "rows"])
        return self.name or f"{self.check}:{subject}"


class MonitorConfig(BaseModel):
    """A detector over a stored metric's history (detectors.*)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    metric: str                      # row_count, null_fraction, mean, p50, freq, arrival_delay_hours, ...
    column: str | None = None        # None for table-level metrics
    detector: Literal[DETECTORS]
    options: dict[str, Any] = {}
    severity: SeverityName = "warning"
    enabled: bool = True

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        detector = info.data.get("detector")  # absent when the detector's name was refused
        return value if detector is None else registry.validate_options(detector, value)


class AutomaticMonitors(BaseModel):
    """The monitors every dataset gets without a line of config; each family can be
    switched off."""

    model_config = ConfigDict(extra="forbid")

    volume: bool = True        # row count: seasonal anomalies and breakouts
    freshness: bool = True     # late and missing batches
    contract: bool = True      # quarantined batches (schema or content breaks the contract)
    nulls: bool = True         # null fraction per column, proportional
    levels: bool = True        # breakouts in numeric columns' means
    categories: bool = True    # new categories in string columns
    drift: bool = True         # distribution drift of every column (features, scores, classes)
    profiles: bool = True      # one-batch shifts of a column's profile (mean, quantiles, shares...)
    duplicates: bool = True    # repeats in columns that were unique in every batch
    repeats: bool = True       # a batch whose content repeats an earlier partition's
    performance: bool = True   # a model output with labels: AUC floor and drop, Brier, ECE


class ReferenceConfig(BaseModel):
    """A pinned reference for drift (the model's training period, say): a date range
    (`from`, `to`, both included) or the dataset's `first` N partitions; for one `column`,
    or every drift monitor of the dataset when none is named. Drift is judged against it
    as well as against the recent window (monitors.judge.references)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str | None = None
    start: dt.date | None = Field(default=None, alias="from")
    end: dt.date | None = Field(default=None, alias="to")
    first: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> "ReferenceConfig":
        if (self.first is None) == (self.start is None or self.end is None):
            raise ValueError("a reference is either `from` and `to` (dates) or `first` "
                             "(a number of partitions)")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"`from` {self.start} is after `to` {self.end}")
        return self


class GateConfig(BaseModel):
    """How strict the gate of this dataset's partitions is (monitors.pipeline.gates): an open
    alert of `holds_on` or worse, on the partition or the same partition of an upstream,
    holds the stages that build on it. `critical` (the default) lets warnings through;
    `warning` is for a dataset whose stages feed consumers (scoring, delivery)."""

    model_config = ConfigDict(extra="forbid")

    holds_on: SeverityName = "critical"

    @field_validator("holds_on", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in {s.value for s in Severity}:
            raise ValueError(f"{value!r} is not a severity: the gate holds on one of "
                             f"{', '.join(s.value for s in Severity)} (and anything worse)")
        return value


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DATASET_NAME)
    kind: Literal["data", "model_output", "labels"] = "data"
    format: Literal["csv", "parquet", "jsonl", "sql"]
    # files: a folder (relative to MONITORS_HOME or absolute) inside the file roots;
    # sql: a SQLAlchemy URL, where ${NAME} stands for an environment variable (a password)
    source: str
    # sql: the table to read, one partition per value of partition_key
    table: str | None = None
    partition_key: str = "partition"
    schedule: str = "0 6 * * *"
    # finite and within a year: `.inf` was accepted, and then every run failed
    deadline_hours: float = Field(default=6.0, ge=0, le=366 * 24, allow_inf_nan=False)
    contract: Contract | None = None
    owner: str | None = None
    automatic: AutomaticMonitors = AutomaticMonitors()
    checks: list[CheckConfig] = []
    monitors: list[MonitorConfig] = []
    # lineage: the datasets this one is built from (checked against the file's datasets)
    upstream: list[str] = []
    references: list[ReferenceConfig] = []
    # with no reference pinned for the whole dataset, drift is also judged against its first
    # this many weeks of partitions (once it has them all): a persistent drift then stays
    # open instead of being forgotten by the recent window within a week. 0: none
    default_reference_weeks: int = Field(default=4, ge=0, le=520)
    # the commands that build on each verified partition, in order (monitors.pipeline.stages)
    stages: list[StageConfig] = []
    # which alerts hold those stages: `gate: {holds_on: warning}` (default critical)
    gate: GateConfig = GateConfig()

    @field_validator("stages", mode="before")
    @classmethod
    def _stages(cls, value: Any, info: ValidationInfo) -> list[StageConfig]:
        return parse_stages(value, info.data.get("name"))

    # a model output's labels: the labels dataset, key, outcome, delay (monitors.intake.labels)
    labels: LabelsConfig | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: LabelsConfig | None, info: ValidationInfo) -> LabelsConfig | None:
        if value is not None and info.data.get("kind") != "model_output":
            raise ValueError("only a model output (kind: model_output) has labels")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str, info: ValidationInfo) -> str:
        fmt = info.data.get("format")
        if fmt == "sql" and holds_secret(value):
            raise ValueError("the URL holds a password: write ${NAME} in its place and set the "
                             "environment variable NAME (this file is versioned, and the source "
                             "is stored and shown)")
        # roots are checked when the file is loaded for a process (parse_config's settings)
        settings: Settings | None = (info.context or {}).get("settings")
        if settings is not None and fmt not in (None, "sql"):
            inside_roots(settings.home / value, settings.file_roots)
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        trigger = cron_trigger(value)  # raises ValueError saying what is wrong with the expression
        if trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC)) is None:
            raise ValueError(f"{value!r} never fires: no date has that day in that month")
        return value


class MonitorsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    datasets: list[DatasetConfig] = []
    # webhook routes (monitors.notifications documents the keys); url_env is read at send time
    notifications: NotificationsConfig | None = None

    @field_validator("datasets")
    @classmethod
    def _unique(cls, datasets: list[DatasetConfig]) -> list[DatasetConfig]:
        seen: set[str] = set()
        for d in datasets:
            if d.name in seen:
                raise ValueError(f"dataset {d.name!r} is declared twice")
            seen.add(d.name)
        check_lineage({d.name: d.upstream for d in datasets})
        for d in datasets:
            if d.labels is not None:
                _check_labels_link(d, next((o for o in datasets if o.name == d.labels.dataset), None))
        return datasets

    def dataset(self, name: str) -> DatasetConfig | None:
        return next((d for d in self.datasets if d.name == name), None)

    def version_hash(self) -> str:
        """The config version: a hash of its normal form (key order and comments don't count)."""
        normal = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(normal.encode()).hexdigest()[:16]


def check_lineage(upstreams: dict[str, list[str]]) -> None:
    """ValueError naming the dataset when an upstream is not a declared dataset, or when
    following upstreams leads back to where it started (a cycle)."""
    for name, names in upstreams.items():
        for upstream in names:
            if upstream not in upstreams:
                raise ValueError(f"dataset {name!r}: upstream {upstream!r} is not a declared "
                                 f"dataset (known: {', '.join(upstreams)})")
    finished: set[str] = set()
    for start in upstreams:
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:  # depth first, iteratively: a long chain must not hit the recursion limit
            name, leaving = stack.pop()
            if leaving:
                path.pop()
                on_path.discard(name)
                finished.add(name)
                continue
            if name in on_path:
                cycle = path[path.index(name):] + [name]
                raise ValueError(f"dataset {name!r}: its upstreams form a cycle "
                                 f"({' -> '.join(cycle)})")
            if name in finished:
                continue
            path.append(name)
            on_path.add(name)
            stack.append((name, True))
            stack.extend((u, False) for u in reversed(upstreams[name]))


def _check_labels_link(model: DatasetConfig, labels: DatasetConfig | None) -> None:
    """A model output's labels must name a declared labels dataset whose deadline leaves
    room for the delay (else every batch of labels would be late)."""
    link = model.labels
    if labels is None or labels.kind != "labels":
        raise ValueError(f"dataset {model.name!r}: labels.dataset {link.dataset!r} is not a "
                         "declared dataset of kind labels")
    if labels.deadline_hours < 24 * link.delay_days:
        raise ValueError(f"dataset {labels.name!r}: deadline_hours {labels.deadline_hours:g} is "
                         f"shorter than the {link.delay_days} day(s) its labels take to arrive "
                         f"({model.name!r} labels.delay_days): every batch would be late")


class ConfigError(Invalid):
    """A config file that can't be used; the message names the file, key and line."""


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the deepest YAML node along a pydantic error location."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                # an unknown key: point at the key itself
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_config(text: str, origin: str = "<config>",
                 settings: Settings | None = None) -> MonitorsConfig:
    """The config in `text`; with `settings`, file sources must also lie inside its file
    roots (monitors.intake.file_roots), and its limits bound the file's size once aliases are
    expanded (the defaults otherwise)."""
    limits = settings.limits if settings is not None else Limits()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        # the node tree first (aliases are shared nodes there, so it is as small as the
        # text), checked before anything expands it: building the dict from a billion-laughs
        # file, or hashing it, is what exhausts memory
        node = loader.get_single_node()
        if node is not None:
            _check_nodes(node, origin, limits.config_nodes)
        data = (loader.construct_document(node) if node is not None else None) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping with a 'datasets' key")
    try:
        return MonitorsConfig.model_validate(data, context={"settings": settings})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            key = ".".join(str(p) for p in loc) or "(top level)"
            subject = _subject_of(data, loc)
            message = f"{subject}: {err['msg'].removeprefix('Value error, ')}" if subject \
                else err["msg"]
            problems.append(f"{origin}:{_line_of(node, loc)}: {key}: {message}")
        raise ConfigError("\n".join(problems)) from None


def _subject_of(data: dict, loc: tuple) -> str:
    """"dataset sales, monitor rows" for an error inside a monitor (or a check): what a
    reader looks for, where the key path only counts list positions."""
    if len(loc) < 4 or loc[0] != "datasets" or loc[2] not in ("monitors", "checks"):
        return ""
    try:
        dataset = data["datasets"][loc[1]]
        item = dataset[loc[2]][loc[3]]
    except (KeyError, IndexError, TypeError):
        return ""
    if not isinstance(dataset, dict) or not isinstance(item, dict):
        return ""
    if loc[2] == "monitors":
        what = f"monitor {item.get('name', '?')}"
    else:  # a check's default name, as CheckConfig.label() gives it
        subject = ",".join(item.get("columns") or [item.get("column") or "rows"])
        label = item.get("name") or f"{item.get('check')}:{subject}"
        what = f"check {label}"
    return f"dataset {dataset.get('name', '?')}, {what}"


MERGE_TAG = "tag:yaml.org,2002:merge"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_nodes(root: yaml.Node, origin: str, bound: int) -> None:
    """Refuse a node tree that aliases expand beyond `bound` nodes, that refers to itself,
    or that has a key twice in one mapping (YAML keeps the last silently: a second
    `datasets:` would drop the first list). One pass over the distinct nodes, each one's
    expanded size computed from its children's, so the check is linear in the text however
    far the aliases would expand."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > bound:
                raise ConfigError(
                    f"{origin}:{node.start_mark.line + 1}: aliases expand this part to more than "
                    f"{bound:,} YAML nodes (limit MONITORS_LIMIT_CONFIG_NODES; nested anchors?)")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError(f"{origin}:{node.start_mark.line + 1}: an alias refers to a node "
                              "that contains it (a recursive anchor)")
        on_path.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(node, origin)
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _refuse_duplicate_keys(node: yaml.MappingNode, origin: str) -> None:
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            raise ConfigError(f"{origin}:{key.start_mark.line + 1}: key {key.value!r} is given "
                              f"twice in one mapping (first at line {first.start_mark.line + 1}); "
                              "YAML would silently keep only the second")


def load_config(path: Path, settings: Settings | None = None) -> MonitorsConfig:
    """The config at `path`; an absent file is an empty config (datasets may be made by CLI).
    Pass the process's settings wherever the config's sources are going to be read."""
    if not path.exists():
        return MonitorsConfig()
    return parse_config(path.read_text(encoding="utf-8"), str(path), settings)


def save_config(config: MonitorsConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = config.model_dump(mode="json", exclude_defaults=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
