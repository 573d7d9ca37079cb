"""Template helpers of the report pages."""

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()
# An em dash: no figure.
NO_VALUE = "\u2014"


@register.simple_tag(takes_context=True)
def drill_url(context: template.Context, drill: dict[str, str]) -> str:
    """The drill-down page for a figure: the page's period and pool, then the figure's filters
    (a figure may clear the pool with `pool=""`)."""
    params: dict[str, Any] = {**(context.get("filter_params") or {}), **drill}
    return reverse("reports-decisions") + "?" + urlencode(params)


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.1234 → "12.3%"; a dash for no value."""
    if value is None:
        return NO_VALUE
    return f"{value * 100:.{digits}f}%"


@register.filter
def usd(value: float | None) -> str:
    """Dollars with enough digits for fractions of a cent."""
    if value is None:
        return NO_VALUE
    return f"${value:,.4f}" if abs(value) < 100 else f"${value:,.2f}"


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as "3 d 4 h", "2 h 5 min", "4 min" or "12 s"."""
    if seconds is None:
        return NO_VALUE
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


@register.filter
def ms(value: float | None) -> str:
    """Milliseconds, rounded."""
    if value is None:
        return NO_VALUE
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"
