"""Azure Repos (Git): a project's repositories and the items of a branch, as the REST API's `Repositories_List`
and `Items_Get` answer them (MicrosoftDocs/vsts-rest-api-specs, `specification/git/<version>/git.json`, and its
`httpExamples/items`). Files are only paths here: what the Items API answers is a file's metadata, not content.

Refusals, as Azure DevOps words them: a repository that is not there (TF401019), a branch that is not there
(TF401175), an item that is not there (TF401174), each a 404.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from html import escape
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.data import Org, Project, Store
from devtools.fakes.ado.protocol import arg, error, json_response


@dataclass
class Repository:
    id: str
    name: str
    project: str  # the project's id
    default_branch: str
    branches: dict[str, set[str]] = field(default_factory=dict)  # branch -> file paths ("/src/app.py")


def _normal(path: str) -> str:
    return "/" + path.strip("/")


class Repos(Store):
    """Mixin of FakeAzureDevOps: Git repositories and their items."""

    def add_repository(
        self,
        org: str,
        project: str,
        name: str,
        files: dict[str, list[str]] | list[str],
        *,
        default_branch: str = "main",
    ) -> str:
        """A repository of `project`; `files`: the paths on `default_branch`, or {branch: paths}. Its id."""
        with self._lock:
            found = self._org(org)
            target = self._ensure_project(found, project)
            repo_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"repo:{found.key}:{target.id}:{name.lower()}"))
            per_branch = files if isinstance(files, dict) else {default_branch: files}
            branches = {branch: {_normal(p) for p in paths} for branch, paths in per_branch.items()}
            repos = self._git.setdefault(found.key, {})
            repos[repo_id] = Repository(repo_id, name, target.id, default_branch, branches)
            return repo_id

    def _repository(self, org: Org, project: Project | None, name_or_id: str) -> Repository | None:
        wanted = name_or_id.lower()
        for repo in self._git.get(org.key, {}).values():
            if project is not None and repo.project != project.id:
                continue
            if repo.id == wanted or repo.name.lower() == wanted:
                return repo
        return None

    def _render_repository(self, org: Org, repo: Repository) -> dict[str, Any]:
        project = org.projects[repo.project.lower()]
        base = self.org_url(org.name)  # type: ignore[attr-defined]
        return {
            "id": repo.id,
            "name": repo.name,
            "url": f"{base}{project.id}/_apis/git/repositories/{repo.id}",
            "project": {"id": project.id, "name": project.name, "state": "wellFormed"},
            "defaultBranch": f"refs/heads/{repo.default_branch}",
            "remoteUrl": f"{base}{project.name}/_git/{repo.name}",
            "webUrl": f"{base}{project.name}/_git/{repo.name}",
            "isDisabled": False,
        }

    # ------------------------------------------------------------------------------------------ web view

    def _file_view(self, request: Request, parts: list[str]) -> Response:
        """`{org}/{project}/_git/{repo}?path=/{file}&version=GB{branch}&line=N…`: Azure Repos' file view, as a
        small page naming what it shows (the real one needs a signed-in person; this one is for browser tests).
        404 for an organization, project, repository, branch or file that is not there."""
        if len(parts) != 4 or parts[2].lower() != "_git":
            return Response("Not found", status=404, content_type="text/plain")
        org_name, project_name, _, repo_name = parts
        version = arg(request, "version") or ""
        path = _normal(arg(request, "path") or "/")
        with self._lock:
            org = self._orgs.get(org_name.lower())
            project = org.project(project_name) if org else None
            repo = self._repository(org, project, repo_name) if org and project else None
            branch = version[2:] if version.startswith("GB") else ""
            if repo is None or branch not in repo.branches or path not in repo.branches[branch]:
                return Response("The file is not there.", status=404, content_type="text/plain")
        line = escape(arg(request, "line") or "")
        body = (
            f'<!doctype html><link rel="icon" href="data:,"><title>{escape(path)} - Repos</title>'
            f'<h1 id="file">{escape(repo.name)}{escape(path)}</h1>'
            f'<p>Branch <span id="branch">{escape(branch)}</span>, line <span id="line">{line}</span></p>'
        )
        return Response(body, content_type="text/html; charset=utf-8")

    # ------------------------------------------------------------------------------------------ endpoints

    def _handle_repositories(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        with self._lock:
            repos = [
                self._render_repository(org, r)
                for r in sorted(self._git.get(org.key, {}).values(), key=lambda r: r.name.lower())
                if project is None or r.project == project.id
            ]
        return json_response({"count": len(repos), "value": repos})

    def _handle_items(
        self, request: Request, org: Org, project: Project | None, major: int, repository_id: str
    ) -> Response:
        path = arg(request, "path") or arg(request, "scopePath")
        if not path:
            return error(400, "The path of the item is required.", "ArgumentNullException")
        with self._lock:
            repo = self._repository(org, project, repository_id)
            if repo is None:
                return error(
                    404,
                    f"TF401019: The Git repository with name or identifier {repository_id} does not exist or you do "
                    "not have permissions for the operation you are attempting.",
                    "GitRepositoryNotFoundException",
                )
            version_type = (arg(request, "versionDescriptor.versionType") or "branch").lower()
            branch = arg(request, "versionDescriptor.version") or repo.default_branch
            if version_type != "branch" or branch not in repo.branches:
                return error(
                    404,
                    f"TF401175: The version descriptor <Branch: {branch} > could not be resolved to a version commit.",
                    "GitUnresolvableToCommitException",
                )
            wanted = _normal(path)
            if wanted not in repo.branches[branch]:
                return error(
                    404,
                    f"TF401174: The item '{wanted}' could not be found in the repository '{repo.name}' at the version "
                    f"specified by '<Branch: {branch} >'.",
                    "GitItemNotFoundException",
                )
            commit = hashlib.sha1(f"{repo.id}:{branch}".encode()).hexdigest()
            base = self.org_url(org.name)  # type: ignore[attr-defined]
        return json_response(
            {
                "objectId": hashlib.sha1(f"{repo.id}:{branch}:{wanted}".encode()).hexdigest(),
                "gitObjectType": "blob",
                "commitId": commit,
                "path": wanted,
                "url": f"{base}_apis/git/repositories/{repo.id}/items{wanted}?versionType=Branch&versionOptions=None",
            }
        )
