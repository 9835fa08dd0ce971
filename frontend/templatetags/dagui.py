"""Template filters of the DAG pages: durations, JSON, Markdown docs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils.safestring import SafeString

from frontend.markdown import render_markdown

register = template.Library()


@register.filter
def duration(value: float | timedelta | None) -> str:
    """Seconds (or a timedelta) as "850ms", "12.3s", "4m 05s" or "2h 03m"; "" for None."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def elapsed(start: datetime | None, end: datetime | None) -> str:
    """The duration between two datetimes ("" unless both are set)."""
    if start is None or end is None:
        return ""
    return duration(end - start)


@register.filter
def pretty_json(value: Any) -> str:
    """`value` as indented JSON (text: the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def markdown(value: str | None) -> SafeString:
    """Markdown docs as safe HTML (the author's text is escaped; see frontend.markdown)."""
    return render_markdown(value)
