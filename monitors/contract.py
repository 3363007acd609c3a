"""A dataset's schema contract: its columns, their logical types and nullability."""
from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict


class LogicalType(StrEnum):
    integer = "integer"
    float = "float"
    string = "string"
    boolean = "boolean"
    date = "date"
    timestamp = "timestamp"


ARROW_TYPES: dict[LogicalType, pa.DataType] = {
    LogicalType.integer: pa.int64(),
    LogicalType.float: pa.float64(),
    LogicalType.string: pa.string(),
    LogicalType.boolean: pa.bool_(),
    LogicalType.date: pa.date32(),
    LogicalType.timestamp: pa.timestamp("us", tz="UTC"),
}


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: LogicalType
    nullable: bool = True
    # integer codes that should be profiled as categories (top-k frequencies)
    categorical: bool = False
    # masked wherever rows are shown as evidence
    sensitive: bool = False


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: list[ColumnSpec]
    inferred: bool = False

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], c.nullable) for c in self.columns])

    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.categorical]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def logical_type(arrow_type: pa.DataType) -> LogicalType | None:
    """The logical type an Arrow type stands for; None for types a contract can't hold."""
    if pa.types.is_boolean(arrow_type):
        return LogicalType.boolean
    if pa.types.is_integer(arrow_type):
        return LogicalType.integer
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return LogicalType.float
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return LogicalType.string
    if pa.types.is_dictionary(arrow_type):
        return logical_type(arrow_type.value_type)
    if pa.types.is_date(arrow_type):
        return LogicalType.date
    if pa.types.is_timestamp(arrow_type):
        return LogicalType.timestamp
    return None


def infer_contract(schema: pa.Schema) -> Contract:
    """A contract from a first batch's schema. Columns are nullable: a column that happened
    to be complete on day one is not promised complete forever (null fractions are watched)."""
    columns = []
    for field in schema:
        kind = logical_type(field.type)
        if kind is None:
            raise ValueError(f"column {field.name!r}: type {field.type} has no contract type")
        columns.append(ColumnSpec(name=field.name, type=kind))
    return Contract(columns=columns, inferred=True)


def schema_fingerprint(schema: pa.Schema) -> str:
    shape = [[f.name, str(logical_type(f.type) or f.type)] for f in schema]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()
