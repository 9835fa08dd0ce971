"""Airflow Variables for task code: `Variable.get/set`, answered by the running task's parent."""

from __future__ import annotations

import json
from typing import Any

from tradewind.sdk.masking import is_sensitive_key, mask_secret

_NOTSET: Any = object()


class Variable:
    """A key/value setting stored by the platform (Airflow's `Variable`). Class methods do the work; an
    instance only carries `key`, `val` and `description`, like Airflow's model."""

    def __init__(self, key: str | None = None, val: Any = None, description: str | None = None) -> None:
        self.key = key
        self.val = val
        self.description = description

    def __repr__(self) -> str:
        return f"Variable(key={self.key!r})"

    @classmethod
    def get(
        cls,
        key: str,
        default_var: Any = _NOTSET,
        deserialize_json: bool = False,
        *,
        default: Any = _NOTSET,
    ) -> Any:
        """The value of variable `key` (JSON-decoded with `deserialize_json`). When it does not exist:
        `default_var` (Airflow 2) or `default` (Airflow 3) if given, else KeyError
        "Variable <key> does not exist". Values of sensitive keys are masked in logs from then on."""
        from tradewind.sdk.execution import get_client

        fallback = default_var if default_var is not _NOTSET else default
        raw = get_client().get_variable(key)
        if raw is None:
            if fallback is not _NOTSET:
                return fallback
            raise KeyError(f"Variable {key} does not exist")
        if deserialize_json:
            value = json.loads(raw)
            if is_sensitive_key(key):
                mask_secret(raw)
            mask_secret(value, key)
            return value
        mask_secret(raw, key)
        return raw

    @classmethod
    def set(
        cls,
        key: str,
        value: Any,
        description: str | None = None,
        serialize_json: bool = False,
        **_ignored: Any,
    ) -> None:
        """Create or overwrite variable `key` (JSON-encoded with `serialize_json`, else `str(value)`)."""
        from tradewind.sdk.execution import get_client

        stored = json.dumps(value, indent=2) if serialize_json else str(value)
        get_client().set_variable(key, stored)

    @classmethod
    def update(cls, key: str, value: Any, serialize_json: bool = False, **_ignored: Any) -> None:
        """Overwrite variable `key`; Airflow raises KeyError when it does not exist yet, so do we."""
        cls.get(key)
        cls.set(key, value, serialize_json=serialize_json)

    @classmethod
    def setdefault(
        cls, key: str, default: Any, description: str | None = None, deserialize_json: bool = False
    ) -> Any:
        """Return variable `key`, first storing `default` when it does not exist."""
        value = cls.get(key, default_var=None, deserialize_json=deserialize_json)
        if value is None:
            if default is None:
                raise ValueError("Default Value must be set")
            cls.set(key, default, description=description, serialize_json=deserialize_json)
            return default
        return value

    @classmethod
    def delete(cls, key: str) -> int:
        """Not available to task code on Tradewind: variables are deleted by the platform's users."""
        raise NotImplementedError("Tradewind tasks cannot delete variables; use the UI, API or CLI")


class _VariableValues:
    """`var.value` / `var.json` in templates: attribute access and `.get(key, default)`."""

    def __init__(self, deserialize_json: bool) -> None:
        self._deserialize_json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return Variable.get(key, deserialize_json=self._deserialize_json)

    def __getitem__(self, key: str) -> Any:
        return Variable.get(key, deserialize_json=self._deserialize_json)

    def get(self, key: str, default: Any = _NOTSET) -> Any:
        """The variable, or `default` when it does not exist (KeyError when no default is given)."""
        return Variable.get(key, default_var=default, deserialize_json=self._deserialize_json)

    def __repr__(self) -> str:
        return "<var.json>" if self._deserialize_json else "<var.value>"


class VariableAccessor:
    """The `var` template object: `{{ var.value.name }}`, `{{ var.json.name.field }}`,
    `{{ var.value.get('name', 'fallback') }}`."""

    def __init__(self) -> None:
        self.value = _VariableValues(deserialize_json=False)
        self.json = _VariableValues(deserialize_json=True)

    def __repr__(self) -> str:
        return "<var>"
