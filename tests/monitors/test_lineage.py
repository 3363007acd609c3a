"""Lineage in the config: a dataset names what it is built from; an unknown name or a cycle
is a config error naming the dataset; `datasets list` shows each one's upstreams."""
from __future__ import annotations

import json

import pytest
import yaml

from monitors.cli import main
from monitors.config import ConfigError, parse_config


def config(upstreams: dict[str, list[str]]) -> str:
    return yaml.safe_dump({"datasets": [
        {"name": name, "format": "csv", "source": f"landing/{name}", "upstream": upstream}
        for name, upstream in upstreams.items()]})


def test_upstreams_load_in_the_order_written():
    loaded = parse_config(config({"snapshot": [], "features": ["snapshot"],
                                  "scores": ["features", "snapshot"]}))
    assert [d.upstream for d in loaded.datasets] == [[], ["snapshot"], ["features", "snapshot"]]


def test_an_unknown_upstream_is_a_config_error_naming_the_dataset():
    with pytest.raises(ConfigError, match=r"dataset 'scores': upstream 'snapshots' is not a "
                                          r"declared dataset \(known: snapshot, scores\)"):
        parse_config(config({"snapshot": [], "scores": ["snapshots"]}), "monitors.yaml")


@pytest.mark.parametrize("upstreams, cycle", [
    ({"a": ["a"]}, "a -> a"),
    ({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}, "a -> b -> c -> a"),
    ({"d": [], "a": ["d", "b"], "b": ["a"]}, "a -> b -> a"),
])
def test_a_cycle_is_a_config_error_naming_the_datasets_on_it(upstreams, cycle):
    with pytest.raises(ConfigError, match=f"its upstreams form a cycle \\({cycle}\\)"):
        parse_config(config(upstreams))


def test_datasets_list_shows_the_upstreams(settings, capsys):
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(config({"snapshot": [], "scores": ["snapshot"]}))
    from monitors.catalog import sync_datasets
    from monitors.config import load_config
    from store.engine import open_store

    engine, sessions = open_store(settings.db_url)
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path), settings.home)
    engine.dispose()
    capsys.readouterr()
    assert main(["datasets", "list", "--json"]) == 0
    rows = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert rows["scores"]["upstream"] == ["snapshot"]
    assert rows["snapshot"]["upstream"] == []
