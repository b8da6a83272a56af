"""The Azure DevOps fake's write side, over HTTP with plain `requests` as the app will call it: JSON Patch
updates and creates, the Comments API, projects, types, states and classification nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools.fakes import FakeAzureDevOps
from tests.test_fake_ado import HOST_ID, Receiver, call, subscription_body

ORG = "contoso"
PAT = "pat-writer"
APP = "Sync App <sync-app@contoso.example>"  # whom the PAT acts as
PATCH_TYPE = {"Content-Type": "application/json-patch+json"}
PREVIEW = {"Accept": "application/json;api-version=7.1-preview.4"}


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_org(ORG, HOST_ID)
        server.add_pat(ORG, PAT, identity=APP)
        server.add_project(ORG, "proj-id", "Fabrikam", process="Agile")
        server.add_identity(ORG, "ann@contoso.example", "Ann Smith")
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def send(http: requests.Session, method: str, url: str, body: Any = None, **kwargs: Any) -> requests.Response:
    """A request with the writer's PAT; a list body goes as JSON Patch."""
    headers = {**kwargs.pop("headers", {})}
    if isinstance(body, list):
        headers = {**PATCH_TYPE, **headers}
        kwargs["data"] = json.dumps(body)
    elif body is not None:
        kwargs["json"] = body
    return call(http, method, url, token=PAT, headers=headers, **kwargs)


def item_url(fake: FakeAzureDevOps, work_item_id: int, project: str = "Fabrikam") -> str:
    return f"{fake.org_url(ORG)}{project}/_apis/wit/workitems/{work_item_id}"


