"""WIQL: the subset of queries the app sends (SELECT ... FROM WorkItems [WHERE ...] [ORDER BY ...]), parsed
and evaluated against the fake's work items, with Azure DevOps' answers to what it does not accept."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.data import Org, Project, Store, WorkItem
from devtools.fakes.ado.protocol import Reject, arg, error, iso_ms, json_response, parse_iso, read_json

COLUMN_NAMES = {
    "system.id": ("System.Id", "ID"),
    "system.title": ("System.Title", "Title"),
    "system.state": ("System.State", "State"),
    "system.rev": ("System.Rev", "Rev"),
    "system.changeddate": ("System.ChangedDate", "Changed Date"),
    "system.createddate": ("System.CreatedDate", "Created Date"),
    "system.assignedto": ("System.AssignedTo", "Assigned To"),
    "system.workitemtype": ("System.WorkItemType", "Work Item Type"),
    "system.teamproject": ("System.TeamProject", "Team Project"),
}
QUERY_ERROR = "WorkItemTrackingQueryException"

_WIQL_RE = re.compile(
    r"^\s*SELECT\s+(?P<columns>.+?)\s+FROM\s+WorkItems\b(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_WIQL_FIELD_RE = re.compile(r"\[([\w.]+)\]")
_WIQL_ID_IN_RE = re.compile(r"\[System\.Id\]\s+IN\s*\((?P<ids>[^()]*)\)", re.IGNORECASE)
_WIQL_ID_CMP_RE = re.compile(r"\[System\.Id\]\s*(?P<op><>|>=|<=|=|>|<)\s*(?P<value>\d+)", re.IGNORECASE)
_WIQL_DATE_RE = re.compile(
    r"\[(?P<field>System\.ChangedDate|System\.CreatedDate)\]\s*(?P<op><>|>=|<=|=|>|<)\s*'(?P<value>[^']*)'",
    re.IGNORECASE,
)
_WIQL_EQ_RE = re.compile(
    r"\[(?P<field>[\w.]+)\]\s*(?P<op><>|=)\s*(?:'(?P<value>(?:[^']|'')*)'|(?P<macro>@project))", re.IGNORECASE
)
# Tags take CONTAINS / NOT CONTAINS, each matching one whole tag ("Query fields, operators, and macros in Azure
# Boards": Tags support Contains and Does Not Contain); tags are compared without case.
_WIQL_TAGS_RE = re.compile(r"\[System\.Tags\]\s+(?P<not>NOT\s+)?CONTAINS\s+'(?P<value>(?:[^']|'')*)'", re.IGNORECASE)
_WIQL_ORDER_RE = re.compile(r"\[(?P<field>[\w.]+)\]\s*(?P<dir>ASC|DESC)?", re.IGNORECASE)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _tags_of(item: WorkItem) -> set[str]:
    return {t.strip().lower() for t in str(item.fields.get("System.Tags") or "").split(";") if t.strip()}


def strip_parens(text: str) -> str:
    """Remove parentheses that wrap the whole condition: '(a IN (1))' -> 'a IN (1)'."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for index, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and index < len(text) - 1:
                return text  # the first '(' closes before the end: not a wrapping pair
        text = text[1:-1].strip()
    return text


