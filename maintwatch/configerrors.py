"""Phrase pydantic's validation errors for the operator who wrote the config (pure).

pydantic words its errors for programmers ("Input should be a valid integer, unable to parse
string as an integer", "Input tag 'x' found using 'type' does not match…"); an operator needs
what to write instead. Unknown fields get the nearest known field as a suggestion.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

_SHORT = 40


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _choices(values: Any) -> str:
    return ", ".join(str(v).strip("'") for v in values)


def _literal(ctx: Mapping[str, Any]) -> str:
    # ctx["expected"] reads "'a', 'b' or 'c'": keep pydantic's list, drop its quotes.
    expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
    return f"expected one of: {expected}"


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _bound(word: str, key: str) -> Any:
    return lambda ctx: f"must be {word} {_number(ctx.get(key))}"


_PLAIN: dict[str, Any] = {
    "missing": lambda ctx: "required field is missing",
    "string_type": lambda ctx: "expected text (a string)",
    "string_too_short": lambda ctx: (
        "must not be empty"
        if ctx.get("min_length") == 1
        else f"must be at least {ctx.get('min_length')} characters"
    ),
    "string_too_long": lambda ctx: f"must be at most {ctx.get('max_length')} characters",
    "string_pattern_mismatch": lambda ctx: f"must match the pattern {ctx.get('pattern')}",
    "int_type": lambda ctx: "expected a whole number",
    "int_parsing": lambda ctx: "expected a whole number",
    "int_from_float": lambda ctx: "expected a whole number",
    "float_type": lambda ctx: "expected a number",
    "float_parsing": lambda ctx: "expected a number",
    "bool_type": lambda ctx: "expected true or false",
    "bool_parsing": lambda ctx: "expected true or false",
    "list_type": lambda ctx: "expected a list",
    "tuple_type": lambda ctx: "expected a list",
    "dict_type": lambda ctx: "expected a mapping (key: value lines)",
    "model_type": lambda ctx: "expected a mapping of fields",
    "model_attributes_type": lambda ctx: "expected a mapping of fields",
    "path_type": lambda ctx: "expected a path (text)",
    "literal_error": _literal,
    "enum": _literal,
    "greater_than": _bound("more than", "gt"),
    "greater_than_equal": _bound("at least", "ge"),
    "less_than": _bound("less than", "lt"),
    "less_than_equal": _bound("at most", "le"),
    "too_short": lambda ctx: (
        "must not be empty"
        if ctx.get("min_length") == 1
        else f"needs at least {ctx.get('min_length')} items"
    ),
    "too_long": lambda ctx: f"takes at most {ctx.get('max_length')} items",
    "url_parsing": lambda ctx: "expected a URL such as https://host.example/path",
    "url_scheme": lambda ctx: f"URL scheme must be {ctx.get('expected_schemes')}",
    "url_type": lambda ctx: "expected a URL such as https://host.example/path",
    "union_tag_invalid": lambda ctx: (
        f"unknown {ctx.get('discriminator', 'type').strip(chr(39))} {ctx.get('tag')!r}; "
        f"known: {_choices(str(ctx.get('expected_tags', '')).split(', '))}"
    ),
    "union_tag_not_found": lambda ctx: (
        f"missing field {ctx.get('discriminator', 'type').strip(chr(39))!s}"
    ),
}

# Types whose message needs the value that was given to make sense.
_SHOW_INPUT = {
    "string_type",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "literal_error",
    "enum",
    "path_type",
    "url_parsing",
    "url_type",
    "string_pattern_mismatch",
}


def _unwrap(annotation: Any) -> Iterator[Any]:
    """Yield the model classes and containers an annotation can hold, without wrappers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _unwrap(typing.get_args(annotation)[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _unwrap(arg)
    elif annotation is not type(None):
        yield annotation


def _field_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def _step(candidates: list[Any], part: int | str) -> list[Any]:
    """Follow one location part from the types that may sit at this level."""
    out: list[Any] = []
    for candidate in candidates:
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if isinstance(part, int) and origin in (list, tuple, set, frozenset) and args:
            out += list(_unwrap(args[0]))
        elif isinstance(part, str) and origin is dict and len(args) == 2:
            out += list(_unwrap(args[1]))
        elif (
            isinstance(part, str)
            and isinstance(candidate, type)
            and issubclass(candidate, BaseModel)
        ):
            by_alias = {info.alias or name: info for name, info in candidate.model_fields.items()}
            if part in by_alias:
                out += list(_unwrap(by_alias[part].annotation))
    if out:
        return out
    # A union's tag (`smtp` in channels[0].smtp.host) is not a field: stay on the members
    # the tag names, or on all of them.
    tagged = [c for c in candidates if _is_model(c) and _tag_of(c) == part]
    return tagged or [c for c in candidates if _is_model(c)]


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def _tag_of(model: type[BaseModel]) -> Any:
    info = model.model_fields.get("type")
    if info is None:
        return None
    args = typing.get_args(info.annotation)
    return args[0] if len(args) == 1 else info.default


def known_fields(model: type[BaseModel], loc: Sequence[int | str]) -> set[str]:
    """Return the field names allowed in the mapping at `loc` (empty when unknown)."""
    candidates: list[Any] = [model]
    for part in loc:
        candidates = _step(candidates, part)
        if not candidates:
            return set()
    names: set[str] = set()
    for candidate in candidates:
        if _is_model(candidate):
            names |= _field_names(candidate)
    return names


def suggestion(word: str, known: set[str]) -> str:
    """Return `; did you mean 'x'?` for the closest known name, or nothing."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def phrase(error: Mapping[str, Any], model: type[BaseModel], loc: Sequence[int | str]) -> str:
    """Return the operator's message for one pydantic error at `loc` (union tags included)."""
    kind = str(error["type"])
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = loc[-1] if loc else ""
        known = known_fields(model, loc[:-1])
        return "unknown field" + (suggestion(str(key), known) if isinstance(key, str) else "")
    if kind in _PLAIN:
        message: str = _PLAIN[kind](ctx)
        if kind in _SHOW_INPUT and "input" in error:
            message += f", got {_shown(error['input'])}"
        return message
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message.replace("Input should be", "expected")
