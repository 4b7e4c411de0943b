"""The configuration loader, and the README's list of every setting."""

import json
from pathlib import Path

import pytest

from common.config import ConfigError, Setting, load

README = Path(__file__).resolve().parent.parent / "README.md"
SETTINGS = (
    Setting("port", int, "TCP port."),
    Setting("debug", bool, "Debug mode."),
    Setting("database_url", str, "Database URL.", env="DATABASE_URL", secret=True),
)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps({"port": 5000, "debug": False, "database_url": "postgresql://u:secret@db/x"}))
    return path


def test_environment_overrides_file(config_file):
    config = load("demo", SETTINGS, {"DEMO_PORT": "6000", "DEMO_DEBUG": "yes"}, config_file)
    assert config.port == 6000
    assert config.debug is True
    assert config.database_url == "postgresql://u:secret@db/x"


def test_named_environment_variable(config_file):
    config = load("demo", SETTINGS, {"DATABASE_URL": "postgresql://other"}, config_file)
    assert config.database_url == "postgresql://other"


def test_secret_hidden_in_repr(config_file):
    config = load("demo", SETTINGS, {}, config_file)
    assert "secret" not in repr(config)
    assert "5000" in repr(config)


def test_invalid_value_names_variable(config_file):
    with pytest.raises(ConfigError, match="DEMO_PORT.*'many'.*port"):
        load("demo", SETTINGS, {"DEMO_PORT": "many"}, config_file)


def test_secret_value_not_shown_in_error(config_file):
    secret_setting = (Setting("timeout", float, "Timeout.", secret=True),)
    config_file.write_text(json.dumps({"timeout": 1.0}))
    with pytest.raises(ConfigError) as raised:
        load("demo", secret_setting, {"DEMO_TIMEOUT": "hunter2"}, config_file)
    assert "hunter2" not in str(raised.value)


def test_unknown_and_missing_keys_rejected(config_file, tmp_path):
    config_file.write_text(json.dumps({"port": 1, "debug": False, "database_url": "x", "colour": "red"}))
    with pytest.raises(ConfigError, match="unknown keys colour"):
        load("demo", SETTINGS, {}, config_file)
    config_file.write_text(json.dumps({"port": 1, "debug": False}))
    with pytest.raises(ConfigError, match="missing key 'database_url'"):
        load("demo", SETTINGS, {}, config_file)
    with pytest.raises(ConfigError, match="missing"):
        load("demo", SETTINGS, {}, tmp_path / "absent.json")


@pytest.mark.parametrize("service", ["web", "email_client", "mock_gateway"])
def test_shipped_config_loads_and_is_documented(service):
    module = __import__(f"{service}.config", fromlist=["SETTINGS", "load_config"])
    module.load_config({})
    readme = README.read_text(encoding="utf-8")
    for setting in module.SETTINGS:
        assert f"`{setting.env_name(service)}`" in readme, f"{setting.name} of {service} is not in the README"
