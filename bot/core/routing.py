"""Which script investigates which account: scenario x prior risk tier (x branch).

``routing.yaml`` in the templates directory is compliance-owned::

    version: 3
    routes:                       # scenario -> tier -> script id
      new_account: {low: new_account_short, medium: new_account_full, high: new_account_full}
      ...
    branches:                     # optional per-branch overrides, same shape
      shenzhen:
        suspicious_txn: {low: suspicious_txn_full}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bot.core.account import Account
from bot.core.vocab import RiskBand, Scenario
from bot.core.yamlsource import LineMap, SourceError

RouteTable = dict[Scenario, dict[RiskBand, str]]


class RoutingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    routes: RouteTable
    branches: dict[str, RouteTable] = Field(default_factory=dict)


def prior_tier(model_score: float, medium: float, high: float) -> RiskBand:
    """The bank's model score as a tier (thresholds from settings)."""
    if model_score >= high:
        return RiskBand.HIGH
    if model_score >= medium:
        return RiskBand.MEDIUM
    return RiskBand.LOW


class RoutingError(LookupError):
    pass


class Router:
    def __init__(self, table: RoutingFile, medium: float, high: float, file: str = "routing.yaml"):
        self.table = table
        self.medium = medium
        self.high = high
        self.file = file

    def script_id(self, account: Account) -> str:
        tier = prior_tier(account.model_score, self.medium, self.high)
        for table in (self.table.branches.get(account.branch or "", {}), self.table.routes):
            script = table.get(account.scenario, {}).get(tier)
            if script:
                return script
        raise RoutingError(
            f"{self.file}: no script for scenario {account.scenario.value} tier {tier.value}"
        )

    def check(
        self, script_tiers: dict[str, tuple[set[Scenario], set[RiskBand]]], lines: LineMap
    ) -> list[SourceError]:
        """Every scenario x tier is routed, to a script that exists and serves it."""
        errors: list[SourceError] = []
        for scenario in Scenario:
            for tier in RiskBand:
                if not self.table.routes.get(scenario, {}).get(tier):
                    errors.append(
                        SourceError(
                            self.file,
                            lines.line(("routes", scenario.value)),
                            f"routes.{scenario.value}",
                            f"no script for tier '{tier.value}'",
                        )
                    )
        tables = [(("routes",), self.table.routes)] + [
            (("branches", b), t) for b, t in self.table.branches.items()
        ]
        for prefix, table in tables:
            for scenario, tiers in table.items():
                for tier, script_id in tiers.items():
                    path = (*prefix, scenario.value, tier.value)
                    where = ".".join(path)
                    if script_id not in script_tiers:
                        errors.append(
                            SourceError(
                                self.file, lines.line(path), where, f"unknown script '{script_id}'"
                            )
                        )
                        continue
                    scenarios, served = script_tiers[script_id]
                    if scenario not in scenarios or tier not in served:
                        errors.append(
                            SourceError(
                                self.file,
                                lines.line(path),
                                where,
                                f"script '{script_id}' does not declare scenario '{scenario.value}' and tier '{tier.value}'",
                            )
                        )
        return errors


def load_router(root: Path, medium: float, high: float) -> tuple[Router, LineMap]:
    """Read ``routing.yaml``; raises :class:`~bot.core.yamlsource.SourceFileError`."""
    from bot.core.scripts import parse_model

    path = root / "routing.yaml"
    table, lines = parse_model(path.read_text(encoding="utf-8"), str(path), RoutingFile)
    return Router(table, medium, high, str(path)), lines
