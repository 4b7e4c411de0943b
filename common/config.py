"""Configuration shared by the three services.

Each service declares its settings once, as a tuple of `Setting`. Values come
from `config/<service>.json` and every key can be overridden by an environment
variable, `<SERVICE>_<KEY>` unless the setting names another one (such as
`DATABASE_URL`).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class ConfigError(Exception):
    """A configuration file or environment variable contains an invalid value."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    help: str
    env: str | None = None
    secret: bool = False

    def env_name(self, service: str) -> str:
        return self.env or f"{service}_{self.name}".upper()


def _parse(setting: Setting, raw: Any, source: str) -> Any:
    if raw is None:
        return None
    try:
        if setting.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if setting.type is dict:
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, dict):
                raise ValueError(raw)
            return value
        return setting.type(raw)
    except (TypeError, ValueError):
        shown = "(hidden)" if setting.secret else repr(raw)
        raise ConfigError(
            f"{source}: invalid value {shown} for {setting.name}, "
            f"expected {setting.type.__name__}: {setting.help}"
        ) from None


class Config(Mapping[str, Any]):
    """Loaded settings of one service, read as attributes or by key.

    Secret values never appear in `repr`.
    """

    def __init__(self, service: str, settings: tuple[Setting, ...], values: dict[str, Any]):
        self._service = service
        self._settings = {setting.name: setting for setting in settings}
        self._values = MappingProxyType(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = {
            name: ("***" if self._settings[name].secret and value else value)
            for name, value in self._values.items()
        }
        return f"Config({self._service!r}, {shown})"


def load(
    service: str,
    settings: tuple[Setting, ...],
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    """Load `service`'s settings from its JSON file, then the environment.

    Raises ConfigError when the file contains an unknown key, lacks a key, or a
    value cannot be read as its setting's type.
    """
    environ = os.environ if environ is None else environ
    path = path or CONFIG_DIR / f"{service}.json"
    try:
        defaults = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} is missing") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: invalid JSON: {error}") from None

    known = {setting.name for setting in settings}
    unknown = sorted(set(defaults) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")

    values: dict[str, Any] = {}
    for setting in settings:
        env_name = setting.env_name(service)
        if env_name in environ:
            values[setting.name] = _parse(setting, environ[env_name], env_name)
        elif setting.name in defaults:
            values[setting.name] = _parse(setting, defaults[setting.name], str(path))
        else:
            raise ConfigError(f"{path}: missing key {setting.name!r} ({setting.help}); set it there or in {env_name}")
    return Config(service, settings, values)


def describe(service: str, settings: tuple[Setting, ...]) -> str:
    """Return a Markdown table of the settings, for the README."""
    lines = ["| key | environment variable | meaning |", "|---|---|---|"]
    for setting in settings:
        lines.append(f"| `{setting.name}` | `{setting.env_name(service)}` | {setting.help} |")
    return "\n".join(lines)


def read_secret(config: Config, name: str) -> str | None:
    """Return the secret setting `name`, or the stripped text of the file named by `{name}_file`.

    Returns None when neither is set or the file is empty. Raises ConfigError
    when both are set or the file cannot be read; the message never contains
    the secret.
    """
    value = config[name] or None
    path = config[f"{name}_file"] or None
    if value and path:
        raise ConfigError(f"both {name} and {name}_file are set; set only one of them")
    if not path:
        return value
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as error:
        raise ConfigError(f"cannot read the {name} file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the {name} file {path} is not UTF-8 text") from None
