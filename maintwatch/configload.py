"""Load YAML configuration into pydantic models and report every problem with its location.

This is the only module that reads the process environment: `${VAR}` references in string
values are expanded here, and `*_file` secrets are read by the `SecretFromFile` type.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    ValidationError,
)

from maintwatch.durations import parse_duration

M = TypeVar("M", bound=BaseModel)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every `file: path: message` line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        value = parse_duration(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a duration such as 30s, 5m or 26h")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"duration must be zero or more and finite, got {value!r}")
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("duration must be more than zero")
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds (>= 0), written in config as `30s`, `5m`, `26h`, `30d`; a bare number means seconds."""

PositiveDuration = Annotated[float, BeforeValidator(_duration), AfterValidator(_positive)]
"""A Duration that must be more than zero: intervals and timeouts (zero would spin)."""


def _read_secret_file(value: Any) -> Any:
    if value is None or isinstance(value, SecretStr):
        return value
    path = Path(str(value))
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"cannot read secret file {str(path)!r}: {exc.strerror}") from None


SecretFromFile = Annotated[SecretStr, BeforeValidator(_read_secret_file)]
"""A `*_file` field: the value is a path; the model holds the file's (stripped) contents."""


def _existing_file(value: Any) -> Any:
    path = Path(str(value))
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    return path


ExistingFile = Annotated[Path, BeforeValidator(_existing_file)]


def format_location(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as `backups[0].directory`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _validation_problems(source: str, error: ValidationError) -> Iterator[str]:
    for item in error.errors():
        # Tagged unions and function validators add their own names to the location; drop them.
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        yield f"{source}: {format_location(loc)}: {message}"


def expand_env(
    node: Any,
    path: tuple[int | str, ...],
    problems: list[str],
    source: str,
    parents: frozenset[int] = frozenset(),
) -> Any:
    """Replace `${VAR}` in every string scalar; collect an error per undefined variable.

    YAML aliases can make a node contain itself (`a: &a [*a]`); such a cycle is reported as a
    problem and cut, so validation never recurses forever.
    """
    if isinstance(node, dict | list):
        if id(node) in parents:
            problems.append(f"{source}: {format_location(path)}: an alias refers to itself")
            return None
        inner = parents | {id(node)}
        if isinstance(node, dict):
            return {
                k: expand_env(v, (*path, str(k)), problems, source, inner) for k, v in node.items()
            }
        return [expand_env(v, (*path, i), problems, source, inner) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            problems.append(
                f"{source}: {format_location(path)}: environment variable {name} is not set"
            )
            return ""
        return os.environ[name]

    return _ENV_REF.sub(substitute, node)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text, turning syntax errors into a located ConfigError."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError([f"{source}: {where}: {exc.problem or exc}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            [f"{source}: line {line}, column {column}: {exc.reason} (character {exc.character!r})"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: {exc}"]) from None


def load_model(model: type[M], text: str, source: str) -> M:
    """Validate YAML text against `model`; raise ConfigError listing every problem."""
    data = parse_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: (top level): expected a mapping of sections"])
    problems: list[str] = []
    data = expand_env(data, (), problems, source)
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_validation_problems(source, exc))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_file(model: type[M], path: str | Path) -> M:
    """Read and validate a YAML config file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror}"]) from None
    return load_model(model, text, source)
