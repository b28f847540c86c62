"""Transitional adapter: a study still written as `run(ctx, cfg) -> LegacySection`.

Removed once every study is `analyse` + `render`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxclip.report import Report
from jaxclip.studies.context import RenderContext, Section, Study
from jaxclip.studies.result import StudyResult

_REPORTS: dict[str, Report] = {}


@dataclasses.dataclass
class LegacySection:
    name: str
    results: dict[str, Any]
    report: Report


def legacy_study(module: Any) -> Study:
    name = module.NAME

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class LegacyResult(StudyResult):
        entry: dict[str, Any]

        def to_json(self) -> dict[str, Any]:
            from jaxclip.report import to_jsonable

            return to_jsonable(self.entry)

        @classmethod
        def from_json(cls, entry, arrays=None, timings=None):
            return cls(entry=dict(entry))

        def reloaded(self):
            return self

    def analyse(ctx: Any, cfg: Any) -> LegacyResult:
        section = module.run(ctx, cfg)
        _REPORTS[name] = section.report
        return LegacyResult(entry=section.results)

    def render(result: LegacyResult, out: RenderContext) -> Section:
        return Section(name, _REPORTS.get(name) or Report(f"{name} (not re-rendered)"))

    return Study(analyse, render, LegacyResult, module.check_config)
