"""Load YAML configuration into pydantic models and report every problem with its location.

This is the only module that reads the process environment: `${VAR}` references in string
values are expanded here, and `*_file` secrets are read by the `SecretFromFile` type.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    ValidationInfo,
)

from maintwatch.configerrors import phrase
from maintwatch.durations import parse_duration

M = TypeVar("M", bound=BaseModel)

CrossCheck = Callable[[M], list[str]]
"""Checks across a whole config (duplicate names, references): `path: message` lines."""

Unique = Mapping[str, tuple[str, str]]
"""Top-level list sections whose items need distinct values: section -> (key, what it is)."""

CONFIG_DIR = "config_dir"
"""Validation context key: the folder relative `*_file` and `ca_file` paths start from."""

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
"""Seconds (>= 0), written in config as `30s`, `5m`, `26h`, `30d`.

A bare number (`timeout: 10`) means seconds, as the README and the config references say:
rejecting it would break configs that work today, and seconds is the unit every duration is
stored in.
"""

PositiveDuration = Annotated[float, BeforeValidator(_duration), AfterValidator(_positive)]
"""A Duration that must be more than zero: intervals and timeouts (zero would spin)."""


def _config_path(value: Any, info: ValidationInfo) -> Path:
    """Return a path from the config; a relative one is relative to the config file's folder."""
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValueError(f"expected a file path, got {value!r}")
    path = Path(value)
    base = info.context.get(CONFIG_DIR) if isinstance(info.context, dict) else None
    return base / path if isinstance(base, Path) and not path.is_absolute() else path


def _read_secret_file(value: Any, info: ValidationInfo) -> Any:
    if value is None or isinstance(value, SecretStr):
        return value
    path = _config_path(value, info)
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"cannot read secret file {str(path)!r}: {exc.strerror}") from None


SecretFromFile = Annotated[SecretStr, BeforeValidator(_read_secret_file)]
"""A `*_file` field: the value is a path; the model holds the file's (stripped) contents."""


def _existing_file(value: Any, info: ValidationInfo) -> Any:
    path = _config_path(value, info)
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    return path


ExistingFile = Annotated[Path, BeforeValidator(_existing_file)]


def format_location(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as `backups[0].directory`.

    Names from the input (label names, mapping keys) may hold control characters: they are
    shown escaped, so the location stays one printable line in an answer or a log.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if part.isprintable() else repr(part)[1:-1]
            out += f".{name}" if out else name
    return out or "(top level)"


def _location(item: Any) -> list[int | str]:
    # Function validators add their own names to the location; drop them.
    return [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))]


def _validation_problems(
    source: str, model: type[BaseModel], error: ValidationError, skip: set[str]
) -> Iterator[str]:
    for item in error.errors():
        loc = _location(item)
        # pydantic locates a bad mapping key as `key.[key]`: name the key itself.
        key = bool(loc) and loc[-1] == "[key]"
        where = format_location(loc[:-1] if key else loc)
        if where not in skip:
            message = phrase(item, model, loc)
            yield f"{source}: {where}: " + (f"this key: {message}" if key else message)


