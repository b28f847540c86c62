"""Parsing config variant strings (`configs/x.py:vit_b32,cifar100,smoke`) with clear errors.

Every `configs/*.py` has `get_config(arg)`; `arg` is a comma-separated list of variant names.
`parse_variants` sorts them into groups (model, dataset, ...) and flags, and rejects anything
unknown with one line naming the bad token and every valid choice.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jaxclip.errors import UserError


class ConfigError(UserError, ValueError):
    """A config value or variant that is not allowed; the message lists the valid choices."""


@dataclasses.dataclass(frozen=True)
class VariantSpec:
    """What one `parse_variants` call accepted: group -> values, the defaults, the flags."""

    groups: dict[str, list[str]]
    defaults: dict[str, str]
    flags: list[str]


_RECORDING: contextvars.ContextVar[list[VariantSpec] | None] = contextvars.ContextVar(
    "jaxclip_variant_recording", default=None
)


@contextlib.contextmanager
def recording_variants() -> Iterator[list[VariantSpec]]:
    """Collects the `VariantSpec` of every `parse_variants` call made inside the block, e.g.

        with recording_variants() as specs:
            module.get_config()
        # specs[0].groups == {"model": [...], "dataset": [...]}

    so `--help` lists a config file's variants from the file itself, not from a copy.
    """
    specs: list[VariantSpec] = []
    token = _RECORDING.set(specs)
    try:
        yield specs
    finally:
        _RECORDING.reset(token)


def parse_variants(
    arg: str | None,
    groups: Mapping[str, Iterable[str]],
    defaults: Mapping[str, str],
    flags: Iterable[str] = ("smoke",),
) -> dict[str, Any]:
    """Splits `arg` into one choice per group plus boolean flags.

    Args:
      arg: e.g. "vit_b32,cifar100,smoke" (None or "" gives the defaults).
      groups: group name -> allowed values, e.g. {"model": [...], "dataset": [...]}.
      defaults: group name -> value used when `arg` names none of that group.
      flags: allowed bare flags; each becomes a bool in the result.

    Returns:
      {group: value, ..., flag: bool, ...}.

    Raises:
      ConfigError: for an unknown token or two values for the same group.
    """
    groups = {g: list(v) for g, v in groups.items()}
    flags = list(flags)
    recording = _RECORDING.get()
    if recording is not None:
        recording.append(VariantSpec(groups, dict(defaults), flags))
    out: dict[str, Any] = dict(defaults)
    out.update({f: False for f in flags})
    seen: dict[str, str] = {}
    for token in [t.strip() for t in (arg or "").split(",") if t.strip()]:
        if token in flags:
            out[token] = True
            continue
        owners = [g for g, values in groups.items() if token in values]
        if not owners:
            choices = "; ".join(f"{g}: {', '.join(v)}" for g, v in groups.items())
            flag_text = f"; flags: {', '.join(flags)}" if flags else ""
            raise ConfigError(
                f"unknown config variant {token!r} in {arg!r}; valid {choices}{flag_text}"
            )
        group = owners[0]
        if group in seen:
            raise ConfigError(
                f"config variant {arg!r} names two {group}s ({seen[group]!r} and {token!r}); pick one"
            )
        seen[group] = token
        out[group] = token
    return out


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> Any:
    """Returns `value` if it is one of `choices`, else raises ConfigError naming them."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"config.{field}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}"
        )
    return value


def parse_list(field: str, value: str, choices: list[str] | None = None) -> list[str]:
    """A comma-separated config string as a list (order kept, duplicates rejected)."""
    if not isinstance(value, str):
        raise ConfigError(f"config.{field}={value!r} must be a comma-separated string")
    items = [t.strip() for t in value.split(",") if t.strip()]
    for item in items:
        if choices is not None:
            check_choice(field, item, choices)
    dupes = sorted({t for t in items if items.count(t) > 1})
    if dupes:
        raise ConfigError(f"config.{field}={value!r} names {dupes} more than once")
    return items
