"""Installation settings (contract §6, §12.1): validated like the others, stored, and shown by GET."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest

from functions.admin_tracker import get_installation, put_installation
from tests.helpers import make_integration, new_id

pytestmark = pytest.mark.usefixtures("azurite")

BASE = {"sync_reverse_assignment": True, "sync_status_reverse": False}


def _call(handler, method: str, org: str, integration_id: str, body: Any = None) -> func.HttpResponse:
    route = {"org_id": org, "integration_id": integration_id}
    data = json.dumps(body).encode() if body is not None else b""
    return handler(
        func.HttpRequest(method, f"http://localhost/api/orgs/{org}/integrations/x", route_params=route, body=data)
    )


def _put(org: str, integration_id: str, body: Any) -> func.HttpResponse:
    return _call(put_installation, "PUT", org, integration_id, body)


def _get(org: str, integration_id: str) -> func.HttpResponse:
    return _call(get_installation, "GET", org, integration_id)


def test_two_way_settings_default_to_off_and_are_shown() -> None:
    integration, org = make_integration(), f"org-{new_id()[:8]}"
    assert _put(org, integration.id, BASE).status_code == 201
    view = json.loads(_get(org, integration.id).get_body())
    assert (view["sync_status_forward"], view["sync_forward_assignment"], view["sync_comments"]) == (False,) * 3
    assert view["state_rules"] == []


def test_two_way_settings_and_state_rules_round_trip() -> None:
    integration, org = make_integration(), f"org-{new_id()[:8]}"
    rules = [
        {"project": "Fabrikam", "type": "Bug", "resolved": "Closed", "unresolved": "Active"},
        {"resolved": "Done"},
    ]
    body = {**BASE, "sync_status_forward": True, "sync_forward_assignment": True, "sync_comments": True}
    assert _put(org, integration.id, {**body, "state_rules": rules}).status_code == 201
    view = json.loads(_get(org, integration.id).get_body())
    assert (view["sync_status_forward"], view["sync_forward_assignment"], view["sync_comments"]) == (True,) * 3
    assert view["state_rules"] == [rules[0], {"project": "*", "type": "*", "resolved": "Done"}]
    assert _put(org, integration.id, BASE).status_code == 200  # replaced: the two-way settings are off again
    assert json.loads(_get(org, integration.id).get_body())["sync_comments"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sync_comments": "yes"}, "sync_comments must be true or false."),
        ({"state_rules": {"resolved": "Closed"}}, "state_rules must be a list of at most 50 rules."),
        ({"state_rules": [{"project": "P"}]}, "state_rules[1] must name a resolved or an unresolved state."),
        ({"state_rules": [{"resolved": "Closed", "colour": "red"}]}, "Unknown field 'colour'"),
        ({"state_rules": [{"resolved": ""}]}, "resolved must be a non-empty string"),
        ({"state_rules": ["Closed"]}, "state_rules[1] must be an object"),
        ({"state_rules": [{"resolved": "x" * 129}]}, "at most 128 characters"),
    ],
)
def test_bad_two_way_settings_are_400_and_write_nothing(extra: dict, message: str) -> None:
    integration, org = make_integration(), f"org-{new_id()[:8]}"
    response = _put(org, integration.id, {**BASE, **extra})
    assert response.status_code == 400
    assert message in json.loads(response.get_body())["error"]
    assert _get(org, integration.id).status_code == 404


def test_get_of_an_installation_that_does_not_exist_is_404() -> None:
    integration = make_integration()
    assert _get(f"org-{new_id()[:8]}", integration.id).status_code == 404
    assert _get("bad/org", integration.id).status_code == 404
