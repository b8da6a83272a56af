"""The four system processes (Agile, Scrum, CMMI, Basic) as the fake knows them: each work item type's
reference name, states with their categories, type category, whether it is hidden, and the long-text field its
form shows for the body.

Sources: the processes' published workflows (Microsoft Learn "Default processes and process templates") for
the states and categories; Microsoft's `workItemTypeCategories` example (TFS REST 1.0 docs) for the hidden
types (`Microsoft.HiddenCategory`: code review, feedback, shared steps/parameters, test plans and suites);
reference `sentry-outbound-and-apps.md` §1 and §5 for Bug forms showing `Microsoft.VSTS.TCM.ReproSteps` instead
of `System.Description`. The states of the hidden and test types are simplified to what a form would offer.
"""

from __future__ import annotations

from dataclasses import dataclass

PROCESSES = ("Agile", "Scrum", "CMMI", "Basic")
DESCRIPTION = "System.Description"
REPRO_STEPS = "Microsoft.VSTS.TCM.ReproSteps"
HIDDEN_CATEGORY = "Microsoft.HiddenCategory"

States = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TypeDef:
    name: str
    reference_name: str
    category: str  # its work item type category's reference name
    states: States
    body_field: str = DESCRIPTION
    hidden: bool = False
    color: str = "009CCC"


def _states(spec: str) -> States:
    """'New:Proposed, Active:InProgress' -> (('New', 'Proposed'), ('Active', 'InProgress'))."""
    return tuple((name.strip(), category.strip()) for name, category in (p.split(":") for p in spec.split(",")))


def _wit(name: str) -> str:
    return "Microsoft.VSTS.WorkItemTypes." + name.replace(" ", "").replace("Steps", "Step")


AGILE_5 = _states("New:Proposed, Active:InProgress, Resolved:Resolved, Closed:Completed, Removed:Removed")
CMMI_4 = _states("Proposed:Proposed, Active:InProgress, Resolved:Resolved, Closed:Completed")
SCRUM_PBI = _states("New:Proposed, Approved:Proposed, Committed:InProgress, Done:Completed, Removed:Removed")
BASIC_3 = _states("To Do:Proposed, Doing:InProgress, Done:Completed")
ACTIVE_CLOSED = _states("Active:InProgress, Closed:Completed")

# Test and hidden types: the same in every process (Basic included).
_COMMON = (
    TypeDef(
        "Test Case",
        _wit("Test Case"),
        "Microsoft.TestCaseCategory",
        _states("Design:Proposed, Ready:InProgress, Closed:Completed"),
    ),
    TypeDef(
        "Test Plan",
        _wit("Test Plan"),
        "Microsoft.TestPlanCategory",
        _states("Active:InProgress, Inactive:Completed"),
        hidden=True,
    ),
    TypeDef(
        "Test Suite",
        _wit("Test Suite"),
        "Microsoft.TestSuiteCategory",
        _states("In Planning:InProgress, In Progress:InProgress, Completed:Completed"),
        hidden=True,
    ),
    TypeDef("Shared Steps", _wit("Shared Steps"), "Microsoft.SharedStepCategory", ACTIVE_CLOSED, hidden=True),
    TypeDef(
        "Shared Parameter",
        _wit("Shared Parameter"),
        "Microsoft.SharedParameterCategory",
        _states("Active:InProgress, Inactive:Completed"),
        hidden=True,
    ),
    TypeDef(
        "Code Review Request",
        _wit("Code Review Request"),
        "Microsoft.CodeReviewRequestCategory",
        _states("Requested:Proposed, Closed:Completed"),
        hidden=True,
    ),
    TypeDef(
        "Code Review Response",
        _wit("Code Review Response"),
        "Microsoft.CodeReviewResponseCategory",
        _states("Requested:Proposed, Closed:Completed"),
        hidden=True,
    ),
    TypeDef(
        "Feedback Request", _wit("Feedback Request"), "Microsoft.FeedbackRequestCategory", ACTIVE_CLOSED, hidden=True
    ),
    TypeDef(
        "Feedback Response", _wit("Feedback Response"), "Microsoft.FeedbackResponseCategory", ACTIVE_CLOSED, hidden=True
    ),
)

