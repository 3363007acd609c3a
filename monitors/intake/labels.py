"""Labels: the outcomes a model's predictions are judged on, delivered days after scoring.

A dataset of kind `labels` holds, per row, the key of a prediction and its outcome (0/1 or
a boolean); its partition is the partition of the predictions it resolves (the outcomes of
the customers scored on 2026-03-02 land, a week later, as the labels' 2026-03-02 batch).
A model output names its labels in the config:

    labels: {dataset: bank_outcomes, key: customer_id, label: bought, delay_days: 7}

A labels batch is landed like any other (contract, quarantine, freshness), and besides its
contract it must resolve predictions: a batch whose keys repeat, or that matches no
prediction of its partition, is quarantined with the reason and stores nothing.

Light at import (pydantic only): the config loads this module; the reading and joining
import pyarrow inside the functions that do it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from monitors.settings import Limits
    from store.models import Dataset


class LabelsConfig(BaseModel):
    """What a model output declares about its labels (`labels:` in its config)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str                       # the labels dataset (kind: labels)
    key: str | list[str]               # the column(s) joining a label to its prediction
    label: str                         # the outcome column of the labels dataset: 0/1 or boolean
    delay_days: int = Field(default=7, ge=0)
    score: str = "score"               # the model output's score column, in [0, 1]
    version: str | None = "model_version"  # the model output's version column, when it has one
    threshold: float = Field(default=0.5, ge=0, le=1)  # the decision threshold
    # the performance monitors: an absolute floor on AUC, and proportional limits against
    # the median of the `reference_days` labelled partitions before
    min_auc: float = Field(default=0.6, ge=0, le=1)
    max_auc_drop: float = Field(default=0.1, gt=0, lt=1)
    max_brier_increase: float = Field(default=0.25, gt=0)
    max_ece_increase: float = Field(default=1.0, gt=0)
    reference_days: int = Field(default=28, ge=3)

    @field_validator("key")
    @classmethod
    def _keys(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("name at least one key column")
        return value

    def keys(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)


def link_of(dataset: Dataset) -> LabelsConfig | None:
    """A model output's labels declaration, as stored on its dataset row."""
    return LabelsConfig.model_validate(dataset.labels) if dataset.labels else None


def models_of(session: Session, labels: Dataset) -> list[tuple[Dataset, LabelsConfig]]:
    """The model outputs whose labels are this dataset, with their declarations."""
    from store import queries

    found = []
    for dataset in queries.list_datasets(session):
        link = link_of(dataset)
        if link is not None and link.dataset == labels.name:
            found.append((dataset, link))
    return found


@dataclass(frozen=True, slots=True)
class Joined:
    """One partition's predictions with their outcomes: what performance is computed from.
    `labelled` marks the predictions that have an outcome; `outcome` is 0/1 where labelled."""

    model: str                 # the model output's dataset name
    model_id: int
    partition: dt.date
    score: np.ndarray          # float64, every prediction of the partition
    version: np.ndarray        # int: each prediction's index into `versions`
    versions: tuple[str, ...]  # the model versions; "" when there is no version column
    labelled: np.ndarray       # bool
    outcome: np.ndarray        # float64, NaN where not labelled
    threshold: float
    unmatched_labels: int      # label rows that matched no prediction


class LabelsRefused(Exception):
    """A labels batch that resolves nothing it should: the reason quarantines the batch."""


def read_table(path: Path, fmt: str, contract: Any, limits: Limits, columns: list[str]):
    """The named columns of a delivered file, through the same reader as ingestion."""
    import pyarrow as pa

    from monitors.intake.readers import read_file

    chunks = [pa.Table.from_batches([c]) if isinstance(c, pa.RecordBatch) else c
              for c in read_file(path, fmt, contract, limits)]
    table = pa.concat_tables(chunks) if chunks else contract.arrow_schema().empty_table()
    return table.select(columns)


def resolve(session: Session, labels: Dataset, partition: dt.date, table,
            limits: Limits) -> list[Joined]:
    """Join a labels batch (`table`: its rows, a pyarrow Table) with the predictions of
    `partition` of every model output that names these labels. LabelsRefused when a
    key repeats, an outcome is not 0/1, or no label matches a prediction."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from monitors.contract import Contract
    from monitors.intake.readers import detect_format
    from store import queries

    joined = []
    for model, link in models_of(session, labels):
        keys = link.keys()
        missing = [c for c in (*keys, link.label) if c not in table.column_names]
        if missing:
            raise LabelsRefused(f"labels for {model.name}: no column(s) {', '.join(missing)} "
                                f"(the key and label its config names)")
        outcomes = table.select([*keys, link.label])
        counts = outcomes.group_by(keys).aggregate([([], "count_all")])
        repeated = counts.filter(pc.greater(counts["count_all"], 1))
        if repeated.num_rows:
            example = ", ".join(f"{k}={repeated[k][0].as_py()}" for k in keys)
            raise LabelsRefused(f"labels for {model.name}: {repeated.num_rows} key(s) appear more "
                                f"than once (first: {example}); one outcome per prediction")
        label = outcomes[link.label]
        if pa.types.is_boolean(label.type):
            label = pc.cast(label, pa.float64())
        elif pa.types.is_integer(label.type) or pa.types.is_floating(label.type):
            label = pc.cast(label, pa.float64())
            bad = pc.sum(pc.and_(pc.is_valid(label),
                                 pc.invert(pc.is_in(label, pa.array([0.0, 1.0]))))).as_py()
            if bad:
                raise LabelsRefused(f"labels for {model.name}: {bad} value(s) of {link.label!r} "
                                    "are neither 0 nor 1")
        else:
            raise LabelsRefused(f"labels for {model.name}: {link.label!r} is {label.type}, "
                                "not 0/1 or boolean")
        outcomes = outcomes.set_column(outcomes.schema.get_field_index(link.label), "__outcome", label)

        batch = queries.get_current_batch(session, model.id, partition)
        if batch is None:
            raise LabelsRefused(f"labels for {model.name}: no predictions of {partition} are in "
                                "force to resolve (none delivered, or quarantined)")
        if model.format == "sql":
            raise LabelsRefused(f"labels for {model.name}: its predictions are a SQL table; "
                                "labels resolve file predictions only")
        contract = Contract.model_validate(model.contract)
        names = [c.name for c in contract.columns]
        version = link.version if link.version in names else None
        wanted = [*keys, link.score, *([version] if version else [])]
        absent = [c for c in wanted if c not in names]
        if absent:
            raise LabelsRefused(f"labels for {model.name}: its predictions have no column(s) "
                                f"{', '.join(absent)}")
        path = Path(batch.source)
        if not path.is_file():
            raise LabelsRefused(f"labels for {model.name}: the predictions file {path} is gone")
        predictions = read_table(path, detect_format(path) or model.format, contract, limits, wanted)
        # the label side's key types follow the predictions' (a CSV may read an id as text)
        try:
            outcomes = outcomes.cast(pa.schema(
                [predictions.schema.field(k) for k in keys]
                + [outcomes.schema.field("__outcome")]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise LabelsRefused(f"labels for {model.name}: the key does not read as the "
                                f"predictions' key ({exc})") from None
        both = predictions.join(outcomes, keys=keys, join_type="left outer", use_threads=False)
        matched = pc.sum(pc.is_valid(both["__outcome"])).as_py() or 0
        if matched == 0:
            raise LabelsRefused(f"labels for {model.name}: none of the {outcomes.num_rows} label "
                                f"row(s) matches a prediction of {partition} on "
                                f"{', '.join(keys)}")
        if len(keys) == 1:  # a set lookup costs a fraction of a join
            unmatched = outcomes.num_rows - (pc.sum(pc.is_in(
                outcomes[keys[0]], value_set=predictions[keys[0]])).as_py() or 0)
        else:
            unmatched = outcomes.join(predictions.select(keys), keys=keys,
                                      join_type="left anti", use_threads=False).num_rows
        score = both[link.score].to_numpy(zero_copy_only=False).astype(np.float64)
        outcome = both["__outcome"].to_numpy(zero_copy_only=False).astype(np.float64)
        # codes, not strings: 10M Python strings cost more memory than the rest together
        if version:
            encoded = pc.dictionary_encode(
                pc.cast(both[version], pa.string()).fill_null("")).combine_chunks()
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            names = tuple(encoded.dictionary.to_pylist())
        else:
            codes, names = np.zeros(len(score), dtype=np.int32), ("",)
        joined.append(Joined(model=model.name, model_id=model.id, partition=partition,
                             score=score, version=codes, versions=names,
                             labelled=~np.isnan(outcome), outcome=outcome,
                             threshold=link.threshold,
                             unmatched_labels=int(unmatched)))
    return joined