def subscribe(fake: FakeAzureDevOps, http: requests.Session, url: str, event: str = "workitem.updated") -> str:
    body = {**subscription_body(url), "eventType": event}
    answer = send(http, "POST", f"{fake.org_url(ORG)}_apis/hooks/subscriptions", body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def error_of(answer: requests.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


# ------------------------------------------------------------------------------------------- updates


def test_a_patch_bumps_rev_records_the_caller_and_delivers_like_update_work_item(
    fake: FakeAzureDevOps, http: requests.Session, receiver: Receiver
) -> None:
    sub_id = subscribe(fake, http, receiver.url)
    fake.add_work_item(ORG, 5, {"System.Title": "Crash", "System.State": "New"})
    before = fake.work_item(ORG, 5)["fields"]["System.ChangedDate"]
    ops = [
        {"op": "test", "path": "/rev", "value": 1},
        {"op": "replace", "path": "/fields/System.State", "value": "active"},  # values are case-insensitive
        {"op": "add", "path": "/fields/System.AssignedTo", "value": "ann@contoso.example"},
    ]
    answer = send(http, "PATCH", item_url(fake, 5), ops)
    assert answer.status_code == 200, answer.text
    item = answer.json()
    assert (item["id"], item["rev"]) == (5, 2)
    assert item["fields"]["System.State"] == "Active"
    assert item["fields"]["System.AssignedTo"]["uniqueName"] == "ann@contoso.example"
    assert item["fields"]["System.ChangedBy"]["uniqueName"] == "sync-app@contoso.example"
    stored = fake.work_item(ORG, 5)["fields"]
    assert stored["System.AssignedTo"] == "Ann Smith <ann@contoso.example>"
    assert stored["System.ChangedDate"] > before

    (delivered,) = [json.loads(body) for _, body in receiver.received]
    assert (delivered["eventType"], delivered["subscriptionId"]) == ("workitem.updated", sub_id)
    resource = delivered["resource"]
    assert (resource["workItemId"], resource["rev"]) == (5, 2)
    assert resource["revisedBy"]["uniqueName"] == "sync-app@contoso.example"
    assert resource["fields"]["System.State"] == {"oldValue": "New", "newValue": "Active"}
    assert resource["fields"]["System.AssignedTo"] == {"newValue": "Ann Smith <ann@contoso.example>"}
    assert fake.updates(ORG, 5) == [resource]
    # The same payload shape as the set-up method's, which the app's receiver is tested against.
    assert set(delivered) == set(fake.update_work_item(ORG, 5, {"System.Title": "x"}, deliver=False))

    # Each successful patch is one revision; the project segment is optional, as for reads.
    again = send(
        http,
        "PATCH",
        f"{fake.org_url(ORG)}_apis/wit/workitems/5",
        [{"op": "remove", "path": "/fields/System.AssignedTo"}],
    )
    assert again.json()["rev"] == 4
    assert "System.AssignedTo" not in fake.work_item(ORG, 5)["fields"]
    assert len(receiver.received) == 2


def test_a_stale_rev_test_is_412_and_applies_nothing(
    fake: FakeAzureDevOps, http: requests.Session, receiver: Receiver
) -> None:
    subscribe(fake, http, receiver.url)
    fake.add_work_item(ORG, 6, {"System.Title": "Old"})
    fake.update_work_item(ORG, 6, {"System.Title": "Someone else's"}, deliver=False)
    ops = [
        {"op": "test", "path": "/rev", "value": 1},
        {"op": "replace", "path": "/fields/System.Title", "value": "Mine"},
    ]
    body = error_of(send(http, "PATCH", item_url(fake, 6), ops), 412)
    assert body["typeKey"] == "TestPatchOperationFailedException"
    assert body["message"].startswith("VS403351: Test Operation for path /rev failed, value 2 ")
    field_test = [{"op": "test", "path": "/fields/System.Title", "value": "Old"}, ops[1]]
    assert send(http, "PATCH", item_url(fake, 6), field_test).status_code == 412
    assert fake.work_item(ORG, 6)["rev"] == 2
    assert fake.work_item(ORG, 6)["fields"]["System.Title"] == "Someone else's"
    assert receiver.received == []


def test_rule_errors_name_the_field_and_change_nothing(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 7, {"System.Title": "Seven", "System.State": "New"})
    url = item_url(fake, 7)

    def refused(path: str, value: Any, status: int = 400, op: str = "add") -> dict[str, Any]:
        return error_of(send(http, "PATCH", url, [{"op": op, "path": path, "value": value}]), status)

    state = refused("/fields/System.State", "Removed")  # Agile's Bug has no Removed state
    assert state["message"].startswith("TF401320: Rule Error for field State. Error code: ")
    assert state["typeKey"] == "RuleValidationException"
    assert state["customProperties"]["RuleValidationErrors"][0]["fieldReferenceName"] == "System.State"
    nobody = refused("/fields/System.AssignedTo", "nobody@elsewhere.example")
    assert nobody["message"] == (
        "The identity value 'nobody@elsewhere.example' for field 'Assigned To' is an unknown identity."
    )
    assert refused("/fields/System.Title", "")["message"] == (
        "TF401320: Rule Error for field Title. Error code: Required, InvalidEmpty."
    )
    assert refused("/fields/Custom.Team", "Red")["message"] == "TF51535: Cannot find field Custom.Team."
    assert "ReadOnly" in refused("/fields/System.Rev", 9)["message"]
    assert refused("/fields/System.AreaPath", "Fabrikam\\Web")["message"] == (
        "TF401347: Invalid tree name given for work item 7, field 'System.AreaPath'."
    )
    assert refused("/id", 1)["message"].startswith("The path /id is not valid")
    assert fake.work_item(ORG, 7)["rev"] == 1

    # What was missing, added: the same patches now pass.
    fake.add_identity(ORG, "bo@contoso.example", "Bo Lee")
    fake.add_area(ORG, "proj-id", "Web\\UI")
    fake.add_field(ORG, "Custom.Team")
    for path, value in (
        ("/fields/System.AssignedTo", "Bo Lee"),  # an unambiguous display name is accepted too
        ("/fields/System.AreaPath", "Fabrikam\\Web\\UI"),
        ("/fields/Custom.Team", "Red"),
    ):
        assert send(http, "PATCH", url, [{"op": "add", "path": path, "value": value}]).status_code == 200
    assert fake.work_item(ORG, 7)["fields"]["System.AssignedTo"] == "Bo Lee <bo@contoso.example>"
    assert fake.work_item(ORG, 7)["rev"] == 4


def test_patch_protocol_flags_and_relations(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 8, {"System.Title": "Eight"})
    url = item_url(fake, 8)
    title = [{"op": "replace", "path": "/fields/System.Title", "value": "Preview"}]
    as_json = send(http, "PATCH", url, headers={"Content-Type": "application/json"}, data=json.dumps(title))
    assert as_json.status_code == 415
    assert "application/json-patch+json" in as_json.json()["message"]
    assert send(http, "PATCH", url, [{"op": "move", "path": "/fields/System.Title"}]).status_code == 400
    assert send(http, "PATCH", url, headers=PATCH_TYPE, data=b"{}").status_code == 400
    assert len(fake.take_violations()) == 2  # malformed JSON Patch, as the specification's checks record it
    assert error_of(send(http, "PATCH", item_url(fake, 99), title), 404)["message"].startswith("TF401232")

    preview = send(http, "PATCH", url, title, params={"validateOnly": "true"})
    assert preview.json()["fields"]["System.Title"] == "Preview"
    assert fake.work_item(ORG, 8)["fields"]["System.Title"] == "Eight"
    bypass = [{"op": "add", "path": "/fields/System.State", "value": "Imported"}]
    assert send(http, "PATCH", url, bypass).status_code == 400
    assert send(http, "PATCH", url, bypass, params={"bypassRules": "true"}).status_code == 200

    link = {"rel": "Hyperlink", "url": "https://tracker.example/issues/1", "attributes": {"comment": "Tracked"}}
    linked = send(http, "PATCH", url, [{"op": "add", "path": "/relations/-", "value": link}])
    assert linked.json()["relations"] == [link]
    assert linked.json()["fields"]["System.HyperLinkCount"] == 1
    read = send(http, "GET", url, params={"$expand": "relations"}).json()
    assert read["relations"] == [link]
    bad_rel = {"op": "add", "path": "/relations/-", "value": {"rel": "Nope", "url": "x"}}
    assert send(http, "PATCH", url, [bad_rel]).status_code == 400
    assert (
        send(http, "PATCH", url, [{"op": "remove", "path": "/relations/0"}]).json()["fields"]["System.HyperLinkCount"]
        == 0
    )


# ------------------------------------------------------------------------------------------- creates


def test_create_by_type_answers_the_new_item_and_fires_only_created_deliveries(
    fake: FakeAzureDevOps, http: requests.Session, receiver: Receiver
) -> None:
    updated = Receiver()
    try:
        subscribe(fake, http, updated.url)  # what the app subscribes to: must not hear of creates
        created_sub = subscribe(fake, http, receiver.url, "workitem.created")
        fake.add_work_item(ORG, 40, {})
        url = f"{fake.org_url(ORG)}Fabrikam/_apis/wit/workitems/$Bug"
        ops = [
            {"op": "add", "path": "/fields/System.Title", "value": "Crash on save"},
            {"op": "add", "path": "/fields/Microsoft.VSTS.TCM.ReproSteps", "value": "<p>Click save</p>"},
            {"op": "add", "path": "/fields/System.Tags", "value": "sentry; crash"},
            {"op": "add", "path": "/relations/-", "value": {"rel": "Hyperlink", "url": "https://t.example/1"}},
        ]
        answer = send(http, "POST", url, ops)
        assert answer.status_code == 200, answer.text
        item = answer.json()
        assert (item["id"], item["rev"]) == (41, 1)
        fields = item["fields"]
        assert (fields["System.WorkItemType"], fields["System.State"], fields["System.AreaPath"]) == (
            "Bug",
            "New",
            "Fabrikam",
        )
        assert fields["System.CreatedBy"]["uniqueName"] == "sync-app@contoso.example"
        assert item["relations"][0]["rel"] == "Hyperlink"
        assert item["_links"]["html"]["href"].endswith("&id=41")
        assert item["url"].endswith("/_apis/wit/workItems/41")
        assert send(http, "GET", item_url(fake, 41)).json()["rev"] == 1

        (delivered,) = [json.loads(body) for _, body in receiver.received]
        assert (delivered["eventType"], delivered["subscriptionId"]) == ("workitem.created", created_sub)
        assert (delivered["resource"]["id"], delivered["resource"]["rev"]) == (41, 1)
        assert updated.received == []
    finally:
        updated.stop()

    missing = error_of(send(http, "POST", url, ops[1:]), 400)
    assert missing["message"] == "TF401320: Rule Error for field Title. Error code: Required, InvalidEmpty."
    nope = error_of(send(http, "POST", f"{fake.org_url(ORG)}Fabrikam/_apis/wit/workitems/$Nope", ops), 404)
    assert nope["message"] == "Work item type Nope does not exist in project Fabrikam."
    assert send(http, "POST", f"{fake.org_url(ORG)}Fabrikam/_apis/wit/workitems/Bug", ops).status_code == 404
    assert [v.split(": ", 1)[1] for v in fake.take_violations()] == ["no operation of the specification on services"]
    fake.set_type_disabled(ORG, "proj-id", "Bug")
    assert send(http, "POST", url, ops).status_code == 400
    story = send(http, "POST", f"{fake.org_url(ORG)}Fabrikam/_apis/wit/workitems/$User%20Story", ops[:1])
    assert story.json()["fields"]["System.WorkItemType"] == "User Story"
    assert sorted(fake.work_item(ORG, i)["id"] for i in (40, 41, 42)) == [40, 41, 42]


# ------------------------------------------------------------------------------------------ comments


def test_comments_add_edit_delete_and_their_revisions(
    fake: FakeAzureDevOps, http: requests.Session, receiver: Receiver
) -> None:
    subscribe(fake, http, receiver.url)
    commented = Receiver()
    try:
        subscribe(fake, http, commented.url, "workitem.commented")
        fake.add_work_item(ORG, 9, {"System.Title": "Nine"})
        url = f"{item_url(fake, 9)}/comments"
        refused = send(http, "POST", url, {"text": "hi"}, params={"format": "markdown"})
        assert error_of(refused, 400)["typeKey"] == "VssInvalidPreviewVersionException"  # 7.1 without -preview
        assert len(fake.take_violations()) == 1

        added = send(http, "POST", url, {"text": "**Fixed** in 1.2"}, params={"format": "markdown"}, headers=PREVIEW)
        assert added.status_code == 200, added.text
        comment = added.json()
        assert (comment["workItemId"], comment["version"], comment["format"]) == (9, 1, "markdown")
        assert comment["text"] == "**Fixed** in 1.2"
        assert comment["renderedText"].startswith("<p>")
        assert comment["createdBy"]["uniqueName"] == "sync-app@contoso.example"
        assert fake.work_item(ORG, 9)["rev"] == 2
        assert fake.work_item(ORG, 9)["fields"]["System.CommentCount"] == 1
        (update,) = [json.loads(body) for _, body in receiver.received]
        assert update["resource"]["fields"]["System.CommentCount"] == {"newValue": 1}
        (event,) = [json.loads(body) for _, body in commented.received]
        assert event["eventType"] == "workitem.commented"
        assert event["resource"]["commentVersionRef"]["commentId"] == comment["id"]
    finally:
        commented.stop()

    one = f"{url}/{comment['id']}"
    edited = send(http, "PATCH", one, {"text": "Fixed in 1.3"}, params={"format": "markdown"}, headers=PREVIEW)
    assert (edited.json()["version"], edited.json()["text"]) == (2, "Fixed in 1.3")
    assert fake.work_item(ORG, 9)["rev"] == 2  # an edit changes no field
    second = send(http, "POST", url, {"text": "<b>html</b>"}, headers=PREVIEW).json()
    assert second["id"] != comment["id"]
    listed = send(http, "GET", url, headers=PREVIEW).json()
    assert (listed["totalCount"], [c["id"] for c in listed["comments"]]) == (2, [comment["id"], second["id"]])

    assert send(http, "DELETE", one, headers=PREVIEW).status_code == 200
    assert fake.work_item(ORG, 9)["fields"]["System.CommentCount"] == 1
    assert [c["id"] for c in send(http, "GET", url, headers=PREVIEW).json()["comments"]] == [second["id"]]
    with_deleted = send(http, "GET", url, headers=PREVIEW, params={"includeDeleted": "true"}).json()
    assert [c["isDeleted"] for c in with_deleted["comments"]] == [True, False]
    assert send(http, "GET", one, headers=PREVIEW).status_code == 404
    assert send(http, "PATCH", one, {"text": "again"}, headers=PREVIEW).status_code == 404
    assert [c["isDeleted"] for c in fake.comments(ORG, 9)] == [True, False]

    fake.add_project(ORG, "other-id", "Other")
    assert send(http, "GET", f"{item_url(fake, 9, 'Other')}/comments", headers=PREVIEW).status_code == 404
    assert send(http, "POST", url, {"text": " "}, headers=PREVIEW).status_code == 400


def test_system_history_in_a_patch_becomes_a_comment(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 10, {"System.Title": "Ten"})
    ops = [{"op": "add", "path": "/fields/System.History", "value": "<p>Linked from the tracker</p>"}]
    assert send(http, "PATCH", item_url(fake, 10), ops).json()["fields"]["System.CommentCount"] == 1
    (comment,) = fake.comments(ORG, 10)
    assert (comment["format"], comment["text"]) == ("html", "<p>Linked from the tracker</p>")


# ---------------------------------------------------------------------------- projects, types, nodes


def test_projects_types_and_hidden_categories(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_project(ORG, "scrum-id", "Scrummy", process="Scrum")
    projects = send(http, "GET", f"{fake.org_url(ORG)}_apis/projects").json()
    assert [(p["id"], p["name"]) for p in projects["value"]] == [("proj-id", "Fabrikam"), ("scrum-id", "Scrummy")]
    one = send(http, "GET", f"{fake.org_url(ORG)}_apis/projects/Scrummy", params={"includeCapabilities": "true"})
    assert one.json()["capabilities"]["processTemplate"]["templateName"] == "Scrum"

    types = {
        t["name"]: t for t in send(http, "GET", f"{fake.org_url(ORG)}Fabrikam/_apis/wit/workitemtypes").json()["value"]
    }
    assert {"Bug", "User Story", "Task", "Epic", "Feature", "Code Review Request", "Shared Steps"} <= set(types)
    assert types["Bug"]["referenceName"] == "Microsoft.VSTS.WorkItemTypes.Bug"
    bug_fields = {f["referenceName"] for f in types["Bug"]["fields"]}
    assert "Microsoft.VSTS.TCM.ReproSteps" in bug_fields and "System.Description" not in bug_fields
    assert "System.Description" in {f["referenceName"] for f in types["User Story"]["fields"]}
    assert not types["Bug"]["isDisabled"]
    fake.set_type_disabled(ORG, "proj-id", "Issue")
    issue = send(http, "GET", f"{fake.org_url(ORG)}Fabrikam/_apis/wit/workitemtypes/issue").json()
    assert (issue["name"], issue["isDisabled"]) == ("Issue", True)

    categories = send(http, "GET", f"{fake.org_url(ORG)}Fabrikam/_apis/wit/workitemtypecategories").json()["value"]
    by_ref = {c["referenceName"]: [t["name"] for t in c["workItemTypes"]] for c in categories}
    assert {"Code Review Request", "Shared Steps", "Test Plan"} <= set(by_ref["Microsoft.HiddenCategory"])
    assert "Bug" not in by_ref["Microsoft.HiddenCategory"]
    assert by_ref["Microsoft.RequirementCategory"] == ["User Story"]
    assert send(http, "GET", f"{fake.org_url(ORG)}Nowhere/_apis/wit/workitemtypes").status_code == 404
    with pytest.raises(ValueError, match="process"):
        fake.add_project(ORG, "p3", "Third", process="Waterfall")


@pytest.mark.parametrize(
    ("process", "wit", "states"),
    [
        ("Agile", "Bug", "New:Proposed Active:InProgress Resolved:Resolved Closed:Completed"),
        ("Agile", "User Story", "New:Proposed Active:InProgress Resolved:Resolved Closed:Completed Removed:Removed"),
        (
            "Scrum",
            "Product Backlog Item",
            "New:Proposed Approved:Proposed Committed:InProgress Done:Completed Removed:Removed",
        ),
        ("Scrum", "Bug", "New:Proposed Approved:Proposed Committed:InProgress Done:Completed Removed:Removed"),
        ("CMMI", "Bug", "Proposed:Proposed Active:InProgress Resolved:Resolved Closed:Completed"),
        ("CMMI", "Requirement", "Proposed:Proposed Active:InProgress Resolved:Resolved Closed:Completed"),
        ("Basic", "Issue", "To%20Do:Proposed Doing:InProgress Done:Completed"),
        ("Basic", "Epic", "To%20Do:Proposed Doing:InProgress Done:Completed"),
        ("Basic", "Task", "To%20Do:Proposed Doing:InProgress Done:Completed"),
    ],
)
def test_default_states_per_process(
    fake: FakeAzureDevOps, http: requests.Session, process: str, wit: str, states: str
) -> None:
    fake.add_project(ORG, "p2", "Second", process=process)
    answer = send(http, "GET", f"{fake.org_url(ORG)}Second/_apis/wit/workitemtypes/{wit}/states")
    assert answer.status_code == 200, answer.text
    expected = [tuple(pair.replace("%20", " ").split(":")) for pair in states.split()]
    assert [(s["name"], s["category"]) for s in answer.json()["value"]] == expected
    # A state of the process is accepted on create; one of another process is not.
    url = f"{fake.org_url(ORG)}Second/_apis/wit/workitems/${wit}"
    title = {"op": "add", "path": "/fields/System.Title", "value": "t"}
    last = {"op": "add", "path": "/fields/System.State", "value": expected[-1][0]}
    assert send(http, "POST", url, [title, last]).json()["fields"]["System.State"] == expected[-1][0]
    other = {"op": "add", "path": "/fields/System.State", "value": "Committed" if process != "Scrum" else "Active"}
    assert send(http, "POST", url, [title, other]).status_code == 400


def test_classification_nodes_to_a_depth(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_area(ORG, "proj-id", "Web\\UI")
    fake.add_area(ORG, "proj-id", "Fabrikam\\Mobile")  # the project's name may lead
    fake.add_iteration(
        ORG, "proj-id", "Release 1\\Sprint 1", start="2026-01-05T00:00:00Z", finish="2026-01-16T00:00:00Z"
    )
    base = f"{fake.org_url(ORG)}Fabrikam/_apis/wit/classificationnodes"
    root = send(http, "GET", f"{base}/areas").json()
    assert (root["name"], root["structureType"], root["path"], root["hasChildren"]) == (
        "Fabrikam",
        "area",
        "\\Fabrikam\\Area",
        True,
    )
    assert "children" not in root
    deep = send(http, "GET", f"{base}/Areas", params={"$depth": "2"}).json()
    assert [c["name"] for c in deep["children"]] == ["Web", "Mobile"]
    assert deep["children"][0]["children"][0]["path"] == "\\Fabrikam\\Area\\Web\\UI"
    iterations = send(http, "GET", f"{base}/iterations", params={"$depth": "5"}).json()
    sprint = iterations["children"][0]["children"][0]
    assert (sprint["path"], sprint["attributes"]["startDate"]) == (
        "\\Fabrikam\\Iteration\\Release 1\\Sprint 1",
        "2026-01-05T00:00:00Z",
    )
    both = send(http, "GET", base).json()
    assert [n["structureType"] for n in both["value"]] == ["area", "iteration"]
    assert send(http, "GET", f"{base}/teams").status_code == 400
    assert send(http, "GET", f"{base}/areas", params={"$depth": "x"}).status_code == 400


# ------------------------------------------------------------------------------ credentials, faults


def test_an_oauth_token_acts_as_its_refresh_tokens_identity(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_refresh_token(ORG, "rt-1", identity="Ann Smith <ann@contoso.example>")
    form = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": fake.client_secret,
        "grant_type": "refresh_token",
        "assertion": "rt-1",
    }
    token = http.post(f"{fake.base_url}/oauth2/token", data=form, timeout=5).json()["access_token"]
    fake.add_work_item(ORG, 11, {"System.Title": "Eleven"})
    ops = [{"op": "replace", "path": "/fields/System.Title", "value": "By Ann"}]
    headers = {**PATCH_TYPE, "Authorization": f"Bearer {token}"}
    answer = call(http, "PATCH", item_url(fake, 11), headers=headers, data=json.dumps(ops))
    assert answer.json()["fields"]["System.ChangedBy"]["uniqueName"] == "ann@contoso.example"
    # A PAT given no identity acts as the fake's default member, still a real identity of the organization.
    fake.add_pat(ORG, "anonymous-pat")
    rename = [{"op": "replace", "path": "/fields/System.Title", "value": "By the app"}]
    plain = call(http, "PATCH", item_url(fake, 11), token="anonymous-pat", headers=PATCH_TYPE, data=json.dumps(rename))
    assert plain.json()["fields"]["System.ChangedBy"]["uniqueName"] == "integration@fabrikam.example"
    refused = call(http, "PATCH", item_url(fake, 11), token="wrong", headers=PATCH_TYPE, data=json.dumps(rename))
    assert refused.status_code == 401


def test_faults_apply_to_the_write_routes(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 12, {"System.Title": "Twelve"})
    ops = [{"op": "replace", "path": "/fields/System.Title", "value": "Retried"}]
    fake.fail_next("PATCH", r"/_apis/wit/workitems/12$", 429, headers={"Retry-After": "2"})
    fake.fail_next("POST", r"/comments$", 503)
    throttled = send(http, "PATCH", item_url(fake, 12), ops)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert fake.work_item(ORG, 12)["rev"] == 1  # a fault answers instead: nothing applied
    assert send(http, "PATCH", item_url(fake, 12), ops).json()["rev"] == 2
    assert send(http, "POST", f"{item_url(fake, 12)}/comments", {"text": "x"}, headers=PREVIEW).status_code == 503
    assert fake.comments(ORG, 12) == []
    assert send(http, "POST", f"{item_url(fake, 12)}/comments", {"text": "x"}, headers=PREVIEW).status_code == 200
    assert fake.count("PATCH", r"/workitems/12$") == 2
