"""Shared pieces of the typed stack config: strict models, secrets, and one-line error messages.

Every config object is parsed by a pydantic model that refuses unknown keys. Any problem becomes a
`ConfigError` whose message is one line per problem, each starting with the key path as the user wrote
it (`jhub:nodes[2].role: ...`), so the fix is obvious without reading a traceback.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Iterable

import pulumi
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.alias_generators import to_camel

NAMESPACE = "jhub"


class ConfigError(pulumi.RunError):
    """A bad stack config. Pulumi prints a RunError's message without a traceback."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StrictModel(BaseModel):
    """Config object: camelCase keys as written in the stack file, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        frozen=True,
        str_strip_whitespace=True,
        hide_input_in_errors=True,
        # No silent coercion: `port: true` or `port: "22x"` is an error, not 1 or a crash later.
        strict=True,
    )


Secret = SecretStr
"""A secret value. It prints as stars; components wrap it in `pulumi.Output.secret` at the boundary."""


def secrets_known(info: Any) -> bool:
    """False when settings are read without the stack's secrets (the bundler): secret checks are skipped."""
    return bool((getattr(info, "context", None) or {}).get("secrets_known", True))


def reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def key_path(key: str, loc: Iterable[Any] = ()) -> str:
    """`jhub:nodes`, (2, 'role') -> `jhub:nodes[2].role`."""
    path = f"{NAMESPACE}:{key}"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _aliases(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(model: Any, loc: tuple) -> type[BaseModel] | None:
    """Walk a model class along a location path to find the model that holds the last key."""
    current = _inner_model(model)
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next(
            (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
        )
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _alias_loc(model: Any, loc: tuple) -> tuple:
    """Errors about defaults (`validate_default`) name the Python field; show the key as written."""
    current, out = _inner_model(model), []
    for part in loc:
        if isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                field = next((f for n, f in current.model_fields.items() if f.alias == part), None)
            else:
                part = field.alias or part
            current = _inner_model(field.annotation) if field is not None else None
        out.append(part)
    return tuple(out)


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside Optional[...], list[...], dict[str, ...] annotations, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    if value == "(hidden)":
        return "a hidden value"
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    return str(value)


def _looks_secret(key: Any) -> bool:
    return any(word in str(key).lower() for word in ("key", "password", "secret", "token", "cert"))


_LITERAL_RE = re.compile(r"'([^']*)'")


def describe_error(error: dict, model: Any) -> tuple[tuple, str]:
    """Turn one pydantic error into (location, human message)."""
    loc = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    if any(_looks_secret(part) for part in loc if isinstance(part, str)):
        given = "(hidden)"  # adminPasswords.alice, privateKey...: any secret-looking key on the path
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        known = _aliases(_model_at(model, parent))
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        if not close:
            close = [k for k in known if k.lower() == str(key).lower()]
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        allowed = f"; known keys: {', '.join(sorted(known))}" if known and not hint else ""
        return loc, f'unknown key "{key}"{hint}{allowed}'
    if kind == "missing":
        return loc, "is required"
    if kind == "literal_error":
        options = _LITERAL_RE.findall(str(ctx.get("expected", "")))
        wanted = " or ".join(f'"{o}"' for o in options) if options else ctx.get("expected")
        return loc, f"must be {wanted}, got {_show(given)}"
    simple = {
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "dict_type": "must be an object",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
    }
    if kind in simple:
        return loc, f"{simple[kind]}, got {_show(given)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        words = {
            "greater_than_equal": "at least",
            "less_than_equal": "at most",
            "greater_than": "more than",
            "less_than": "less than",
        }[kind]
        bound = next(iter(ctx.values()), "")
        return loc, f"must be {words} {bound}, got {_show(given)}"
    if kind == "too_short":
        return loc, f"must have at least {ctx.get('min_length')} entries"
    if kind == "too_long":
        return loc, f"must have at most {ctx.get('max_length')} entries"
    message = str(error.get("msg", "is invalid"))
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    # Union errors carry the branch name as the last location element; drop it.
    while loc and isinstance(loc[-1], str) and loc[-1].startswith(("function-", "constrained-")):
        loc = loc[:-1]
    return loc, message


def parse(model: Any, key: str, raw: Any, base_loc: tuple = (), context: dict | None = None) -> Any:
    """Validate `raw` (the value of config key `jhub:<key>`) against `model` or raise ConfigError."""
    from pydantic import TypeAdapter

    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(raw, context=context)
        return TypeAdapter(model).validate_python(raw, context=context)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc, message = describe_error(error, model)
            loc = _alias_loc(model, loc)
            problems.append(f"{key_path(key, base_loc + loc)}: {message}")
        raise ConfigError(_dedupe(problems)) from None


def _dedupe(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in lines if not (x in seen or seen.add(x))]
