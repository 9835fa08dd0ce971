"""`airflow.utils.log.secrets_masker`."""

from __future__ import annotations

from tradewind.sdk.masking import (
    is_sensitive_key as should_hide_value_for_key,
)
from tradewind.sdk.masking import (
    mask_secret,
)

__all__ = [
    "mask_secret",
    "should_hide_value_for_key",
]
