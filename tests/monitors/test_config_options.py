"""A monitor's or a check's options are checked against its detector when the config is
loaded: a typo or a value of the wrong type is refused there, with the file, the line, the
option and the options allowed, instead of failing every run that follows."""
import pytest

from monitors.config import (
    ConfigError,
    MonitorConfig,
    check_options,
    load_config,
    parse_config,
)
from monitors.contract import ColumnSpec, Contract
from monitors.errors import Invalid
from monitors.judge.plan import plan_monitors

CONFIG = """\
datasets:
  - name: sales
    format: csv
    source: landing/sales
    monitors:
      - name: rows
        metric: row_count
        detector: anomalies
        options:
{options}
"""


def config(options: str) -> str:
    return CONFIG.format(options="\n".join(f"          {line}" for line in options.splitlines()))


def test_good_options_load_and_stay_a_plain_dict():
    loaded = parse_config(config("alpha: 0.01\nmax_anoms: 0.01\ndirection: up\nkey: ''"))

    (monitor,) = loaded.dataset("sales").monitors
    assert monitor.options == {"alpha": 0.01, "max_anoms": 0.01, "direction": "up", "key": ""}


def test_an_unknown_option_is_refused_at_load_naming_it_and_the_allowed_ones(tmp_path):
    path = tmp_path / "monitors.yaml"
    path.write_text(config("alpha: 0.01\nmax_anom: 0.01"))

    with pytest.raises(ConfigError) as refused:
        load_config(path)

    message = str(refused.value)
    assert message.startswith(f"{path}:10: datasets.0.monitors.0.options: ")
    assert "max_anom: not an option of anomalies" in message
    assert "(options of anomalies: key, period, max_anoms, alpha, direction" in message


@pytest.mark.parametrize("options, option", [
    ("max_anoms: lots", "max_anoms"),
    ("period: 7.5", "period"),
    ("direction: sideways", "direction"),
    ("episodes: maybe", "episodes"),
    ("alpha: '0.05'", "alpha"),  # text in quotes is not the number the detector wants
])
def test_an_ill_typed_option_is_refused_at_load_naming_it(options, option):
    with pytest.raises(ConfigError, match=rf"monitors\.yaml:10: datasets\.0\.monitors\.0\.options: "
                                          rf".*{option}: input should be"):
        parse_config(config(options), "monitors.yaml")


@pytest.mark.parametrize("options, says", [
    ("min_change: 50", "min_change: expected a number >= 0 and < 10, got 50"),
    ("max_anoms: 0.9", "max_anoms: expected a number > 0 and <= 0.49, got 0.9"),
    ("period: 1", "period: expected an integer >= 2 or None, got 1"),
])
def test_an_option_out_of_range_is_refused_at_load_in_one_line_naming_dataset_monitor_option(
        options, says):
    with pytest.raises(ConfigError) as refused:
        parse_config(config(options), "monitors.yaml")

    (line,) = str(refused.value).splitlines()
    assert line == (f"monitors.yaml:10: datasets.0.monitors.0.options: "
                    f"dataset sales, monitor rows: {says}")


def test_a_checks_range_is_refused_naming_the_check_and_editors_get_invalid_too():
    text = """\
datasets:
  - name: sales
    format: csv
    source: landing/sales
    checks:
      - check: not_null
        column: id
        options: {max_fraction: 2.0}
"""
    with pytest.raises(ConfigError, match=r"^monitors\.yaml:8: datasets\.0\.checks\.0\.options: "
                                          r"dataset sales, check not_null:id: max_fraction: "
                                          r"expected a number >= 0 and <= 1, got 2\.0$"):
        parse_config(text, "monitors.yaml")
    with pytest.raises(Invalid, match="^min_change: expected"):
        check_options("anomalies", {"min_change": 50})


def test_a_checks_options_are_checked_against_the_check():
    text = """\
datasets:
  - name: sales
    format: csv
    source: landing/sales
    checks:
      - check: allowed_values
        column: country
        options: {value: [FR, DE]}
"""
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "monitors.yaml")

    message = str(refused.value)
    assert "monitors.yaml:8: datasets.0.checks.0.options: " in message
    assert "values: required by allowed_values" in message
    assert "value: not an option of allowed_values" in message


def test_a_monitor_built_in_code_is_checked_too_and_editors_get_invalid():
    with pytest.raises(ValueError, match="penalty"):
        MonitorConfig(name="m", metric="mean", detector="breakouts", options={"penalty": "high"})

    assert check_options("breakouts", {"penalty": 3.0}) == {"penalty": 3.0}
    with pytest.raises(Invalid, match=r"^penalty: .*\(options of breakouts: "):
        check_options("breakouts", {"penalty": "high"})
    with pytest.raises(Invalid, match="^detector: 'breakout' is not one of"):
        check_options("breakout", {})


def test_the_automatic_monitors_options_are_ones_their_detectors_take():
    contract = Contract(columns=[ColumnSpec(name="amount", type="float"),
                                 ColumnSpec(name="country", type="string"),
                                 ColumnSpec(name="score", type="float")])
    specs = [s for s in plan_monitors("model_output", contract, None)
             if s.kind in ("metric", "check")]

    assert {s.detector for s in specs} >= {"anomalies", "breakouts", "proportional", "drift",
                                           "new_category"}
    for spec in specs:
        assert check_options(spec.detector, spec.options) == spec.options, spec.name
