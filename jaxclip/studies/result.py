"""A study's result: a frozen dataclass that is its part of results.json (and of arrays.npz).

Every study's `analyse` returns a subclass of `StudyResult`. Its fields, in order, are the keys
of the study's entry in `results.json`, so the file is the dataclass written out. Two kinds of
field metadata change that:

* `optional()`: the key is left out of the JSON when the value is `None` (a study that was
  skipped, a published number that exists for some model × dataset pairs only);
  `optional(null_with="f")` writes `null` instead when field `f` is set (a metric that is
  undefined for this run, beside ones that are, e.g. top-5 with 3 classes);
* `sidecar()`: an array a figure needs but results.json does not hold; it goes to
  `DIR/arrays.npz` under `<study>.<field>`;
* `timing()`: wall-clock seconds (a dict part -> seconds), which differ from run to run and so
  stay out of results.json (which is reproducible); they go to `DIR/timings.json`.

`from_json` turns a saved entry back into the dataclass, so `render` can draw a report from a
finished run without recomputing anything (`python -m experiments.report --workdir=DIR`).
Nested values stay JSON-shaped (dicts, lists, numbers): a render reads them the same way
whether the result is fresh or reloaded, because the runner always renders the reloaded form.

Example:

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class CountResult(StudyResult):
        split: str
        num_samples: int
        published: float | None = optional()
        scores: np.ndarray | None = sidecar()
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from jaxclip.report.records import to_jsonable

R = TypeVar("R", bound="StudyResult")

_OPTIONAL = "jaxclip_optional"
_SIDECAR = "jaxclip_sidecar"
_TIMING = "jaxclip_timing"
_NULL_WITH = "jaxclip_null_with"


def optional(default: Any = None, *, null_with: str | None = None) -> Any:
    """A field written to results.json only when it is not None (or, with `null_with`, also as
    null when that other field is not None)."""
    return dataclasses.field(default=default, metadata={_OPTIONAL: True, _NULL_WITH: null_with})


def sidecar() -> Any:
    """An array field kept in DIR/arrays.npz instead of results.json (None: not stored)."""
    return dataclasses.field(default=None, metadata={_SIDECAR: True}, compare=False)


def timing() -> Any:
    """Seconds per part of the study (a dict), kept in DIR/timings.json, not results.json."""
    return dataclasses.field(default_factory=dict, metadata={_TIMING: True}, compare=False)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _stored_elsewhere(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get(_SIDECAR) or f.metadata.get(_TIMING))


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyResult:
    """Base class of every study's result (see the module docstring).

    Subclasses are `@dataclasses.dataclass(frozen=True, kw_only=True)`: keyword-only fields
    may mix required and defaulted ones in any order, so the order can follow results.json.
    """

    def to_json(self) -> dict[str, Any]:
        """The study's results.json entry: plain JSON values, fields in declaration order."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if _stored_elsewhere(f):
                continue
            if f.metadata.get(_OPTIONAL) and value is None:
                partner = f.metadata.get(_NULL_WITH)
                if partner is None or getattr(self, partner) is None:
                    continue
            out[f.name] = to_jsonable(value)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The sidecar arrays that are set, by field name."""
        return {
            f.name: np.asarray(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.metadata.get(_SIDECAR) and getattr(self, f.name) is not None
        }

    def timings(self) -> dict[str, dict[str, float]]:
        """The timing fields, by field name."""
        return {
            f.name: dict(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.metadata.get(_TIMING)
        }

    @classmethod
    def from_json(
        cls: type[R],
        entry: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        timings: Mapping[str, Mapping[str, float]] | None = None,
    ) -> R:
        """The result back from its results.json entry, sidecar arrays and timings.

        Raises:
          ValueError: a required field is missing from `entry` (the file is from another
            version of the study, or not a study's entry at all).
        """
        arrays, timings = arrays or {}, timings or {}
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get(_TIMING):
                kwargs[f.name] = dict(timings.get(f.name, {}))
            elif f.metadata.get(_SIDECAR):
                kwargs[f.name] = arrays.get(f.name)
            elif f.name in entry:
                kwargs[f.name] = entry[f.name]
            elif not f.metadata.get(_OPTIONAL) and _required(f):
                raise ValueError(
                    f"{cls.__name__}: results entry has no {f.name!r} (keys: {', '.join(entry)})"
                )
        return cls(**kwargs)

    def reloaded(self: R) -> R:
        """This result as `from_json` rebuilds it from the written files: the entry through
        JSON (results.json), the sidecar arrays through npz (arrays.npz)."""
        entry = json.loads(json.dumps(self.to_json(), allow_nan=False))
        buf = io.BytesIO()
        np.savez(buf, **self.arrays())
        buf.seek(0)
        with np.load(buf, allow_pickle=False) as z:
            arrays = dict(z)
        return type(self).from_json(entry, arrays, self.timings())