class Wiql(Store):
    """Mixin of FakeAzureDevOps: the WIQL endpoint."""

    def _handle_wiql(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        body = read_json(request)
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return error(400, 'The request body must be {"query": "<WIQL>"}.')
        time_precision = (arg(request, "timePrecision") or "").lower() == "true"
        top = arg(request, "$top")
        match = _WIQL_RE.match(query)
        if match is None:
            return error(400, f"The query could not be parsed: {query}", QUERY_ERROR)
        columns = []
        for column in (c.strip() for c in match.group("columns").split(",")):
            name = _WIQL_FIELD_RE.fullmatch(column)
            if name is None:
                return error(400, f"Expecting a field name in brackets. The error is caused by «{column}».")
            ref, label = COLUMN_NAMES.get(name.group(1).lower(), (name.group(1), name.group(1)))
            columns.append(
                {"referenceName": ref, "name": label, "url": f"{self.org_url(org.name)}_apis/wit/fields/{ref}"}
            )
        predicates = self._wiql_predicates(match.group("where"), project, time_precision)
        with self._lock:
            items = [i for i in org.work_items.values() if all(p(i) for p in predicates)]
            sort_columns: list[dict[str, Any]] = []
            items.sort(key=lambda i: i.id)
            if match.group("order"):
                order = _WIQL_ORDER_RE.match(match.group("order").strip())
                if order is None:
                    return error(400, f"The ORDER BY clause could not be parsed: {match.group('order')}")
                key_name = order.group("field")
                descending = (order.group("dir") or "").lower() == "desc"
                if key_name.lower() != "system.id":
                    items.sort(key=lambda i: str(i.fields.get(key_name, "")))
                if descending:
                    items.reverse()
                ref, label = COLUMN_NAMES.get(key_name.lower(), (key_name, key_name))
                sort_columns.append({"field": {"referenceName": ref, "name": label}, "descending": descending})
            if top is not None and top.isdigit():
                items = items[: int(top)]
            work_items = [{"id": i.id, "url": f"{self.org_url(org.name)}_apis/wit/workItems/{i.id}"} for i in items]
        result: dict[str, Any] = {
            "queryType": "flat",
            "queryResultType": "workItem",
            "asOf": iso_ms(datetime.now(UTC)),
            "columns": columns,
            "workItems": work_items,
        }
        if sort_columns:
            result["sortColumns"] = sort_columns
        return json_response(result)

    def _wiql_predicates(
        self, where: str | None, project: Project | None, time_precision: bool
    ) -> list[Callable[[WorkItem], bool]]:
        """The WHERE clause as predicates: conditions joined by AND (OR and nesting are not supported)."""
        if not where:
            return []
        if re.search(r"\bOR\b", re.sub(r"'(?:[^']|'')*'", "''", where), re.IGNORECASE):
            raise Reject(error(400, "The fake's WIQL does not support OR.", QUERY_ERROR))
        predicates: list[Callable[[WorkItem], bool]] = []
        for raw in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
            condition = strip_parens(raw)
            predicates.append(self._wiql_predicate(condition, project, time_precision))
        return predicates

    def _wiql_predicate(
        self, condition: str, project: Project | None, time_precision: bool
    ) -> Callable[[WorkItem], bool]:
        if m := _WIQL_ID_IN_RE.fullmatch(condition):
            try:
                ids = {int(part) for part in m.group("ids").split(",")}
            except ValueError:
                raise Reject(
                    error(400, f"Expecting a list of numbers. The error is caused by «{condition}».")
                ) from None
            return lambda item: item.id in ids
        if m := _WIQL_ID_CMP_RE.fullmatch(condition):
            compare, value = _COMPARE[m.group("op")], int(m.group("value"))
            return lambda item: compare(item.id, value)
        if m := _WIQL_DATE_RE.fullmatch(condition):
            return self._wiql_date_predicate(m, condition, time_precision)
        if m := _WIQL_TAGS_RE.fullmatch(condition):
            wanted, negated = m.group("value").replace("''", "'").strip().lower(), bool(m.group("not"))
            return lambda item: (wanted in _tags_of(item)) != negated
        if m := _WIQL_EQ_RE.fullmatch(condition):
            field_name = m.group("field")
            if m.group("macro"):
                if project is None:
                    raise Reject(error(400, "The @project macro needs a project in the request URL."))
                expected = project.name.lower()
            else:
                expected = m.group("value").replace("''", "'").lower()
            equal = m.group("op") == "="
            return lambda item: (str(item.fields.get(field_name, "")).lower() == expected) == equal
        raise Reject(error(400, f"The fake cannot evaluate this WIQL condition: «{condition}».", QUERY_ERROR))

    @staticmethod
    def _wiql_date_predicate(m: re.Match[str], condition: str, time_precision: bool) -> Callable[[WorkItem], bool]:
        text = m.group("value").strip()
        has_time = re.search(r"[T ]\d{1,2}:\d{2}", text) is not None
        if has_time and not time_precision:
            # Azure DevOps' answer when a time is given without ?timePrecision=true (real 400).
            raise Reject(
                error(
                    400,
                    "You cannot supply a time with the date when running a query using date precision. "
                    f"The error is caused by «{condition}».",
                    QUERY_ERROR,
                )
            )
        try:
            literal = parse_iso(text) if "-" in text else datetime.strptime(text, "%m/%d/%Y").replace(tzinfo=UTC)
        except ValueError:
            raise Reject(error(400, f"Expecting a date. The error is caused by «{condition}».", QUERY_ERROR)) from None
        compare, field_name = _COMPARE[m.group("op")], m.group("field")

        def predicate(item: WorkItem) -> bool:
            value = next((v for k, v in item.fields.items() if k.lower() == field_name.lower()), None)
            if not isinstance(value, str):
                return False
            moment = parse_iso(value)
            if time_precision:
                return compare(moment, literal)
            lhs: date = moment.date()  # date precision: only the day counts
            return compare(lhs, literal.date())

        return predicate
