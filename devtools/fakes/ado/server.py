"""The fake's HTTP server: `FakeAzureDevOps` (started on 127.0.0.1, a free port), its routes and the dispatch
from a request to an endpoint of one of the mixins; the server itself and the request log are the shared
`devtools/fakes/http.py`'s."""

from __future__ import annotations

import re
import uuid
import weakref
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from devtools.fakes.ado import spec
from devtools.fakes.ado.auth import Auth
from devtools.fakes.ado.catalog import Catalog
from devtools.fakes.ado.comments import Comments
from devtools.fakes.ado.data import Project
from devtools.fakes.ado.deliveries import Deliveries
from devtools.fakes.ado.faults import Faults
from devtools.fakes.ado.hooks import Hooks
from devtools.fakes.ado.patch import Patching
from devtools.fakes.ado.protocol import error, json_response
from devtools.fakes.ado.repos import Repos
from devtools.fakes.ado.wiql import Wiql
from devtools.fakes.ado.workitems import WorkItemsApi
from devtools.fakes.http import LoopbackServer
from devtools.fakes.http import QuietHandler as QuietHandler  # re-exported: tests import it from here
from devtools.fakes.http import RecordedRequest as RecordedRequest  # re-exported, as before

# Every fake Azure DevOps alive, so the tests' teardown can fail a test whose requests broke the specification.
LIVE: weakref.WeakSet[FakeAzureDevOps] = weakref.WeakSet()
SERVERS = tuple(spec.SERVER_LEVELS)


