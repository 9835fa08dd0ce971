"""DAG and task params: `Param` (a value with a JSON schema), `ParamsDict`, and the NOTSET sentinel.

Validation uses jsonschema (imported only when a schema has something to check) with format checking,
as Airflow does. `ParamsDict.resolve(conf)` gives the params a run sees after its conf is applied.
"""

from __future__ import annotations

import copy
import json
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from typing import Any, ClassVar

from tradewind.sdk.exceptions import ParamValidationError


class ArgNotSet:
    """The type of NOTSET: "no value was given" where None is a meaningful value."""

    _instance: ClassVar[ArgNotSet | None] = None

    def __new__(cls) -> ArgNotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOTSET"

    def __copy__(self) -> ArgNotSet:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ArgNotSet:
        return self

    def __reduce__(self) -> str:
        return "NOTSET"


NOTSET = ArgNotSet()


def is_arg_set(value: Any) -> bool:
    """Whether `value` is an actual value rather than NOTSET."""
    return value is not NOTSET


_VALIDATORS: dict[str, Any] = {}


def _validate_against(schema: dict[str, Any], value: Any) -> None:
    """Raise ParamValidationError if `value` does not match `schema` (Draft 2020-12 rules, formats checked)."""
    if not schema:
        return
    import jsonschema
    from jsonschema.exceptions import ValidationError

    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _VALIDATORS.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator = cls(schema, format_checker=jsonschema.FormatChecker())
        _VALIDATORS[key] = validator
    try:
        validator.validate(value)
    except ValidationError as err:
        raise ParamValidationError(err.message) from None


class Param:
    """A param value plus the JSON schema it must satisfy.

    `Param(default, description=..., type=..., enum=..., minimum=..., format=..., ...)`: every keyword
    other than `description` (and `schema`, a whole schema) is a JSON-schema keyword. The default must be
    JSON-serializable; it is checked against the schema when the DAG is validated or a run resolves it.
    """

    CLASS_IDENTIFIER = "__class"

    def __init__(self, default: Any = NOTSET, description: str | None = None, **kwargs: Any) -> None:
        if default is not NOTSET:
            self._check_json(default)
        self.value = default
        self.description = description
        self.schema: dict[str, Any] = kwargs.pop("schema") if "schema" in kwargs else kwargs
        self.source: str | None = None

    def __copy__(self) -> Param:
        copied = Param.__new__(type(self))
        copied.__dict__.update(self.__dict__)
        return copied

    @staticmethod
    def _check_json(value: Any) -> None:
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ParamValidationError(
                f"All provided parameters must be json-serializable. The value '{value}' is not serializable."
            ) from None

    @property
    def has_value(self) -> bool:
        """Whether the param has a value (a default or one given later)."""
        return self.value is not NOTSET

    def resolve(self, value: Any = NOTSET, suppress_exception: bool = False) -> Any:
        """The param's final value: `value` if given, else the current one; validated against the schema.

        A valid `value` becomes the param's value. Missing or invalid values raise ParamValidationError
        (or give None with `suppress_exception`)."""
        if value is not NOTSET:
            try:
                self._check_json(value)
            except ParamValidationError:
                if suppress_exception:
                    return None
                raise
        final = self.value if value is NOTSET else value
        if final is NOTSET:
            if suppress_exception:
                return None
            raise ParamValidationError("No value passed and Param has no default value")
        try:
            _validate_against(self.schema, final)
        except ParamValidationError:
            if suppress_exception:
                return None
            raise
        self.value = final
        return final

    def dump(self) -> dict[str, Any]:
        """The param as a plain dict (value None when unset), as Airflow's `Param.dump()`."""
        return {
            self.CLASS_IDENTIFIER: "airflow.models.param.Param",
            "value": None if self.value is NOTSET else self.value,
            "description": self.description,
            "schema": self.schema,
            "source": self.source,
        }

    def serialize(self) -> dict[str, Any]:
        """JSON-able form: {"default", "has_default", "description", "schema"}."""
        return {
            "default": None if self.value is NOTSET else self.value,
            "has_default": self.value is not NOTSET,
            "description": self.description,
            "schema": self.schema,
        }

    @classmethod
    def deserialize(cls, data: Mapping[str, Any]) -> Param:
        """Rebuild a Param from `serialize()`'s output."""
        default = data.get("default") if data.get("has_default", True) else NOTSET
        return cls(default, description=data.get("description"), schema=dict(data.get("schema") or {}))

    def __repr__(self) -> str:
        return f"Param({self.value!r}, description={self.description!r}, schema={self.schema!r})"


