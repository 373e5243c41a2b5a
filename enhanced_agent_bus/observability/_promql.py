"""Just enough PromQL reading to check Grafana dashboards against the metric catalogue.

This is not a PromQL parser: it finds the metric selectors of an expression
(``name{label="v"}``) after removing what can hold other identifiers (strings,
label matchers, ranges, ``by (...)`` clauses, function calls). That is exact
for the expression shapes dashboards use, and the real-Prometheus test
evaluates every expression as the final word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING: Final = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_SELECTOR: Final = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_RANGE: Final = re.compile(r"\[[^\]]*\]")
# Not glued to a word character, "." or "$" (numbers like 1e3, durations like 5m, decimals),
# and not followed by "(" (functions and aggregations).
_IDENT: Final = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_MATCHER_LABEL: Final = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_KEYWORDS: Final = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
     "and", "or", "unless", "atan2", "inf", "nan", "le"}
)  # fmt: skip
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES: Final = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$", re.DOTALL)

#: What each Grafana built-in variable becomes when an expression is evaluated directly.
DEFAULT_VARIABLES: Final[Mapping[str, str]] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
}


@dataclass(frozen=True, slots=True)
class Selector:
    """A metric name and the label names matched on it in one expression."""

    metric: str
    labels: frozenset[str]


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    """One PromQL expression found in a dashboard."""

    dashboard: str
    where: str  # panel title and refId, or "variable <name>"
    expr: str


def render(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """Replace Grafana variables (``$__rate_interval``, ``$tenant``, ``${x}``) with values.

    Unknown variables become ``.*``: dashboards use them only inside ``=~`` matchers.
    """
    values = {**DEFAULT_VARIABLES, **(variables or {})}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, ".*")

    return _VARIABLE.sub(substitute, expr)


def selectors(expr: str) -> list[Selector]:
    """The metric selectors of a PromQL expression, in order of appearance."""
    text = _STRING.sub('""', render(expr))
    found: list[Selector] = []
    spans: list[tuple[int, int]] = []
    for match in _SELECTOR.finditer(text):
        labels = frozenset(_MATCHER_LABEL.findall(match.group(2))) - {"__name__"}
        if match.group(1) and match.group(1).lower() not in _KEYWORDS:
            found.append(Selector(match.group(1), labels))
            spans.append(match.span())
    # Blank what was matched, then the rest: ranges, grouping clauses, function names.
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    rest = _GROUPING.sub(" ", _RANGE.sub(" ", re.sub(r"\{[^}]*\}", " ", "".join(chars))))
    for match in _IDENT.finditer(rest):
        name = match.group(1)
        if name.lower() in _KEYWORDS:
            continue
        found.append(Selector(name, frozenset()))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads."""
    return {selector.metric for selector in selectors(expr)}


def label_values_as_promql(query: str) -> str | None:
    """``label_values(metric, label)`` as an instant query, or None for other queries."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        return None
    return f"count by ({match.group(2)}) ({match.group(1)})"


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[DashboardQuery]:
    """Every PromQL expression of a Grafana dashboard: panel targets and query variables."""
    name = str(dashboard.get("uid") or dashboard.get("title") or "?")
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                where = f"panel {panel.get('title', '?')!r} ref {target.get('refId', '?')}"
                yield DashboardQuery(name, where, expr)
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, Mapping):
            query = query.get("query")
        if isinstance(query, str) and query.strip():
            expr = label_values_as_promql(query) or query
            yield DashboardQuery(name, f"variable {variable.get('name', '?')!r}", expr)


def _panels(panels: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        # Collapsed rows keep their panels nested.
        yield from _panels(panel.get("panels", []))
