"""The setup page's step "Link stack frames to code" (contract §18) through its handlers, Azure DevOps faked by
`responses`: only a listed project and repository are accepted, a mapping is saved as the admin API saves it, and
one is removed; before connecting, the step asks to connect first."""

from __future__ import annotations

import pytest

from shared.store.code_mappings import CodeMappingStore
from tests.test_setup_page import ORG_URL, _connected, _get, _post, _text

pytestmark = pytest.mark.usefixtures("azurite")

REPOS = ORG_URL + "Web/_apis/git/repositories"


def test_a_mapping_names_a_listed_repository_and_can_be_removed(registered_functions, ado) -> None:
    org_id, instance, cookie, form_token = _connected(registered_functions, ado)
    ado.get(
        REPOS,
        json={
            "count": 2,
            "value": [{"id": "1", "name": "web"}, {"id": "2", "name": "retired-repo", "isDisabled": True}],
        },
    )
    page = _get(registered_functions, {"step": "code"}, cookie)
    assert page.status_code == 200 and "No code mappings yet." in _text(page)
    listed = _post(registered_functions, "code", {"form_token": form_token, "project": "Web"}, cookie)
    assert listed.status_code == 200
    assert '<option value="web">web</option>' in _text(listed) and "retired-repo" not in _text(listed)

    fields = {"form_token": form_token, "project": "Web", "repository": "gone", "branch": "main", "stack_root": "app/"}
    refused = _post(registered_functions, "code", fields, cookie)
    assert refused.status_code == 400 and "not one of Web" in _text(refused)
    other = _post(registered_functions, "code", {**fields, "project": "Elsewhere"}, cookie)
    assert other.status_code == 400 and "not one of the organization" in _text(other)
    bad_branch = _post(registered_functions, "code", {**fields, "repository": "web", "branch": "a..b"}, cookie)
    assert bad_branch.status_code == 400 and "branch must be a branch name" in _text(bad_branch)
    assert CodeMappingStore().get(org_id) == ()

    added = _post(registered_functions, "code", {**fields, "repository": "web", "source_root": "src"}, cookie)
    assert added.status_code == 200 and "Added: app/ links to Web/web on main." in _text(added)
    [saved] = CodeMappingStore().get(org_id)
    assert (saved.integration_id, saved.repository, saved.sentry_project, saved.source_root) == (
        instance, "web", "*", "src")  # fmt: skip
    removed = _post(registered_functions, "code", {"form_token": form_token, "remove": "0"}, cookie)
    assert removed.status_code == 200 and "Removed the mapping of app/." in _text(removed)
    assert CodeMappingStore().get(org_id) == ()
    assert _post(registered_functions, "code", {"form_token": form_token, "remove": "3"}, cookie).status_code == 400


def test_the_step_before_connecting_asks_to_connect_first(registered_functions) -> None:
    from tests.test_setup_page import _session

    cookie, form_token = _session(registered_functions, "org-code-first")
    page = _get(registered_functions, {"step": "code"}, cookie)
    assert "Connect an Azure DevOps organization first" in _text(page)
    posted = _post(registered_functions, "code", {"form_token": form_token, "project": "Web"}, cookie)
    assert posted.status_code == 409
