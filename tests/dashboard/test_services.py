"""The dashboard's door reads the monitors YAML as a run does: parsed once, and again only
when the file changes."""
from __future__ import annotations

from dashboard import services


def test_the_config_is_parsed_once_while_the_file_is_unchanged(demo):
    first = services._config()
    assert services._config() is first
    demo.config_path.write_text(demo.config_path.read_text() + "\n# touched\n")
    again = services._config()
    assert again is not first and again.version_hash() == first.version_hash()