class FakeAzureDevOps(
    LoopbackServer, Auth, WorkItemsApi, Patching, Comments, Catalog, Wiql, Hooks, Deliveries, Faults, Repos
):
    """Azure DevOps on 127.0.0.1: organizations, credentials, work items (read and written), comments,
    projects and processes, service hooks, WIQL, Git repositories and their items.

    `server` is what it acts as: `services` (Azure DevOps Services, api-version 7.1, organizations at
    `/{org}/`), `server-2022` (Azure DevOps Server 2022, 7.0) or `server-2022.1` (2022.1 and later, 7.1), whose
    collections are at `/tfs/{collection}/` and which have no account lookup. Every request is checked against the
    specification (`spec.py`); what Azure DevOps would refuse is refused and recorded in `violations`."""

    thread_name = "fake-ado"

    def __init__(
        self,
        *,
        client_secret: str = "fake-client-secret",
        redirect_uri: str | None = None,
        server: str = "services",
    ) -> None:
        super().__init__()
        if server not in SERVERS:
            raise ValueError(f"server must be one of {SERVERS}")
        self.server = server
        # Azure DevOps Server serves work item search only with the Search extension installed.
        self.search_installed = True
        self.client_secret = client_secret
        # When set, token requests must carry exactly this redirect_uri (Azure DevOps checks the registration).
        self.redirect_uri = redirect_uri
        self._map = Map(self._rules(), strict_slashes=False, merge_slashes=False)
        self._violations: list[str] = []
        LIVE.add(self)

    @property
    def on_premises(self) -> bool:
        return self.server != "services"

    @property
    def violations(self) -> list[str]:
        """Requests Azure DevOps would refuse (or silently misread), one sentence each."""
        with self._lock:
            return list(self._violations)

    def take_violations(self) -> list[str]:
        """The violations so far, forgetting them (a test that sends a bad request on purpose takes them)."""
        with self._lock:
            taken, self._violations = self._violations, []
            return taken

    def _violation(self, text: str) -> None:
        with self._lock:
            self._violations.append(text)

    def _closed(self) -> None:
        self._http.close()

    def org_url(self, org: str) -> str:
        """The organization (or collection) URL, with its trailing slash: what the app stores as `domain_name`."""
        return f"{self.base_url}/tfs/{org}/" if self.on_premises else f"{self.base_url}/{org}/"

    def settings_env(self) -> dict[str, str]:
        """The app settings that point the app at this fake."""
        base = self.base_url
        env = {
            "ADO_ACCOUNT_LOOKUP_URL": (f"{base}/_apis/resourceareas/79134C72-4A58-4B42-976C-04E7115F32BF?hostId=%s"),
            "ADO_OAUTH_TOKEN_URL": f"{base}/oauth2/token",
            "ADO_SEARCH_BASE_URL": f"{base}/{{organization}}/",
            "ADO_ALLOWED_ORIGINS": base,
            "ADO_CLIENT_SECRET": self.client_secret,
        }
        if self.on_premises:
            del env["ADO_SEARCH_BASE_URL"]  # a collection serves search itself, as the app assumes by default
            # The account lookup is Azure DevOps Services' (vssps), not the server's: nothing answers it here.
            env["ADO_ACCOUNT_LOOKUP_URL"] = (
                "http://127.0.0.1:1/_apis/resourceareas/79134C72-4A58-4B42-976C-04E7115F32BF?hostId=%s"
            )
        return env

    def reset_log(self) -> None:
        """Forget recorded requests and deliveries."""
        with self._lock:
            self._log.clear()
            self._deliveries.clear()

    # ----------------------------------------------------------------------------------------------- HTTP

    @staticmethod
    def _rules() -> list[Rule]:
        """Paths relative to the base URL. Literal segments are lower-case: matching is case-insensitive."""
        rules = [
            Rule("/_apis/resourceareas/<area_id>", endpoint="resource_area", methods=["GET"]),
            Rule("/oauth2/token", endpoint="token", methods=["POST"]),
            Rule("/<org>/<project>/_apis/wit/workitemtypes/<wit_type>/states", endpoint="states", methods=["GET"]),
            Rule("/<org>/_apis/hooks/subscriptions", endpoint="subscriptions", methods=["GET", "POST"]),
            Rule(
                "/<org>/_apis/hooks/subscriptions/<sub_id>",
                endpoint="subscription",
                methods=["GET", "PUT", "DELETE"],
            ),
            Rule("/<org>/<project>/<team>/_apis/wit/wiql", endpoint="wiql", methods=["POST"]),
            Rule("/<org>/_apis/connectiondata", endpoint="connection_data", methods=["GET"]),
            Rule("/<org>/_apis/projects", endpoint="projects", methods=["GET"]),
            Rule("/<org>/_apis/projects/<project>", endpoint="project", methods=["GET"]),
            Rule("/<org>/<project>/_apis/wit/workitemtypes", endpoint="work_item_types", methods=["GET"]),
            Rule("/<org>/<project>/_apis/wit/workitemtypes/<wit_type>", endpoint="work_item_type", methods=["GET"]),
            Rule("/<org>/<project>/_apis/wit/workitemtypecategories", endpoint="type_categories", methods=["GET"]),
            Rule("/<org>/<project>/_apis/wit/classificationnodes", endpoint="classification_nodes", methods=["GET"]),
            Rule(
                "/<org>/<project>/_apis/wit/classificationnodes/<structure>",
                endpoint="classification_node",
                methods=["GET"],
            ),
            # Create: `${type}` (the `$` is checked by the handler, so /workitems/<id> POST gets a clear 400).
            Rule("/<org>/<project>/_apis/wit/workitems/<wit_type>", endpoint="create", methods=["POST"]),
            Rule(
                "/<org>/<project>/_apis/wit/workitems/<int:work_item_id>/comments",
                endpoint="comments",
                methods=["GET", "POST"],
            ),
            Rule(
                "/<org>/<project>/_apis/wit/workitems/<int:work_item_id>/comments/<int:comment_id>",
                endpoint="comment",
                methods=["GET", "PATCH", "DELETE"],
            ),
        ]
        # Where Azure DevOps takes an optional project segment after the organization.
        for path, endpoint, method in (
            ("_apis/wit/workitems/<int:work_item_id>", "work_item", "GET"),
            ("_apis/wit/workitems/<int:work_item_id>", "work_item_patch", "PATCH"),
            ("_apis/wit/workitems", "work_items", "GET"),
            ("_apis/wit/workitemsbatch", "batch", "POST"),
            ("_apis/wit/wiql", "wiql", "POST"),
            ("_apis/search/workitemsearchresults", "search", "POST"),
            ("_apis/git/repositories", "repositories", "GET"),
            ("_apis/git/repositories/<repository_id>/items", "items", "GET"),
        ):
            rules.append(Rule(f"/<org>/{path}", endpoint=endpoint, methods=[method]))
            rules.append(Rule(f"/<org>/<project>/{path}", endpoint=endpoint, methods=[method]))
        return rules

    def _internal_error(self, exc: Exception) -> Response:
        return error(500, f"fake Azure DevOps failed: {type(exc).__name__}: {exc}", "FakeServerError")

    def _dispatch(self, request: Request) -> Response:
        segments = request.path.split("/")
        if request.path.lower() == "/oauth2/token":  # Azure DevOps OAuth (legacy): not a REST API of the spec
            return self._match(request, segments, None)
        if request.method == "GET" and "_git" in segments and "_apis" not in segments:
            # Azure Repos' web file view (a page for people, not a REST API of the specification).
            view = segments[2:] if self.on_premises and len(segments) > 2 and segments[1].lower() == "tfs" else segments
            return self._file_view(request, [p for p in view[1:] if p != ""])
        if segments[1:3] == ["_apis", "resourceareas"] or segments[1:3] == ["_apis", "resourceAreas"]:
            parts = ["@vssps", *segments[1:]]
        elif self.on_premises:
            if len(segments) < 3 or segments[1].lower() != "tfs":
                self._violation(f"{request.method} {request.path}: not under a collection (/tfs/{{collection}}/)")
                return error(404, f"The resource {request.path} was not found.", "ResourceNotFoundException")
            segments = ["", *segments[2:]]  # the /tfs virtual directory, then the collection
            parts = segments[2:]
        else:
            parts = segments[2:]
        parts = [p for p in parts if p != ""]
        if request.method == "OPTIONS" and [p.lower() for p in parts] == ["_apis"]:
            return self._match(request, segments, None, locations=True)
        operation = spec.find(request.method, parts, self.server)
        if operation is None:
            allowed = spec.methods_at(parts, self.server)
            what = "another method" if allowed else "no operation"
            self._violation(f"{request.method} {request.path}: {what} of the specification on {self.server}")
            if allowed:
                message = f"The method {request.method} is not allowed here."
                return error(405, message, headers={"Allow": ", ".join(allowed)})
            return error(404, f"The resource {request.path} was not found.", "ResourceNotFoundException")
        refusal: spec.Refusal | None = None
        version = ""
        try:
            notes, version = spec.check(request, operation, self.server)
            for note in notes:
                self._violation(note)
        except spec.Refusal as exc:
            self._violation(exc.violation)
            refusal = exc
        return self._match(request, segments, refusal, version=version)

    def _match(
        self,
        request: Request,
        segments: list[str],
        refusal: spec.Refusal | None,
        *,
        version: str = "",
        locations: bool = False,
    ) -> Response:
        adapter = self._map.bind("fake-azure-devops")
        path = "/".join(s.lower() for s in segments)
        if locations:
            rule, args = None, {"org": segments[1]}
        else:
            try:
                rule, args = adapter.match(path, method=request.method, return_rule=True)
            except MethodNotAllowed as exc:
                allowed = ", ".join(sorted(exc.valid_methods or []))
                return error(405, f"The method {request.method} is not allowed here.", headers={"Allow": allowed})
            except NotFound:
                return (
                    refusal.response
                    if refusal
                    else error(404, f"The resource {request.path} was not found.", "ResourceNotFoundException")
                )
            except HTTPException as exc:
                return error(exc.code or 400, exc.description or "Bad request.")
            # Matching ran on the lower-cased path; take variable values back from the original segments.
            for index, part in enumerate(rule.rule.split("/")):
                variable = re.fullmatch(r"<(?:\w+:)?(\w+)>", part)
                if variable and isinstance(args.get(variable.group(1)), str):
                    args[variable.group(1)] = segments[index]
        endpoint = rule.endpoint if rule is not None else "locations"
        if endpoint in ("resource_area", "token"):
            if refusal is not None:
                return refusal.response
            return getattr(self, f"_handle_{endpoint}")(request, **args)  # anonymous endpoints
        return self._org_request(request, endpoint, args, refusal, version)

    def _org_request(
        self, request: Request, endpoint: str, args: dict[str, Any], refusal: spec.Refusal | None, version: str
    ) -> Response:
        """Organization endpoints: organization, credential, the specification's checks and project, in that
        order."""
        with self._lock:
            org = self._orgs.get(str(args.pop("org")).lower())
            authorized = org is not None and self._authorized(request, org)
        if org is None:
            # No credential can be valid for an organization that does not exist. (Exact Azure DevOps
            # answer not in the reference.)
            return error(404, "The organization was not found.", "OrganizationNotFoundException")
        if not authorized:
            return self._unauthorized(request)
        if endpoint == "locations":
            return self._locations()
        if refusal is not None:
            return refusal.response
        major = int(version.split(".", 1)[0])
        args.pop("team", None)
        project_segment = args.pop("project", None)
        project: Project | None = None
        if project_segment is not None:
            with self._lock:
                project = org.project(project_segment)
            if project is None:
                return error(
                    404,
                    f"TF200016: The following project does not exist: {project_segment}. Verify that the name of "
                    "the project is correct and that the project exists on the specified Azure DevOps Server.",
                    "ProjectDoesNotExistWithNameException",
                )
        handler = getattr(self, f"_handle_{endpoint}")
        return handler(request, org=org, project=project, major=major, **args)

    def _locations(self) -> Response:
        """`OPTIONS {collection}/_apis/`: the resource locations and the versions this server has for each, as
        the official clients read them to choose a version (`minVersion`, `maxVersion`, `releasedVersion`,
        `resourceVersion`). Built from the specification table; the location ids are derived, not Microsoft's."""
        level = ".".join(map(str, spec.SERVER_LEVELS[self.server]))
        value = []
        seen: set[str] = set()
        for operation in spec.OPERATIONS:
            facts = operation.servers.get(self.server)
            route = operation.path.lstrip("/")
            if facts is None or route.startswith("@") or route.lower() in seen:
                continue
            seen.add(route.lower())
            after = route.split("_apis/", 1)[1].split("/")
            preview = re.search(r"-preview\.(\d+)$", facts["version"])
            value.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"location:{route.lower()}")),
                    "area": after[0],
                    "resourceName": after[1] if len(after) > 1 else after[0],
                    "routeTemplate": route,
                    "resourceVersion": int(preview.group(1)) if preview else 1,
                    "minVersion": "1.0",
                    "maxVersion": level,
                    "releasedVersion": "0.0" if facts["preview"] else level,
                }
            )
        return json_response({"count": len(value), "value": value})
