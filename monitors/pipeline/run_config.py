"""The config as runs read it: parsed again only when the file changes. Runs, stages, the
worker and the dashboard share it, so it sits below all of them."""
from __future__ import annotations

import logging
from functools import lru_cache

from monitors.config import MonitorsConfig, load_config
from monitors.judge.never_judged import config_warnings
from monitors.settings import Settings

logger = logging.getLogger(__name__)


def config_for_runs(settings: Settings) -> tuple[MonitorsConfig, str]:
    """The config and its version, parsed again only when the file changes: a worker runs
    every dataset of a large config in turn (200 datasets of 50 columns: 0.6 s a parse).
    Runs only read it."""
    try:
        stat = settings.config_path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        stamp = None
    return _parsed_config(settings, stamp)


@lru_cache(maxsize=8)
def _parsed_config(settings: Settings, _stamp) -> tuple[MonitorsConfig, str]:
    config = load_config(settings.config_path, settings)
    for line in config_warnings(config):  # once per form of the file: parsed once
        logger.warning("%s: %s", settings.config_path.name, line)
    return config, config.version_hash()
