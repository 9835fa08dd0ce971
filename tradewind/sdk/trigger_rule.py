"""Trigger rules: when a task may run given its upstream tasks' states (every Airflow 2 and 3 rule)."""

from __future__ import annotations

from enum import StrEnum


class TriggerRule(StrEnum):
    """A task's trigger rule; the value is the string Airflow stores."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_OR_SKIPPED = "none_failed_or_skipped"
    NONE_SKIPPED = "none_skipped"
    DUMMY = "dummy"
    ALWAYS = "always"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    ALL_SKIPPED = "all_skipped"

    @classmethod
    def is_valid(cls, trigger_rule: str) -> bool:
        """Whether `trigger_rule` names a rule."""
        return trigger_rule in cls.all_triggers()

    @classmethod
    def all_triggers(cls) -> set[str]:
        """Every rule's value."""
        return _ALL


_ALL = {rule.value for rule in TriggerRule}

# Airflow 2 renamed these; a task given the old name runs with the new one.
DEPRECATED_ALIASES: dict[str, TriggerRule] = {
    TriggerRule.DUMMY.value: TriggerRule.ALWAYS,
    TriggerRule.NONE_FAILED_OR_SKIPPED.value: TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
}


def normalize_trigger_rule(trigger_rule: str | TriggerRule) -> TriggerRule:
    """The TriggerRule a task runs with, resolving deprecated names; ValueError (also an
    AirflowException) for an unknown rule."""
    from tradewind.sdk.exceptions import AirflowValueError

    value = trigger_rule.value if isinstance(trigger_rule, TriggerRule) else trigger_rule
    if value in DEPRECATED_ALIASES:
        return DEPRECATED_ALIASES[value]
    if not isinstance(value, str) or value not in _ALL:
        raise AirflowValueError(f"The trigger_rule must be one of {sorted(_ALL)}, but got '{trigger_rule}'.")
    return TriggerRule(value)
