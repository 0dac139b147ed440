"""Config check: misspelt keys, wrong types and bad values name the key."""

import copy

import pytest
import yaml

from sepher.errors import InputError
from sepher.io.config import check_config

from .conftest import PROJECT

SCHEMA = PROJECT / "config" / "schemas" / "config.schema.yaml"


@pytest.fixture
def demo_config():
    with open(PROJECT / "config" / "config.yaml") as stream:
        return yaml.safe_load(stream)


def test_demo_config_is_valid(demo_config):
    check_config(demo_config, SCHEMA, "config/config.yaml")


def test_misspelt_top_level_key_names_key_and_suggests(demo_config):
    demo_config["cohrot"] = demo_config.pop("cohort")
    with pytest.raises(InputError) as err:
        check_config(demo_config, SCHEMA, "my.yaml")
    text = str(err.value)
    assert "my.yaml" in text and "'cohrot'" in text and "Did you mean 'cohort'?" in text


def test_misspelt_nested_key_names_full_path(demo_config):
    demo_config["survival"]["kmci"] = "log"
    with pytest.raises(InputError) as err:
        check_config(demo_config, SCHEMA, "my.yaml")
    assert "column 'survival.kmci'" in str(err.value)
    assert "Did you mean 'km_ci'?" in str(err.value)


def test_wrong_type_names_key_value_and_type(demo_config):
    demo_config["simulated"] = "yes please"
    with pytest.raises(InputError) as err:
        check_config(demo_config, SCHEMA, "my.yaml")
    text = str(err.value)
    assert "'simulated'" in text and "yes please" in text and "boolean" in text


def test_wrong_type_shows_the_keys_own_default(demo_config):
    """Each Kaplan-Meier figure has its own axis defaults (shared $defs, own defaults)."""
    demo_config["figures"]["km_pfs2"]["time_max_months"] = "48"
    with pytest.raises(InputError) as err:
        check_config(demo_config, SCHEMA, "my.yaml")
    text = str(err.value)
    assert "figures.km_pfs2.time_max_months" in text and "(default: 48)" in text
    assert "Write numbers without quotes" in text


def test_bad_enum_lists_choices(demo_config):
    demo_config["survival"]["km_ci"] = "loglog"
    with pytest.raises(InputError) as err:
        check_config(demo_config, SCHEMA, "my.yaml")
    text = str(err.value)
    assert "survival.km_ci" in text and "'log-log'" in text and "loglog" in text


def test_bad_nested_axis_value(demo_config):
    cfg = copy.deepcopy(demo_config)
    cfg["figures"]["km_os"]["tick_step_months"] = -3
    with pytest.raises(InputError) as err:
        check_config(cfg, SCHEMA, "my.yaml")
    assert "figures.km_os.tick_step_months" in str(err.value)


def test_cohort_memory_request_follows_the_cohort_size():
    """Survival jobs ask for 2 x the measured peak (150 MB + 9.5 MB per CSV MB)."""
    from sepher.workflow import cohort_mem_mb

    assert cohort_mem_mb(0) == 1000  # the demo cohort
    assert cohort_mem_mb(8_748_815) == 1000  # 100,000 patients: 210 MB measured
    assert cohort_mem_mb(87_493_146) == 2100  # 1,000,000 patients: 954 MB measured
    assert cohort_mem_mb(87_493_146, attempt=2) == 4200
    measured_peak = 954
    assert cohort_mem_mb(87_493_146) >= 2 * measured_peak
