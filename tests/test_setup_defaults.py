"""The setup page's field defaults (contract §17) through its handlers, on Azurite, with Azure DevOps faked at the
HTTP boundary: a project, then a type, then the fields the type requires (`alwaysRequired`) with their allowed
values as selects, saved into the installation's `field_defaults`; a value the field does not allow and a forged
post save nothing."""

from __future__ import annotations

import html

import pytest

from shared.model.tracker import FieldDefault
from shared.store.tracker import TrackerStore
from tests.test_setup_page import ORG_URL, _connected, _get, _post, _text

pytestmark = pytest.mark.usefixtures("azurite")

TYPE_URL = f"{ORG_URL}Web/_apis/wit/workitemtypes/Task"


def _type_lists(ado) -> None:
    ado.get(f"{ORG_URL}Web/_apis/wit/workitemtypes", json={"count": 2, "value": [{"name": "Task"}, {"name": "Bug"}]})
    ado.get(f"{ORG_URL}Web/_apis/wit/workitemtypecategories", json={"count": 0, "value": []})
    fields = [
        {"referenceName": "System.Title", "name": "Title", "alwaysRequired": True},
        {"referenceName": "System.State", "name": "State", "alwaysRequired": False, "allowedValues": ["New"]},
        {"referenceName": "Custom.Team", "name": "Team", "alwaysRequired": True, "allowedValues": ["Payments", "Web"]},
        {"referenceName": "Custom.CostCode", "name": "Cost code", "alwaysRequired": True},
    ]
    ado.get(TYPE_URL, json={"name": "Task", "fields": fields})


def test_the_types_required_fields_are_offered_with_their_allowed_values_and_saved_as_defaults(
    registered_functions, ado
) -> None:
    org_id, instance, cookie, form_token = _connected(registered_functions, ado)
    _type_lists(ado)
    store = TrackerStore()
    sync = _text(_get(registered_functions, {"step": "sync"}, cookie))
    assert "No field defaults yet." in sync and 'action="/api/setup/defaults"' in sync

    types = _post(registered_functions, "defaults", {"form_token": form_token, "project": "Web"}, cookie)
    assert types.status_code == 200 and '<option value="Task">Task</option>' in _text(types)

    chosen = {"form_token": form_token, "project": "Web", "type": "Task"}
    fields = _post(registered_functions, "defaults", chosen, cookie)
    page = _text(fields)
    assert fields.status_code == 200, page
    assert "Custom.Team" in page and "Custom.CostCode" in page
    assert "System.Title" not in page and "System.State" not in page  # set by every create / not required
    assert '<select id="field_0" name="field_0">' in page and '<option value="Payments">' in page
    assert '<input id="field_1" name="field_1" value="">' in page  # any value goes: a text input
    [type_read] = [call.request for call in ado.calls if call.request.url.startswith(TYPE_URL)]
    assert "api-version=" in type_read.headers["Accept"]  # the server's version of the operation

    refused = _post(registered_functions, "defaults", {**chosen, "save": "1", "field_0": "Mobile"}, cookie)
    assert refused.status_code == 400
    assert "Mobile is not one of the values Custom.Team allows." in html.unescape(_text(refused))
    assert store.get_installation(instance, org_id).field_defaults == ()

    saved = _post(registered_functions, "defaults", {**chosen, "save": "1", "field_0": "Web", "field_1": ""}, cookie)
    assert saved.status_code == 200 and "Saved the field defaults for Task in Web" in _text(saved)
    assert store.get_installation(instance, org_id).field_defaults == (
        FieldDefault("Web", "Task", {"Custom.Team": "Web"}),
    )

    again = {**chosen, "save": "1", "field_0": "Payments", "field_1": "CC-7"}
    assert _post(registered_functions, "defaults", again, cookie).status_code == 200
    expected = FieldDefault("Web", "Task", {"Custom.Team": "Payments", "Custom.CostCode": "CC-7"})
    assert store.get_installation(instance, org_id).field_defaults == (expected,)  # replaced, not added
    shown = _text(_post(registered_functions, "defaults", chosen, cookie))
    assert '<option value="Payments" selected>' in shown and 'value="CC-7"' in shown  # the saved values offered

    forged = _post(registered_functions, "defaults", {**again, "field_0": "Web"}, cookie, origin="https://evil.example")
    assert forged.status_code == 403
    no_token = {key: value for key, value in again.items() if key != "form_token"}
    assert _post(registered_functions, "defaults", {**no_token, "field_0": "Web"}, cookie).status_code == 403
    assert store.get_installation(instance, org_id).field_defaults == (expected,)

    removed = _post(registered_functions, "defaults", {"form_token": form_token, "remove": "0"}, cookie)
    assert removed.status_code == 200 and "Removed the field defaults for Task in Web" in _text(removed)
    assert store.get_installation(instance, org_id).field_defaults == ()


def test_a_type_that_requires_nothing_more_and_an_unknown_type_say_so(registered_functions, ado) -> None:
    org_id, instance, cookie, form_token = _connected(registered_functions, ado)
    _type_lists(ado)
    title_only = [{"referenceName": "System.Title", "name": "Title", "alwaysRequired": True}]
    ado.get(f"{ORG_URL}Web/_apis/wit/workitemtypes/Bug", json={"name": "Bug", "fields": title_only})
    bug = _post(registered_functions, "defaults", {"form_token": form_token, "project": "Web", "type": "Bug"}, cookie)
    assert bug.status_code == 200 and "requires no field beyond what every create sets" in _text(bug)
    odd = {"form_token": form_token, "project": "Web", "type": "Epic", "save": "1", "field_0": "x"}
    unknown = _post(registered_functions, "defaults", odd, cookie)
    assert unknown.status_code == 400 and "not one of Web" in html.unescape(_text(unknown))
    assert TrackerStore().get_installation(instance, org_id).field_defaults == ()