def expand_env(
    node: Any,
    path: tuple[int | str, ...],
    problems: list[str],
    source: str,
    parents: frozenset[int] = frozenset(),
    unset: set[str] | None = None,
) -> Any:
    """Replace `${VAR}` in every string scalar; collect an error per undefined variable.

    The locations of values that named an unset variable go to `unset`: their validation
    errors would only repeat the problem (a secret file path that became empty).
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
                k: expand_env(v, (*path, str(k)), problems, source, inner, unset)
                for k, v in node.items()
            }
        return [
            expand_env(v, (*path, i), problems, source, inner, unset) for i, v in enumerate(node)
        ]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            where = format_location(path)
            problems.append(f"{source}: {where}: environment variable {name} is not set")
            if unset is not None:
                unset.add(where)
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


def duplicate_problems(data: Mapping[str, Any], unique: Unique) -> list[str]:
    """Return `section[i].key: duplicate …` for each item named like an earlier one.

    Read from the file's data rather than the validated model, so an item with an error of its
    own still counts: every duplicate shows in the same run as the field errors.
    """
    out = []
    for section, (key, what) in unique.items():
        items = data.get(section)
        seen: dict[str, int] = {}
        for index, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(key) if isinstance(item, dict) else None
            if not isinstance(value, str | int) or isinstance(value, bool):
                continue
            name = str(value)
            if name in seen:
                first = f"first at {section}[{seen[name]}]"
                out.append(f"{section}[{index}].{key}: duplicate {what} {name!r} ({first})")
            else:
                seen[name] = index
    return out


def _names(item: Any) -> set[str]:
    if not isinstance(item, dict):
        return set()
    return {str(item[k]) for k in ("name", "id") if isinstance(item.get(k), str | int)}


class _Salvage:
    """The config without the parts that failed validation, so cross-checks still run.

    Only whole top-level keys and whole items of top-level lists are dropped; `kept` maps the
    salvaged list indices back to the file's, and `dropped` holds the names of dropped items
    (a reference to one of them is not "unknown", it points at an item with its own error).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.kept: dict[str, list[int]] = {
            k: list(range(len(v))) for k, v in data.items() if isinstance(v, list)
        }
        self.dropped: set[str] = set()

    def drop(self, errors: list[Any]) -> bool:
        """Drop what each error is in; return False when an error concerns the whole file."""
        keys: set[str] = set()
        items: dict[str, set[int]] = {}
        for error in errors:
            loc = _location(error)
            if not loc or not isinstance(loc[0], str):
                return False
            key = loc[0]
            if len(loc) > 1 and isinstance(loc[1], int) and isinstance(self.data.get(key), list):
                items.setdefault(key, set()).add(loc[1])
            else:
                keys.add(key)
        data = {k: v for k, v in self.data.items() if k not in keys}
        for key in keys:
            value = self.data.get(key)
            for item in value if isinstance(value, list) else []:
                self.dropped |= _names(item)
        for key, bad in items.items():
            if key in keys:
                continue
            self.dropped |= set().union(*(_names(self.data[key][i]) for i in bad))
            data[key] = [v for i, v in enumerate(self.data[key]) if i not in bad]
            self.kept[key] = [o for i, o in enumerate(self.kept[key]) if i not in bad]
        self.data = data
        return True

    def relocate(self, problem: str) -> str | None:
        """Give a cross-check problem the file's indices; None when it is about dropped items."""
        if "unknown" in problem and any(repr(name) in problem for name in self.dropped):
            return None
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]", problem)
        if match and match.group(1) in self.kept:
            original = self.kept[match.group(1)][int(match.group(2))]
            return f"{match.group(1)}[{original}]{problem[match.end() :]}"
        return problem


def _cross_problems(
    model: type[M],
    data: dict[str, Any],
    error: ValidationError,
    cross_check: CrossCheck[M],
    context: dict[str, Any],
) -> list[str]:
    """Run the cross-checks on the parts of the config that are valid (one pass for all)."""
    salvage = _Salvage(data)
    errors = error.errors()
    # Without a failing item, its section's own checks (model validators) run and may fail in
    # turn: drop again. A few rounds settle any real config.
    for _ in range(3):
        if not salvage.drop(errors):
            return []
        try:
            config = model.model_validate(salvage.data, context=context)
        except ValidationError as again:
            errors = again.errors()
            continue
        return [p for p in map(salvage.relocate, cross_check(config)) if p is not None]
    return []


def load_model(
    model: type[M],
    text: str,
    source: str,
    cross_check: CrossCheck[M] | None = None,
    config_dir: Path | None = None,
    unique: Unique | None = None,
) -> M:
    """Validate YAML text against `model`; raise ConfigError listing every problem.

    Field errors and the cross-checks (duplicates, references) are reported together, so one
    run shows everything. Relative file paths are read from `config_dir` (default: the working
    directory).
    """
    data = parse_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: (top level): expected a mapping of sections"])
    problems: list[str] = []
    unset: set[str] = set()
    data = expand_env(data, (), problems, source, unset=unset)
    context: dict[str, Any] = {CONFIG_DIR: config_dir} if config_dir is not None else {}
    duplicates = [f"{source}: {p}" for p in duplicate_problems(data, unique or {})]
    try:
        config = model.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(_validation_problems(source, model, exc, unset))
        problems.extend(duplicates)
        if cross_check is not None:
            extra = _cross_problems(model, data, exc, cross_check, context)
            problems.extend(f"{source}: {p}" for p in extra)
        raise ConfigError(problems) from None
    problems.extend(duplicates)
    if cross_check is not None:
        problems.extend(f"{source}: {p}" for p in cross_check(config))
    if problems:
        raise ConfigError(problems)
    return config


def load_file(
    model: type[M],
    path: str | Path,
    cross_check: CrossCheck[M] | None = None,
    unique: Unique | None = None,
) -> M:
    """Read and validate a YAML config file; relative file paths in it are from its folder."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror}"]) from None
    return load_model(model, text, source, cross_check, Path(path).absolute().parent, unique)
