"""Weight rules: how a task's effective priority is computed from its own and its relatives' weights."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class WeightRule(StrEnum):
    """Airflow's built-in priority weight rules."""

    DOWNSTREAM = "downstream"
    UPSTREAM = "upstream"
    ABSOLUTE = "absolute"

    @classmethod
    def is_valid(cls, weight_rule: str) -> bool:
        """Whether `weight_rule` names a rule."""
        return weight_rule in cls.all_weight_rules()

    @classmethod
    def all_weight_rules(cls) -> set[str]:
        """Every rule's value."""
        return _ALL


_ALL = {rule.value for rule in WeightRule}


class PriorityWeightStrategy:
    """Base class of Airflow 2.9+ priority weight strategies (custom ones come from plugins in Airflow).

    A task given a strategy object is serialized with the strategy's class path; only the three built-in
    rules are computed by Tradewind's scheduler.
    """

    def get_weight(self, ti: Any) -> int:
        """The effective weight of a task instance."""
        raise NotImplementedError

    def serialize(self) -> dict[str, Any]:
        """The strategy's constructor arguments."""
        return {}


class _BuiltinStrategy(PriorityWeightStrategy):
    rule: WeightRule

    def get_weight(self, ti: Any) -> int:
        return int(ti.task.priority_weight_total)


class _AbsolutePriorityWeightStrategy(_BuiltinStrategy):
    rule = WeightRule.ABSOLUTE


class _DownstreamPriorityWeightStrategy(_BuiltinStrategy):
    rule = WeightRule.DOWNSTREAM


class _UpstreamPriorityWeightStrategy(_BuiltinStrategy):
    rule = WeightRule.UPSTREAM


def normalize_weight_rule(weight_rule: str | WeightRule | PriorityWeightStrategy) -> str:
    """The serialized form of a task's weight rule: a rule name, or a custom strategy's class path.

    Raises ValueError (also an AirflowException) for an unknown rule name."""
    from tradewind.sdk.exceptions import AirflowValueError

    if isinstance(weight_rule, _BuiltinStrategy):
        return weight_rule.rule.value
    if isinstance(weight_rule, PriorityWeightStrategy):
        return f"{type(weight_rule).__module__}.{type(weight_rule).__qualname__}"
    value = weight_rule.value if isinstance(weight_rule, WeightRule) else weight_rule
    if not isinstance(value, str) or value not in _ALL:
        raise AirflowValueError(f"The weight_rule must be one of {sorted(_ALL)}, but got '{weight_rule}'.")
    return value
