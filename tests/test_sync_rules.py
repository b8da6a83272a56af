"""Tests of shared.sync.rules: done states, the status action, revision ordering and member matching (§5.2-5.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.deliveries import StateChange
from shared.sync.rules import (
    done_states_from_categories,
    is_done,
    is_newer,
    status_action,
)
from tests.fuzzing import fuzz_settings

PROPERTY = fuzz_settings(400)

# The states of Azure DevOps' Agile "Bug", as GET .../workitemtypes/Bug/states returns them, plus a custom one.
BUG_STATES = [
    {"name": "New", "color": "b2b2b2", "category": "Proposed"},
    {"name": "Active", "color": "007acc", "category": "InProgress"},
    {"name": "CustomState", "color": "007acc", "category": "InProgress"},
    {"name": "Resolved", "color": "ff9d00", "category": "Resolved"},
    {"name": "Closed", "color": "339933", "category": "Completed"},
    {"name": "Removed", "color": "ffffff", "category": "Removed"},
]
DONE = done_states_from_categories(BUG_STATES)


# --- done states ---------------------------------------------------------------------------------------------------


def test_done_states_are_the_resolved_and_completed_categories() -> None:
    assert {"Resolved", "Closed"} == DONE  # "Removed" is not done


def test_resolve_states_of_the_installation_are_added() -> None:
    assert done_states_from_categories(BUG_STATES, ["Removed", "Approved"]) == {
        "Resolved",
        "Closed",
        "Removed",
        "Approved",
    }
    assert done_states_from_categories([], ("Done",)) == {"Done"}
    assert done_states_from_categories([], "Done") == {"Done"}  # a bare string is one name, not letters
    assert done_states_from_categories([], ["", "  ", None, 5]) == frozenset()  # type: ignore[list-item]


def test_categories_match_whatever_their_case() -> None:
    states = [{"name": "Fertig", "category": "completed"}, {"name": "Erledigt", "category": "RESOLVED "}]
    assert done_states_from_categories(states) == {"Fertig", "Erledigt"}


@pytest.mark.parametrize(
    "entry",
    [
        None,
        "Resolved",
        ["Resolved", "Resolved"],
        {},
        {"name": "Resolved"},
        {"category": "Resolved"},
        {"name": None, "category": "Resolved"},
        {"name": 5, "category": "Resolved"},
        {"name": "", "category": "Resolved"},
        {"name": "Resolved", "category": None},
        {"name": "Resolved", "category": ["Resolved"]},
        {"name": "Resolved", "category": "Closed"},  # not an Azure DevOps category (Sentry lists it anyway)
    ],
)
def test_malformed_state_entries_are_ignored(entry: object) -> None:
    states = [entry, {"name": "Done", "category": "Completed"}]
    assert done_states_from_categories(states) == {"Done"}  # type: ignore[arg-type]


def test_done_states_accept_any_iterable_of_mappings() -> None:
    assert done_states_from_categories(iter(BUG_STATES)) == DONE


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("Resolved", True),
        ("resolved", True),
        ("CLOSED", True),
        (" Closed ", True),
        ("Active", False),
        ("Removed", False),
        ("", False),
        ("Resolve", False),
    ],
)
def test_is_done(state: str, expected: bool) -> None:
    assert is_done(state, DONE) is expected


def test_is_done_edge_cases() -> None:
    assert is_done("Done", ["done"])
    assert is_done("Done", "Done")  # a bare string is one name
    assert not is_done("D", "Done")
    assert not is_done("Done", [])
    assert not is_done(None, DONE)  # type: ignore[arg-type]
    assert is_done("Straße", ["STRASSE"])  # casefold, not just lower()


# --- status_action ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Active", "Resolved", "resolve"),
        ("New", "Closed", "resolve"),
        ("Removed", "Closed", "resolve"),
        ("CustomState", "Resolved", "resolve"),
        ("Resolved", "Active", "unresolve"),
        ("Closed", "New", "unresolve"),
        ("Closed", "Removed", "unresolve"),
        ("Resolved", "Closed", None),  # done -> done
        ("Closed", "Resolved", None),
        ("New", "Active", None),  # not-done -> not-done: Sentry unresolves here, we do not
        ("Active", "CustomState", None),
        ("Active", "Removed", None),
        ("Active", "Active", None),
        (None, "New", None),  # a new work item
        (None, "Resolved", None),  # created straight into a done state: still a new work item
        ("Active", None, None),  # no new value
        (None, None, None),
        ("", "Resolved", None),  # blank means absent
        ("Active", " ", None),
        ("active", "RESOLVED", "resolve"),  # names match whatever their case
    ],
)
def test_status_action_truth_table(old: str | None, new: str | None, expected: str | None) -> None:
    assert status_action(StateChange(old, new), DONE) == expected


def test_status_action_uses_the_installations_resolve_states() -> None:
    done = done_states_from_categories(BUG_STATES, ["CustomState"])
    assert status_action(StateChange("Active", "CustomState"), done) == "resolve"
    assert status_action(StateChange("CustomState", "Resolved"), done) is None


def test_no_done_states_never_resolves_or_unresolves() -> None:
    # Sentry unresolves everything when the states call fails; here an empty set simply changes nothing.
    for old, new in [("Active", "Resolved"), ("Resolved", "Active"), ("New", "Active")]:
        assert status_action(StateChange(old, new), frozenset()) is None


state_names = st.sampled_from(["New", "Active", "CustomState", "Resolved", "Closed", "Removed", "resolved", ""])


@PROPERTY
@given(st.none() | state_names | st.text(max_size=8), st.none() | state_names | st.text(max_size=8))
def test_status_action_matches_its_definition(old: str | None, new: str | None) -> None:
    action = status_action(StateChange(old, new), DONE)
    if not old or not old.strip() or not new or not new.strip():
        assert action is None
    elif is_done(new, DONE) and not is_done(old, DONE):
        assert action == "resolve"
    elif is_done(old, DONE) and not is_done(new, DONE):
        assert action == "unresolve"
    else:
        assert action is None
    # Reversing a change that did something does the opposite.
    if action is not None:
        assert status_action(StateChange(new, old), DONE) == {"resolve": "unresolve", "unresolve": "resolve"}[action]


# --- is_newer --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rev", "watermark", "expected"),
    [
        (5, None, True),  # nothing set the field yet
        (5, 4, True),
        (5, 5, False),  # a duplicate delivery
        (4, 5, False),  # a late delivery
        (None, None, False),  # cannot be ordered
        (None, 3, False),
        (True, None, False),  # a bool is not a revision
    ],
)
def test_is_newer(rev: int | None, watermark: int | None, expected: bool) -> None:
    assert is_newer(rev, watermark) is expected


@PROPERTY
@given(st.none() | st.integers(min_value=1, max_value=2**31), st.none() | st.integers(min_value=1, max_value=2**31))
def test_is_newer_is_a_strict_order(rev: int | None, watermark: int | None) -> None:
    newer = is_newer(rev, watermark)
    assert newer == (rev is not None and (watermark is None or rev > watermark))
    if rev is not None:
        assert not (newer and is_newer(watermark, rev))  # never newer both ways
        assert not is_newer(rev, rev)  # replaying the same revision never applies twice
