"""Creating work items (contract §12.4): the type's form fields, the create call with its JSON Patch body, the
search for a work item by tag, and Azure DevOps' field errors read as the field they name.

Functions over an `AdoClient`, beside its own calls, so the client module stays one concern (and small).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from shared.ado.client import AdoClient, AdoRequestRejected

PATCH_HEADERS = {"Content-Type": "application/json-patch+json"}  # Azure DevOps answers 415 to plain JSON
CREATE_URL = "{base}{project}/_apis/wit/workitems/${type}"
TYPE_URL = "{base}{project}/_apis/wit/workitemtypes/{type}"
PROJECT_WIQL_URL = "{base}{project}/_apis/wit/wiql"
REPRO_STEPS = "Microsoft.VSTS.TCM.ReproSteps"
DESCRIPTION = "System.Description"

# What the field rule flags of a TF401320 rule error mean, in the words of the sentence we answer.
_FLAG_MEANINGS = (
    ("invalidempty", "needs a value"),
    ("required", "needs a value"),
    ("readonly", "cannot be set"),
    ("invalidtreename", "names an area or iteration that does not exist in the project"),
    ("invalididentity", "is not a known identity of the organization"),
    ("limitedtovalues", "is not one of the values the field allows"),
    ("invalidlistvalue", "is not one of the values the field allows"),
)
_RULE_FIELD = re.compile(r"Error for field ([^.]+)\.")  # TF401320's display name (the form Sentry parses)
_QUOTED_FIELD = re.compile(r"field '([^']+)'")  # TF401347 and the identity rule name theirs in quotes
_MISSING_FIELD = re.compile(r"TF51535: Cannot find field ([^\s.]+(?:\.[^\s.]+)*)")


def _segment(value: str) -> str:
    return quote(value, safe="")


def body_field(client: AdoClient, project: str, work_item_type: str) -> str:
    """Where the type's form shows the description: Repro Steps where the type has that field (Bug in Agile,
    Scrum and CMMI), else System.Description."""
    url = TYPE_URL.format(base=client.base_url, project=_segment(project), type=_segment(work_item_type))
    answer = client.call("GET", url)
    fields = answer.get("fields") if isinstance(answer, dict) else None
    names = {str(f.get("referenceName", "")).lower() for f in fields or [] if isinstance(f, dict)}
    return REPRO_STEPS if REPRO_STEPS.lower() in names else DESCRIPTION


def create_work_item(client: AdoClient, project: str, work_item_type: str, ops: list[dict[str, Any]]) -> dict:
    """POST the JSON Patch document; Azure DevOps answers the new work item (with `_links`)."""
    url = CREATE_URL.format(base=client.base_url, project=_segment(project), type=_segment(work_item_type))
    return client.call("POST", url, json=ops, headers=PATCH_HEADERS)


def find_by_tag(client: AdoClient, project: str, tag: str) -> list[int]:
    """Ids of the project's work items carrying `tag` (WIQL: `CONTAINS` on Tags matches one whole tag)."""
    wiql = (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        f"AND [System.Tags] CONTAINS '{tag.replace(chr(39), chr(39) * 2)}'"
    )
    url = PROJECT_WIQL_URL.format(base=client.base_url, project=_segment(project))
    answer = client.call("POST", url, json={"query": wiql})
    items = answer.get("workItems") if isinstance(answer, dict) else None
    return sorted(i["id"] for i in items or [] if isinstance(i, dict) and isinstance(i.get("id"), int))


def field_error(exc: AdoRequestRejected) -> str | None:
    """One sentence naming the field Azure DevOps refused (TF401320 rule errors, TF51535 unknown fields,
    TF401347 unknown areas and iterations); None when the refusal is not about one field."""
    text = str(exc)
    body = _body(exc)
    if "TF51535" in text:
        missing = _MISSING_FIELD.search(text)
        name = missing.group(1) if missing else "named in the request"
        return f"Azure DevOps has no field {name} in this organization."
    rules = (body.get("customProperties") or {}).get("RuleValidationErrors") if isinstance(body, dict) else None
    rule = rules[0] if isinstance(rules, list) and rules and isinstance(rules[0], dict) else {}
    name = rule.get("fieldReferenceName")
    if not isinstance(name, str) or not name:
        found = _QUOTED_FIELD.search(text) or _RULE_FIELD.search(text)
        if found is None:
            return None
        name = found.group(1)
    flags = f"{rule.get('fieldStatusFlags', '')} {text}".lower().replace(" ", "")
    meaning = next((words for flag, words in _FLAG_MEANINGS if flag in flags), "was refused by a rule of the type")
    if "tf401347" in flags:
        meaning = "names an area or iteration that does not exist in the project"
    return f"Azure DevOps refused the work item: field {name} {meaning}."


def _body(exc: AdoRequestRejected) -> Any:
    if exc.response is None:
        return None
    try:
        return exc.response.json()
    except ValueError:
        return None