TYPES: dict[str, tuple[TypeDef, ...]] = {
    "Agile": (
        TypeDef("Epic", _wit("Epic"), "Microsoft.EpicCategory", AGILE_5, color="FF7B00"),
        TypeDef("Feature", _wit("Feature"), "Microsoft.FeatureCategory", AGILE_5, color="773B93"),
        TypeDef("User Story", _wit("User Story"), "Microsoft.RequirementCategory", AGILE_5),
        TypeDef(
            "Task",
            _wit("Task"),
            "Microsoft.TaskCategory",
            _states("New:Proposed, Active:InProgress, Closed:Completed, Removed:Removed"),
            color="F2CB1D",
        ),
        TypeDef("Bug", _wit("Bug"), "Microsoft.BugCategory", AGILE_5[:4], body_field=REPRO_STEPS, color="CC293D"),
        TypeDef("Issue", _wit("Issue"), "Microsoft.IssueCategory", ACTIVE_CLOSED, color="B4009E"),
        *_COMMON,
    ),
    "Scrum": (
        TypeDef(
            "Epic",
            _wit("Epic"),
            "Microsoft.EpicCategory",
            _states("New:Proposed, In Progress:InProgress, Done:Completed, Removed:Removed"),
            color="FF7B00",
        ),
        TypeDef(
            "Feature",
            _wit("Feature"),
            "Microsoft.FeatureCategory",
            _states("New:Proposed, In Progress:InProgress, Done:Completed, Removed:Removed"),
            color="773B93",
        ),
        TypeDef("Product Backlog Item", _wit("Product Backlog Item"), "Microsoft.RequirementCategory", SCRUM_PBI),
        TypeDef(
            "Task",
            _wit("Task"),
            "Microsoft.TaskCategory",
            _states("To Do:Proposed, In Progress:InProgress, Done:Completed, Removed:Removed"),
            color="F2CB1D",
        ),
        TypeDef("Bug", _wit("Bug"), "Microsoft.BugCategory", SCRUM_PBI, body_field=REPRO_STEPS, color="CC293D"),
        TypeDef(
            "Impediment",
            _wit("Impediment"),
            "Microsoft.IssueCategory",
            _states("Open:InProgress, Closed:Completed"),
            color="B4009E",
        ),
        *_COMMON,
    ),
    "CMMI": (
        TypeDef("Epic", _wit("Epic"), "Microsoft.EpicCategory", (*CMMI_4, ("Removed", "Removed")), color="FF7B00"),
        TypeDef(
            "Feature", _wit("Feature"), "Microsoft.FeatureCategory", (*CMMI_4, ("Removed", "Removed")), color="773B93"
        ),
        TypeDef("Requirement", _wit("Requirement"), "Microsoft.RequirementCategory", CMMI_4),
        TypeDef("Task", _wit("Task"), "Microsoft.TaskCategory", CMMI_4, color="F2CB1D"),
        TypeDef("Bug", _wit("Bug"), "Microsoft.BugCategory", CMMI_4, body_field=REPRO_STEPS, color="CC293D"),
        TypeDef("Change Request", _wit("Change Request"), "Microsoft.ChangeRequestCategory", CMMI_4),
        TypeDef("Issue", _wit("Issue"), "Microsoft.IssueCategory", CMMI_4, color="B4009E"),
        TypeDef("Risk", _wit("Risk"), "Microsoft.RiskCategory", CMMI_4),
        TypeDef("Review", _wit("Review"), "Microsoft.ReviewCategory", ACTIVE_CLOSED),
        *_COMMON,
    ),
    "Basic": (
        TypeDef("Epic", _wit("Epic"), "Microsoft.EpicCategory", BASIC_3, color="FF7B00"),
        TypeDef("Issue", _wit("Issue"), "Microsoft.RequirementCategory", BASIC_3),
        TypeDef("Task", _wit("Task"), "Microsoft.TaskCategory", BASIC_3, color="F2CB1D"),
        *_COMMON,
    ),
}

# Fields every organization has (system fields and the processes' common ones), lower-cased -> as spelled. A
# patch naming any other field is refused with TF51535 unless the field was added with add_field.
KNOWN_FIELDS = {
    name.lower(): name
    for name in (
        "System.Id", "System.Rev", "System.Title", "System.State", "System.Reason", "System.AssignedTo",
        "System.WorkItemType", "System.TeamProject", "System.AreaPath", "System.IterationPath", "System.Tags",
        "System.Description", "System.History", "System.CreatedDate", "System.CreatedBy", "System.ChangedDate",
        "System.ChangedBy", "System.AuthorizedDate", "System.AuthorizedAs", "System.RevisedDate",
        "System.Watermark", "System.CommentCount", "System.Parent", "System.BoardColumn", "System.AreaId",
        "System.IterationId", "System.RelatedLinkCount", "System.HyperLinkCount", "System.ExternalLinkCount",
        "System.AttachedFileCount", REPRO_STEPS, "Microsoft.VSTS.TCM.SystemInfo", "Microsoft.VSTS.Common.Priority",
        "Microsoft.VSTS.Common.Severity", "Microsoft.VSTS.Common.ValueArea", "Microsoft.VSTS.Common.StackRank",
        "Microsoft.VSTS.Common.BacklogPriority", "Microsoft.VSTS.Common.AcceptanceCriteria",
        "Microsoft.VSTS.Common.ActivatedBy", "Microsoft.VSTS.Common.ActivatedDate",
        "Microsoft.VSTS.Common.ResolvedBy", "Microsoft.VSTS.Common.ResolvedDate",
        "Microsoft.VSTS.Common.ClosedBy", "Microsoft.VSTS.Common.ClosedDate",
        "Microsoft.VSTS.Common.StateChangeDate", "Microsoft.VSTS.Scheduling.StoryPoints",
        "Microsoft.VSTS.Scheduling.Effort", "Microsoft.VSTS.Scheduling.RemainingWork",
        "Microsoft.VSTS.Scheduling.OriginalEstimate", "Microsoft.VSTS.Scheduling.CompletedWork",
    )
}  # fmt: skip
# Display names used in rule error messages ("TF401320: Rule Error for field Assigned To. ...").
FIELD_LABELS = {
    "system.title": "Title",
    "system.state": "State",
    "system.assignedto": "Assigned To",
    "system.areapath": "Area Path",
    "system.iterationpath": "Iteration Path",
    "system.workitemtype": "Work Item Type",
    "system.teamproject": "Team Project",
    "system.description": "Description",
    REPRO_STEPS.lower(): "Repro Steps",
}


def field_label(reference_name: str) -> str:
    return FIELD_LABELS.get(reference_name.lower(), reference_name.rsplit(".", 1)[-1])


def process_types(process: str) -> tuple[TypeDef, ...]:
    return TYPES[process]


def find_type(process: str, name: str) -> TypeDef | None:
    wanted = name.lower()
    return next((t for t in TYPES[process] if t.name.lower() == wanted), None)


def canonical_process(process: str) -> str:
    found = next((p for p in PROCESSES if p.lower() == process.lower()), None)
    if found is None:
        raise ValueError(f"process must be one of {PROCESSES}, not {process!r}")
    return found
