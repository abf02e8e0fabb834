"""A line's config resolved once into the lookups the time model needs per sample."""

from __future__ import annotations

from dataclasses import dataclass

from linewatch.config import COUNT_ROLES, Line, PlantConfig


@dataclass(frozen=True, slots=True)
class LineModel:
    site: str
    line: str
    detection: str
    state_map: dict[str, tuple[str, str | None]]
    reason_map: dict[str, str | None]
    product_map: dict[str, str]
    reason_category: dict[str, str]
    unit_ideal_s: dict[str, float]  # product id -> ideal seconds per unit (S9)
    default_product: str
    counter_max: dict[str, int]  # role -> counter_max (S6)
    mapped_count_roles: frozenset[str]
    micro_stop_s: int
    stop_after_s: int

    @classmethod
    def build(cls, config: PlantConfig, line: Line) -> LineModel:
        unit_ideal: dict[str, float] = {}
        for product in config.products:
            override = line.products.get(product.id)
            cycle = product.ideal_cycle_s
            units = product.units_per_cycle
            if override is not None:
                cycle = override.ideal_cycle_s if override.ideal_cycle_s is not None else cycle
                units = (override.units_per_cycle if override.units_per_cycle is not None
                         else units)
            unit_ideal[product.id] = cycle / units
        roles = line.signals.roles()
        counter_max = {
            role: (src.counter_max if (src := roles.get(role)) and src.counter_max
                   else line.counter_max)
            for role in COUNT_ROLES
        }
        reason_category = {r.code: r.category for r in config.reasons}
        reason_category.setdefault("unmapped", "unplanned_stop")
        reason_category.setdefault("unexplained", "unplanned_stop")
        return cls(
            site=config.site.id,
            line=line.id,
            detection=line.detection,
            state_map={k: (v.category, v.reason) for k, v in line.state_map.items()},
            reason_map=dict(line.reason_map),
            product_map=dict(line.product_map),
            reason_category=reason_category,
            unit_ideal_s=unit_ideal,
            default_product=line.default_product or "",
            counter_max=counter_max,
            mapped_count_roles=frozenset(r for r in COUNT_ROLES if r in roles),
            micro_stop_s=config.policy.micro_stop_s,
            stop_after_s=config.policy.stop_after_s,
        )