class ParamsDict(MutableMapping[str, Any]):
    """A mapping of name -> Param; reading an item gives the param's validated value.

    Setting a plain value on an existing param validates it against that param's schema; a new name becomes
    a schema-less Param. `items()` and `values()` give the Param objects, as in Airflow.
    """

    __slots__ = ("_params", "suppress_exception")

    def __init__(self, dict_obj: Mapping[str, Any] | None = None, suppress_exception: bool = False) -> None:
        params: dict[str, Param] = {}
        for key, value in (dict_obj or {}).items():
            params[key] = value if isinstance(value, Param) else Param(value)
        self._params = params
        self.suppress_exception = suppress_exception

    def __bool__(self) -> bool:
        return bool(self._params)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ParamsDict):
            return self.dump() == other.dump()
        if isinstance(other, dict):
            return self.dump() == other
        return NotImplemented

    def __copy__(self) -> ParamsDict:
        return ParamsDict({k: copy.copy(v) for k, v in self._params.items()}, self.suppress_exception)

    def __deepcopy__(self, memo: dict[int, Any]) -> ParamsDict:
        return ParamsDict(copy.deepcopy(self._params, memo), self.suppress_exception)

    def __contains__(self, key: object) -> bool:
        return key in self._params

    def __len__(self) -> int:
        return len(self._params)

    def __delitem__(self, key: str) -> None:
        del self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __repr__(self) -> str:
        return repr(self.dump())

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, Param):
            param = value
        elif key in self._params:
            param = self._params[key]
            try:
                param.resolve(value=value, suppress_exception=self.suppress_exception)
            except ParamValidationError as err:
                raise ParamValidationError(f"Invalid input for param {key}: {err}") from None
        else:
            param = Param(value)
        self._params[key] = param

    def __getitem__(self, key: str) -> Any:
        return self._params[key].resolve(suppress_exception=self.suppress_exception)

    def get_param(self, key: str) -> Param:
        """The Param object stored under `key`."""
        return self._params[key]

    def items(self) -> ItemsView[str, Param]:  # type: ignore[override]
        return ItemsView(self._params)

    def values(self) -> ValuesView[Param]:  # type: ignore[override]
        return ValuesView(self._params)

    def update(self, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and not kwargs and isinstance(args[0], ParamsDict):
            for key, param in args[0]._params.items():
                self._params[key] = param
            return
        super().update(*args, **kwargs)

    def dump(self) -> dict[str, Any]:
        """name -> current value (None where unset or invalid), without raising."""
        return {k: v.resolve(suppress_exception=True) for k, v in self._params.items()}

    def validate(self) -> dict[str, Any]:
        """name -> validated value; raises ParamValidationError naming the first bad param."""
        resolved: dict[str, Any] = {}
        for key, param in self._params.items():
            try:
                resolved[key] = param.resolve(suppress_exception=self.suppress_exception)
            except ParamValidationError as err:
                raise ParamValidationError(f"Invalid input for param {key}: {err}") from None
        return resolved

    def validate_defaults(self) -> None:
        """Raise ParamValidationError if any param that has a value fails its schema (missing values are
        fine: a run may still provide them)."""
        for key, param in self._params.items():
            if param.value is NOTSET:
                continue
            try:
                _validate_against(param.schema, param.value)
            except ParamValidationError as err:
                raise ParamValidationError(f"Invalid input for param {key}: {err}") from None

    def required_without_default(self) -> list[str]:
        """Names of params with no value whose schema does not allow null."""
        missing = []
        for key, param in self._params.items():
            types = param.schema.get("type")
            allows_null = types == "null" or (isinstance(types, list) and "null" in types)
            if param.value is NOTSET and not allows_null:
                missing.append(key)
        return missing

    def resolve(
        self, conf: Mapping[str, Any] | None = None, *, dag_run_conf_overrides_params: bool = True
    ) -> dict:
        """The params a run sees: a copy of these params, with `conf` applied when conf may override them
        (Airflow's `dag_run_conf_overrides_params`), every value validated.

        Raises ParamValidationError for a conf value or default that fails its schema, or a param left
        without any value."""
        params = copy.copy(self)
        params.suppress_exception = False
        if conf and dag_run_conf_overrides_params:
            for key, value in conf.items():
                params[key] = value
        return params.validate()

    def serialize(self) -> dict[str, dict[str, Any]]:
        """name -> Param.serialize() (JSON-able)."""
        return {k: v.serialize() for k, v in self._params.items()}

    @classmethod
    def deserialize(cls, data: Mapping[str, Mapping[str, Any]]) -> ParamsDict:
        """Rebuild from `serialize()`'s output."""
        return cls({k: Param.deserialize(v) for k, v in data.items()})
