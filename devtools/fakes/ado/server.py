"""The fake's HTTP server: `FakeAzureDevOps` (started on 127.0.0.1, a free port), its routes and the dispatch
from a request to an endpoint of one of the mixins; the server itself and the request log are the shared
`devtools/fakes/http.py`'s."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.auth import Auth
from devtools.fakes.ado.catalog import Catalog
from devtools.fakes.ado.comments import Comments
from devtools.fakes.ado.data import Project
from devtools.fakes.ado.deliveries import Deliveries
from devtools.fakes.ado.faults import Faults
from devtools.fakes.ado.hooks import Hooks
from devtools.fakes.ado.patch import Patching
from devtools.fakes.ado.protocol import api_major, api_version, error
from devtools.fakes.ado.wiql import Wiql
from devtools.fakes.ado.workitems import WorkItemsApi
from devtools.fakes.http import LoopbackServer
from devtools.fakes.http import QuietHandler as QuietHandler  # re-exported: tests import it from here
from devtools.fakes.http import RecordedRequest as RecordedRequest  # re-exported, as before


class FakeAzureDevOps(LoopbackServer, Auth, WorkItemsApi, Patching, Comments, Catalog, Wiql, Hooks, Deliveries, Faults):
    """Azure DevOps on 127.0.0.1: organizations, credentials, work items (read and written), comments,
    projects and processes, service hooks, WIQL."""

    thread_name = "fake-ado"

    def __init__(self, *, client_secret: str = "fake-client-secret", redirect_uri: str | None = None) -> None:
        super().__init__()
        self.client_secret = client_secret
        # When set, token requests must carry exactly this redirect_uri (Azure DevOps checks the registration).
        self.redirect_uri = redirect_uri
        self._map = Map(self._rules(), strict_slashes=False, merge_slashes=False)

    def _closed(self) -> None:
        self._http.close()

    def org_url(self, org: str) -> str:
        """The organization URL, with its trailing slash: what the app stores as `domain_name`."""
        return f"{self.base_url}/{org}/"

    def settings_env(self) -> dict[str, str]:
        """The app settings that point the app at this fake."""
        base = self.base_url
        return {
            "ADO_ACCOUNT_LOOKUP_URL": (
                f"{base}/_apis/resourceareas/79134C72-4A58-4B42-976C-04E7115F32BF?hostId=%s&api-preview=5.0-preview.1"
            ),
            "ADO_OAUTH_TOKEN_URL": f"{base}/oauth2/token",
            "ADO_SEARCH_BASE_URL": f"{base}/{{organization}}/",
            "ADO_ALLOWED_ORIGINS": base,
            "ADO_CLIENT_SECRET": self.client_secret,
        }

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
        ):
            rules.append(Rule(f"/<org>/{path}", endpoint=endpoint, methods=[method]))
            rules.append(Rule(f"/<org>/<project>/{path}", endpoint=endpoint, methods=[method]))
        return rules

    def _internal_error(self, exc: Exception) -> Response:
        return error(500, f"fake Azure DevOps failed: {type(exc).__name__}: {exc}", "FakeServerError")

    def _dispatch(self, request: Request) -> Response:
        segments = request.path.split("/")
        adapter = self._map.bind("fake-azure-devops")
        try:
            rule, args = adapter.match("/".join(s.lower() for s in segments), method=request.method, return_rule=True)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            return error(405, f"The method {request.method} is not allowed here.", headers={"Allow": allowed})
        except NotFound:
            return error(404, f"The resource {request.path} was not found.", "ResourceNotFoundException")
        except HTTPException as exc:
            return error(exc.code or 400, exc.description or "Bad request.")
        # Matching ran on the lower-cased path; take variable values back from the original segments.
        for index, part in enumerate(rule.rule.split("/")):
            variable = re.fullmatch(r"<(?:\w+:)?(\w+)>", part)
            if variable and isinstance(args.get(variable.group(1)), str):
                args[variable.group(1)] = segments[index]
        handler = getattr(self, f"_handle_{rule.endpoint}")
        if rule.endpoint in ("resource_area", "token"):
            return handler(request, **args)  # anonymous endpoints, no api-version needed
        return self._org_request(request, handler, args)

    def _org_request(self, request: Request, handler: Callable[..., Response], args: dict[str, Any]) -> Response:
        """Organization endpoints: organization, credential, api-version and project, in that order."""
        with self._lock:
            org = self._orgs.get(str(args.pop("org")).lower())
            authorized = org is not None and self._authorized(request, org)
        if org is None:
            # No credential can be valid for an organization that does not exist. (Exact Azure DevOps
            # answer not in the reference.)
            return error(404, "The organization was not found.", "OrganizationNotFoundException")
        if not authorized:
            return self._unauthorized(request)
        version = api_version(request)
        if version is None:
            return error(
                400,
                f'No api-version was supplied for the "{request.method}" request. The version must be supplied '
                'either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query '
                'parameter (e.g. "?api-version=1.0").',
                "VssVersionNotSpecifiedException",
            )
        major = api_major(version)
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
        return handler(request, org=org, project=project, major=major, **args)
