"""Every graph-model test starts and ends with no open DAG, group or setup/teardown context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradewind.sdk.parsing import _reset_authoring_state


@pytest.fixture(autouse=True)
def clean_authoring_state() -> Iterator[None]:
    _reset_authoring_state()
    yield
    _reset_authoring_state()
