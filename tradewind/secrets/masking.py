"""Secret masking with Airflow's semantics: remembered secrets become `***` wherever they appear.

One Masker per task try (and per response or audit entry that needs one). Which names are sensitive is
decided by `tradewind.sdk.masking.is_sensitive_key`, the one list shared with the SDK.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings

from tradewind.sdk.masking import is_sensitive_key

MASK = "***"
# Values too common to be worth hiding: masking them would garble every log line (Airflow skips these too).
_NEVER_MASK = frozenset({"none", "null", "true", "false", "yes", "no", "on", "off"})


def _min_length() -> int:
    return settings.TRADEWIND_MASK_MIN_LENGTH


class Masker:
    """Remembers secret values and replaces every occurrence (and its URL/JSON-escaped forms) with `***`.

    Values shorter than settings.TRADEWIND_MASK_MIN_LENGTH (default 5) and words like "true" are ignored,
    as Airflow's masker does, so short common strings do not garble output. Mask whole lines or documents:
    a secret split across two `mask_bytes` calls cannot be recognised.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._bytes_pattern: re.Pattern[bytes] | None = None

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def add(self, value: str | None) -> None:
        """Remember `value` as a secret (with its common encodings); short or trivial values are ignored."""
        if value is None:
            return
        value = str(value)
        if len(value.strip()) < _min_length() or value.strip().lower() in _NEVER_MASK:
            return
        forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        if "\n" in value:
            forms.update(line for line in value.splitlines() if len(line.strip()) >= _min_length())
        new = forms - self._secrets
        if new:
            self._secrets |= new
            self._pattern = None
            self._bytes_pattern = None

    def add_connection(self, conn: dict[str, Any]) -> None:
        """Remember a connection's password and every value of its extra (Airflow masks all of them)."""
        self.add(conn.get("password"))
        extra = conn.get("extra")
        if isinstance(extra, str) and extra:
            self.add(extra)
            try:
                extra = json.loads(extra)
            except ValueError:
                return
        for value in _leaves(extra):
            self.add(value)

    def add_variable(self, key: str, value: str | None) -> None:
        """Remember a variable's value, only when its key looks sensitive (Airflow's rule)."""
        if value is None or not is_sensitive_key(key):
            return
        self.add(value)
        try:
            decoded = json.loads(value)
        except ValueError:
            return
        for leaf in _leaves(decoded):
            self.add(leaf)

    def mask(self, text: str) -> str:
        """`text` with every remembered secret replaced by `***`."""
        if not self._secrets or not text:
            return text
        if self._pattern is None:
            self._pattern = re.compile("|".join(re.escape(s) for s in self._ordered()))
        return self._pattern.sub(MASK, text)

    def mask_bytes(self, data: bytes) -> bytes:
        """`mask` for raw output (task logs): secrets are matched in their UTF-8 form."""
        if not self._secrets or not data:
            return data
        if self._bytes_pattern is None:
            self._bytes_pattern = re.compile(b"|".join(re.escape(s.encode()) for s in self._ordered()))
        return self._bytes_pattern.sub(MASK.encode(), data)

    def mask_structure(self, value: Any) -> Any:
        """A copy of `value` (dicts, lists, strings) where sensitive keys' values are `***` and remembered
        secrets inside strings are masked; other leaves are returned unchanged."""
        if isinstance(value, dict):
            return {key: self._mask_item(key, item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_structure(item) for item in value]
        if isinstance(value, str):
            return self.mask(value)
        return value

    def _mask_item(self, key: Any, item: Any) -> Any:
        if is_sensitive_key(str(key)) and item not in (None, ""):
            return MASK
        return self.mask_structure(item)

    def _ordered(self) -> list[str]:
        # Longest first, so a secret containing another secret is replaced whole.
        return sorted(self._secrets, key=len, reverse=True)


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def mask_structure(value: Any) -> Any:
    """Key-based masking without remembered secrets: what audit entries and API payloads pass through."""
    return Masker().mask_structure(value)
