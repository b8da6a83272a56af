"""The outbound rules (shared.sync.forward) and the outbound message (shared.deliveries.outbound): pure tests."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.deliveries import InvalidDelivery
from shared.deliveries.outbound import read_outbound_message, to_outbound_message
from shared.model.changes import OutboundChange
from shared.model.tracker import RESOLVED, UNRESOLVED, Link, StateRule, TrackedIssue
from shared.sync.forward import WorkItemView, patch_for, target_state
from tests.fuzzing import fuzz_settings

# The default states of each process's main types, with their categories, as Azure DevOps defines them.
PROCESSES = {
    "Agile Bug": [("New", "Proposed"), ("Active", "InProgress"), ("Resolved", "Resolved"), ("Closed", "Completed")],
    "Scrum Product Backlog Item": [
        ("New", "Proposed"),
        ("Approved", "Proposed"),
        ("Committed", "InProgress"),
        ("Done", "Completed"),
        ("Removed", "Removed"),
    ],
    "CMMI Requirement": [
        ("Proposed", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
    ],
    "Basic Issue": [("To Do", "Proposed"), ("Doing", "InProgress"), ("Done", "Completed")],
}
# (process and type, not-done state it starts from, where resolve goes, done state, where unresolve goes)
EXPECTED = [
    ("Agile Bug", "Active", "Resolved", "Closed", "Active"),
    ("Scrum Product Backlog Item", "Committed", "Done", "Done", "Committed"),
    ("CMMI Requirement", "Proposed", "Resolved", "Closed", "Active"),
    ("Basic Issue", "To Do", "Done", "Done", "Doing"),
]


def _item(state: str | None, *, kind: str = "Bug", email: str | None = None, rev: int = 4) -> WorkItemView:
    return WorkItemView(rev, state, email, email is not None, kind, "Fabrikam")


def _done(states) -> frozenset[str]:
    return frozenset(name for name, category in states if category in ("Resolved", "Completed"))


@pytest.mark.parametrize(("process", "open_state", "resolved", "done_state", "reopened"), EXPECTED)
def test_default_states_per_process(process, open_state, resolved, done_state, reopened) -> None:
    states = PROCESSES[process]
    kind = process.split(" ", 1)[1]
    assert target_state(RESOLVED, _item(open_state, kind=kind), states, _done(states), []) == resolved
    assert target_state(UNRESOLVED, _item(done_state, kind=kind), states, _done(states), []) == reopened


def test_an_item_already_on_the_right_side_is_left_alone() -> None:
    states = PROCESSES["Agile Bug"]
    assert target_state(RESOLVED, _item("Closed"), states, _done(states), []) is None  # Closed never -> Resolved
    assert target_state(UNRESOLVED, _item("New"), states, _done(states), []) is None
    assert target_state(RESOLVED, _item(None), states, _done(states), []) is None


def test_the_first_matching_rule_wins_and_a_rule_without_that_direction_is_passed_over() -> None:
    states = PROCESSES["Agile Bug"]
    rules = [
        StateRule(project="Other", resolved="Nope"),
        StateRule(type="bug", unresolved="New"),  # matches, but says nothing about resolving
        StateRule(project="fabrikam", type="*", resolved="Closed"),
        StateRule(resolved="Later"),
    ]
    assert target_state(RESOLVED, _item("Active"), states, _done(states), rules) == "Closed"
    assert target_state(UNRESOLVED, _item("Resolved"), states, _done(states), rules) == "New"


def test_the_patch_has_only_what_differs_after_a_test_of_the_revision() -> None:
    issue = TrackedIssue("o", "I", "t", RESOLVED, assignee_email="dana@example.com", links=(Link("i", 7),))
    item = _item("Active", email="lee@example.com", rev=9)
    assert patch_for(issue, item, ["status", "assignee"], "Resolved") == [
        {"op": "test", "path": "/rev", "value": 9},
        {"op": "add", "path": "/fields/System.State", "value": "Resolved"},
        {"op": "add", "path": "/fields/System.AssignedTo", "value": "dana@example.com"},
    ]
    assert patch_for(issue, _item("Resolved", email="dana@example.com"), ["status", "assignee"], "Resolved") == []
    assert patch_for(issue, item, ["status"], None) == []  # nothing to move, and the assignee was not asked for
    unassigned = TrackedIssue("o", "I", "t", links=(Link("i", 7),))
    assert patch_for(unassigned, item, ["assignee"], None)[1] == {"op": "remove", "path": "/fields/System.AssignedTo"}
    assert patch_for(unassigned, _item("Active"), ["assignee"], None) == []


def test_the_outbound_message_round_trips() -> None:
    change = OutboundChange(
        "org-1", "I1", ("status", "assignee"), exclude=("abc|7",), after=(("abc|7", "status", 3),), only=("def|8",)
    )
    assert read_outbound_message(to_outbound_message(change, attempt=2)) == (change, 2)
    assert read_outbound_message(to_outbound_message(OutboundChange("o", "i", ("status",)))) == (
        OutboundChange("o", "i", ("status",)),
        0,
    )


@pytest.mark.parametrize(
    "message",
    [
        {"v": 1, "kind": "outbound", "org_id": "o", "issue_id": "i", "fields": []},
        {"v": 1, "kind": "outbound", "org_id": "o", "issue_id": "i", "fields": ["title"]},
        {"v": 1, "kind": "outbound", "org_id": "o/x", "issue_id": "i", "fields": ["status"]},
        {"v": 2, "kind": "outbound", "org_id": "o", "issue_id": "i", "fields": ["status"]},
        {"v": 1, "kind": "outbound", "org_id": "o", "issue_id": "i", "fields": ["status"], "exclude": ["x"]},
        {"v": 1, "kind": "outbound", "org_id": "o", "issue_id": "i", "fields": ["status"], "after": [["a|1", "s", 1]]},
        {"v": 1, "kind": "outbound", "org_id": "o", "issue_id": "i", "fields": ["status"], "attempt": True},
        {"v": 1, "kind": "outbound", "org_id": "o", "issue_id": "i", "fields": ["status"], "surprise": 1},
        {"v": 1, "integration_id": "x", "work_item_id": 1},  # a work item update is not an outbound change
    ],
)
def test_the_outbound_message_refuses_what_the_app_does_not_write(message) -> None:
    with pytest.raises(InvalidDelivery):
        read_outbound_message(json.dumps(message))


@fuzz_settings(300)
@given(st.one_of(st.text(max_size=200), st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10))))
def test_the_outbound_message_parser_raises_only_invalid_delivery(value) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        read_outbound_message(text)
    except InvalidDelivery:
        pass
