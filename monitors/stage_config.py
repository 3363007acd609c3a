"""A dataset's stages as declared in the monitors YAML: the commands that build on each of
its partitions once it is verified (features, scoring, delivery), run in order by the worker
(`monitors.pipeline.stages`).

    stages:
      - {name: score, run: "python score.py {partition}", timeout: 30m, retries: 1}

`run` is split like a shell line (no shell runs it: no pipes, no `$VAR`); `{partition}`
(YYYY-MM-DD) and `{dataset}` are the only placeholders. `timeout` is seconds, or a number
with s, m or h (default 1h); `retries` how many times a failed attempt is tried again.
"""
from __future__ import annotations

import datetime as dt
import re
import shlex
import string
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

STAGE_NAME = r"^[A-Za-z0-9_.-]{1,100}$"
PLACEHOLDERS = ("partition", "dataset")
_TIMEOUT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=STAGE_NAME)
    run: str
    # kept as written ("30m"), so a saved config reads as the person wrote it
    timeout: str = "1h"
    retries: int = Field(default=0, ge=0, le=10)

    @field_validator("run")
    @classmethod
    def _run(cls, value: str) -> str:
        argv(value, partition=dt.date(2000, 1, 1), dataset="d")  # raises saying what is wrong
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> str:
        timeout_seconds(str(value))
        return str(value)

    @property
    def timeout_seconds(self) -> float:
        return timeout_seconds(self.timeout)

    def argv(self, *, partition: dt.date, dataset: str) -> list[str]:
        return argv(self.run, partition=partition, dataset=dataset)


def timeout_seconds(text: str) -> float:
    match = _TIMEOUT.match(text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"timeout {text!r} is not like 90, 90s, 30m or 2h")
    return float(match[1]) * _SECONDS[match[2]]


def argv(command: str, *, partition: dt.date, dataset: str) -> list[str]:
    """The command line of a stage for one partition; ValueError for a line that does not
    split, is empty, or uses a placeholder other than {partition} and {dataset}."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"run {command!r} does not split into words ({exc})") from None
    if not words:
        raise ValueError("run is empty")
    values = {"partition": partition.isoformat(), "dataset": dataset}
    out = []
    for word in words:
        try:
            fields = list(string.Formatter().parse(word))
        except ValueError as exc:  # a lone { or }
            raise ValueError(f"run {command!r}: {exc} (write {{{{ and }}}} for braces)") from None
        for _, name, spec, conversion in fields:
            if name is None:
                continue
            if name not in PLACEHOLDERS or spec or conversion:
                raise ValueError(f"run {command!r}: unknown placeholder {{{name}}} "
                                 f"(only {{partition}} and {{dataset}})")
        out.append(word.format(**values))
    return out


def parse_stages(value: Any, dataset: str | None) -> list[StageConfig]:
    """A dataset's `stages` list, each checked; the error names the dataset and the stage."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"dataset {dataset!r}: stages must be a list")  # noqa: TRY004 (pydantic reports ValueErrors)
    stages: list[StageConfig] = []
    for position, item in enumerate(value):
        label = item.get("name") if isinstance(item, dict) else None
        where = f"dataset {dataset!r}, stage {label or position + 1!r}"
        if isinstance(item, StageConfig):
            stage = item
        else:
            try:
                stage = StageConfig.model_validate(item)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'stage'}: "
                                     f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
                raise ValueError(f"{where}: {problems}") from None
        if any(s.name == stage.name for s in stages):
            raise ValueError(f"{where}: declared twice (stage names are unique per dataset)")
        stages.append(stage)
    return stages
