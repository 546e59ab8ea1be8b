"""Configuration: defaults < config file < command-line flags, remembering where each value came from.

The config file is the first of: ``--config FILE``; ``scrape-audit.toml`` in the working
directory (keys at the top level); ``pyproject.toml`` in the working directory, table
``[tool.scrape-audit]``. A key is named like its flag, without the dashes in front::

    [tool.scrape-audit]
    threshold = 0.8
    checks = ["truncation", "malformed_url"]
    expectations = "expectations"      # or false: no suites
    fail-on = "error"
    max-duplicate-rate = 0.15
    baseline-tolerance = 0.0
    index = "scrapes.sqlite"          # or "redis://127.0.0.1:6379/0": dedup against earlier runs

    [tool.scrape-audit.max-findings]
    malformed_url = 20

    [tool.scrape-audit.check-options.truncation]   # keyword options of one check
    # option = value

An unknown key or a value of the wrong type is an error naming the file and the key.

Example:
    >>> settings = resolve({"threshold": 0.9}, config_file=None, cwd="/nonexistent")
    >>> settings.values["threshold"], settings.origins["threshold"]
    (0.9, '--threshold')
    >>> settings.origins["fail-on"]
    'default'
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.checks import CHECKS
from audit.checks.base import SEVERITIES
from audit.gate import GateConfig
from audit.ingest import FieldMap
from audit.pipeline import AuditConfig

CONFIG_FILE = "scrape-audit.toml"
PYPROJECT = "pyproject.toml"
#: The suite directory used when nothing names one; skipped quietly when it does not exist.
DEFAULT_EXPECTATIONS = "expectations"


class ConfigError(ValueError):
    """A config file or flag value that cannot be used; the message names where it came from."""


def _number(low: float | None = None, high: float | None = None) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("a number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise TypeError(f"a number in [{low}, {high}]")
        return float(value)

    return check


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError("an integer >= 1")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("a non-empty string")
    return value


def _check_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("a list of check names")
    unknown = [v for v in value if v not in CHECKS]
    if unknown:
        raise TypeError(f"known checks ({', '.join(sorted(CHECKS))}), not {', '.join(unknown)}")
    return value


def _per_check(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("a table keyed by check name")
    unknown = [k for k in value if k not in CHECKS]
    if unknown:
        raise TypeError(
            f"a table keyed by known checks ({', '.join(sorted(CHECKS))}), not {', '.join(unknown)}"
        )
    return dict(value)


def _max_findings(value: Any) -> dict[str, int]:
    table = _per_check(value)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in table.values()):
        raise TypeError("a table of check = integer >= 0")
    return table


def _check_options(value: Any) -> dict[str, dict[str, Any]]:
    table = _per_check(value)
    if not all(isinstance(options, Mapping) for options in table.values()):
        raise TypeError("a table of tables: [check-options.CHECK] option = value")
    return {k: dict(v) for k, v in table.items()}


def _expectations(value: Any) -> str | bool:
    if value is False:
        return False
    return _string(value)


def _severity(value: Any) -> str:
    if value not in SEVERITIES:
        raise TypeError(f"one of {', '.join(SEVERITIES)}")
    return value


def _engine(value: Any) -> str:
    if value not in ("local", "dask"):
        raise TypeError("local or dask")
    return value


@dataclass(frozen=True)
class Setting:
    default: Any
    parse: Callable[[Any], Any]
    #: Only ``check`` uses it (``run`` reads the file too, and ignores these).
    gate_only: bool = False


SETTINGS: dict[str, Setting] = {
    "threshold": Setting(0.8, _number(0.0, 1.0)),
    "num-perm": Setting(128, _integer),
    "shingle-size": Setting(5, _integer),
    "checks": Setting(None, _check_names),
    "check-options": Setting({}, _check_options),
    "text-field": Setting("text", _string),
    "title-field": Setting("title", _string),
    "url-field": Setting("url", _string),
    "id-field": Setting("id", _string),
    "expectations": Setting(DEFAULT_EXPECTATIONS, _expectations),
    "index": Setting(None, _string),
    "index-wait": Setting(60.0, _number(0.0, None)),
    "engine": Setting("local", _engine),
    "scheduler": Setting(None, _string),
    "fail-on": Setting("error", _severity, gate_only=True),
    "max-duplicate-rate": Setting(None, _number(0.0, 1.0), gate_only=True),
    "max-findings": Setting({}, _max_findings, gate_only=True),
    "baseline": Setting(None, _string, gate_only=True),
    "baseline-tolerance": Setting(0.0, _number(0.0, 1.0), gate_only=True),
}


def find_config_file(cwd: str | os.PathLike[str] = ".") -> tuple[Path, str] | None:
    """The config file in ``cwd`` and its label (for origins), or None."""
    folder = Path(cwd)
    if (folder / CONFIG_FILE).is_file():
        return folder / CONFIG_FILE, CONFIG_FILE
    pyproject = folder / PYPROJECT
    if pyproject.is_file() and "scrape-audit" in _read_toml(pyproject).get("tool", {}):
        return pyproject, f"{PYPROJECT} [tool.scrape-audit]"
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from error


def read_config_file(path: Path) -> dict[str, Any]:
    """The scrape-audit table of a config file (top level, or ``[tool.scrape-audit]`` of pyproject)."""
    data = _read_toml(path)
    if path.name == PYPROJECT:
        data = data.get("tool", {}).get("scrape-audit", {})
    return data


@dataclass(frozen=True)
class Settings:
    """The effective configuration: every key's value and where it came from."""

    values: dict[str, Any]
    origins: dict[str, str]

    def audit_config(self, gate: bool = False, baseline: Mapping[str, Any] | None = None) -> AuditConfig:
        """The :class:`AuditConfig` these settings describe; with ``gate``, its thresholds too."""
        v = self.values
        expectations = v["expectations"]
        if expectations == DEFAULT_EXPECTATIONS and self.origins["expectations"] == "default":
            expectations = expectations if Path(expectations).is_dir() else False
        gate_config = None
        if gate:
            gate_config = GateConfig(
                fail_on=v["fail-on"],
                max_duplicate_rate=v["max-duplicate-rate"],
                max_findings=v["max-findings"],
                baseline=baseline,
                baseline_path=v["baseline"],
                baseline_tolerance=v["baseline-tolerance"],
            )
        return AuditConfig(
            threshold=v["threshold"],
            num_perm=v["num-perm"],
            shingle_size=v["shingle-size"],
            checks=tuple(v["checks"]) if v["checks"] is not None else None,
            check_options=v["check-options"],
            fields=FieldMap(
                text=v["text-field"], title=v["title-field"], url=v["url-field"], id=v["id-field"]
            ),
            expectations=expectations or None,
            gate=gate_config,
            index=v["index"],
            index_wait=v["index-wait"],
            engine=v["engine"],
            scheduler=v["scheduler"],
        )

    def render(self, gate: bool = True) -> str:
        """The settings as TOML (pasteable into ``scrape-audit.toml``), each with its origin."""
        rows = []
        for key, setting in SETTINGS.items():
            if setting.gate_only and not gate:
                continue
            value, origin = self.values[key], self.origins[key]
            if key == "checks" and value is None:
                value, origin = sorted(CHECKS), f"{origin} (all checks)"
            text = f"{key} = {_toml(value)}" if value is not None else f"# {key} = (not set)"
            rows.append((text, origin))
        width = max(len(text) for text, _ in rows)
        return "\n".join(f"{text:<{width}}  # {origin}" for text, origin in rows)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = [f"{k if _BARE_KEY.match(k) else json.dumps(k)} = {_toml(v)}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return json.dumps(str(value))


def _parse(key: str, value: Any, where: str) -> Any:
    try:
        return SETTINGS[key].parse(value)
    except TypeError as expected:
        raise ConfigError(f"{where}: {key} must be {expected}, got {value!r}") from None


def resolve(
    flags: Mapping[str, Any],
    config_file: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] = ".",
) -> Settings:
    """Defaults, then the config file (``config_file`` or the one found in ``cwd``), then ``flags``
    (keys as in :data:`SETTINGS`; only flags that were given)."""
    values = {key: setting.default for key, setting in SETTINGS.items()}
    origins = dict.fromkeys(SETTINGS, "default")
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        found: tuple[Path, str] | None = (path, str(path))
    else:
        found = find_config_file(cwd)
    if found is not None:
        path, label = found
        for key, value in read_config_file(path).items():
            if key not in SETTINGS:
                raise ConfigError(f"{path}: unknown key {key!r}; known: {', '.join(SETTINGS)}")
            values[key], origins[key] = _parse(key, value, str(path)), label
    for key, value in flags.items():
        parsed = _parse(key, value, f"--{key}")
        if key == "max-findings" and origins[key] != "default":  # flags add to the file's table
            parsed, origin = values[key] | parsed, f"{origins[key]}, then --{key}"
        else:
            origin = f"--{key}" if key != "expectations" or value is not False else "--no-expectations"
        values[key], origins[key] = parsed, origin
    return Settings(values, origins)
