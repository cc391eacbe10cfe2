"""A small, in-memory Hugging Face Hub stub on loopback, for tests that run the real ``huggingface_hub`` client.

It implements the routes that repository creation, commits and file reads use, over real HTTP, and stores
what it receives so tests can assert on it:

=========================================================  ============================================
route                                                      used by
=========================================================  ============================================
``POST /api/repos/create``                                 ``HfApi.create_repo``
``POST /api/validate-yaml``                                ``HfApi.create_commit`` (README.md metadata)
``GET  /api/whoami-v2``                                    ``HfApi.whoami`` (the token's user and role)
``POST /api/{type}s/{repo}/preupload/{rev}``               ``create_commit`` / ``upload_folder``
``POST /api/{type}s/{repo}/commit/{rev}``                  ``create_commit`` (NDJSON, base64 files)
``GET  /api/{type}s/{repo}[/revision/{rev}]``              ``HfApi.repo_info`` / ``dataset_info``
``GET  /api/{type}s/{repo}/tree/{rev}[/{path}]``           ``HfApi.list_repo_files`` / ``list_repo_tree``
``POST /api/{type}s/{repo}/branch/{branch}``               ``HfApi.create_branch``
``GET|HEAD /{type}s/{repo}/resolve/{rev}/{path}``          ``hf_hub_download`` and plain HTTP reads
=========================================================  ============================================

Every file is answered as a regular (non-LFS, non-Xet) upload, so no storage backend is needed; set
``HF_HUB_DISABLE_XET=1`` in the client process anyway. The preupload answer carries each stored file's git blob
id, so the client skips unchanged files exactly as it does against the real Hub (a re-push of identical files
makes no commit).

Authentication: a request must carry ``Authorization: Bearer <token>`` with a token from ``HubStub(tokens=...)``;
an unknown token gets 401, a ``"read"`` token gets 403 on writes. :meth:`HubStub.fail` makes the next matching
request(s) fail with a chosen status (401/403/404/409/5xx) to test error handling.

Usage::

    from hub_server import HubStub
    with HubStub(port=args.port) as hub:
        api = huggingface_hub.HfApi(endpoint=hub.endpoint, token=hub.token)
        api.create_repo("org/name", repo_type="dataset")
        ...
        hub.files("org/name")          # {path: bytes} at the head of main
        hub.commits("org/name")        # [{"oid", "summary", "description", "parent", "files"}, ...]

Run ``python tests/hub_server.py --port 8765`` to serve it by hand (stops by itself after ``--seconds``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

DEFAULT_TOKEN = "hf_stub_write_token_0123456789"
USER = "ds2-tester"

_REPO_API = re.compile(r"^/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)(?P<rest>/.*)?$")
_RESOLVE = re.compile(r"^/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def git_blob_oid(content: bytes) -> str:
    """The git blob id (SHA-1 of ``"blob <size>\\0" + content``), as the Hub reports for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit oid
    commits: dict[str, dict] = field(default_factory=dict)  # oid -> commit record
    log: list[str] = field(default_factory=list)  # commit oids in creation order

    def snapshot(self, rev: str) -> dict[str, bytes] | None:
        oid = self.branches.get(rev, rev if rev in self.commits else None)
        return None if oid is None else self.commits[oid]["files"]


@dataclass
class _Failure:
    route: str
    status: int
    message: str
    times: int


class HubStub:
    """Serve the stub on ``127.0.0.1`` (a free port) in a background thread; use as a context manager.

    Parameters
    ----------
    tokens : dict of str to {"write", "read"}, optional
        Accepted bearer tokens and their role. Defaults to ``{DEFAULT_TOKEN: "write"}``.
    port : int, default 0
        Port on 127.0.0.1; 0 picks a free one.
    """

    def __init__(self, tokens: dict[str, str] | None = None, *, port: int = 0):
        self.port = port
        self.tokens = dict(tokens or {DEFAULT_TOKEN: "write"})
        self.token = next(t for t, role in self.tokens.items() if role == "write") if self.tokens else None
        self.repos: dict[str, _Repo] = {}
        self.requests: list[dict] = []  # method, path, status, authorized (never the token itself)
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> HubStub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start the stub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ test helpers
    def fail(self, route: str, status: int, message: str = "injected failure", *, times: int = 1) -> None:
        """Make the next ``times`` requests to ``route`` answer ``status``.

        ``route`` is one of ``"create"``, ``"validate"``, ``"preupload"``, ``"commit"``, ``"info"``, ``"tree"``,
        ``"branch"``, ``"resolve"`` or ``"any"``.
        """
        with self._lock:
            self._failures.append(_Failure(route, status, message, times))

    def repo(self, repo_id: str, repo_type: str = "dataset") -> _Repo:
        return self.repos[f"{repo_type}:{repo_id}"]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        """Files at ``revision`` of a repository, as ``{path: bytes}``."""
        snap = self.repo(repo_id, repo_type).snapshot(revision)
        return dict(snap or {})

    def commits(self, repo_id: str, repo_type: str = "dataset") -> list[dict]:
        """Every commit of a repository, oldest first."""
        repo = self.repo(repo_id, repo_type)
        return [repo.commits[oid] for oid in repo.log]

    # ------------------------------------------------------------------ internals
    def _take_failure(self, route: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.route in (route, "any") and failure.times > 0:
                    failure.times -= 1
                    if failure.times == 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def _new_oid(self, seed: str) -> str:
        with self._lock:
            self._counter += 1
            return hashlib.sha1(f"{self._counter}:{seed}".encode()).hexdigest()

    def _create_commit(self, repo: _Repo, branch: str, files: dict[str, bytes], summary: str, description: str) -> str:
        parent = repo.branches.get(branch)
        oid = self._new_oid(repo.repo_id + summary)
        repo.commits[oid] = {
            "oid": oid,
            "summary": summary,
            "description": description,
            "parent": parent,
            "branch": branch,
            "files": files,
        }
        repo.log.append(oid)
        repo.branches[branch] = oid
        return oid


class _Handler(BaseHTTPRequestHandler):
    hub: HubStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # silence the default stderr access log
        pass

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload=None, *, raw: bytes | None = None, headers: dict | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record["status"] = status

    def _error(self, status: int, message: str, *, code: str | None = None, **extra) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message, **extra}, headers=headers)

    def _role(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        return self.hub.tokens.get(token) if token else None

    def _authorize(self, write: bool) -> bool:
        role = self._role()
        if role is None:
            self._error(401, "Invalid credentials in Authorization header")
            return False
        if write and role != "write":
            self._error(403, "You don't have the rights to write to this repository")
            return False
        return True

    def _dispatch(self) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        self._record = {"method": self.command, "path": path, "status": None,
                        "authorized": "Authorization" in self.headers}
        with self.hub._lock:
            self.hub.requests.append(self._record)
        route, handler, groups = self._route(path)
        if route is None:
            self._error(404, f"no route for {self.command} {path}")
            return
        failure = self.hub._take_failure(route)
        if failure is not None:
            self._body()
            self._error(failure.status, failure.message)
            return
        handler(groups, parse_qs(url.query))

    def _route(self, path: str):
        method = self.command
        if method == "POST" and path == "/api/repos/create":
            return "create", self._create, {}
        if method == "POST" and path == "/api/validate-yaml":
            return "validate", self._validate, {}
        if method == "GET" and path == "/api/whoami-v2":
            return "whoami", self._whoami, {}
        m = _REPO_API.match(path)
        if m:
            groups = {"type": m["type"][:-1], "repo": m["repo"]}
            rest = m["rest"] or ""
            for name, pattern, verb, fn in (
                ("preupload", r"^/preupload/(?P<rev>.+)$", "POST", self._preupload),
                ("commit", r"^/commit/(?P<rev>.+)$", "POST", self._commit),
                ("branch", r"^/branch/(?P<rev>.+)$", "POST", self._branch),
                ("tree", r"^/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$", "GET", self._tree),
                ("info", r"^/revision/(?P<rev>.+)$", "GET", self._info),
                ("info", r"^$", "GET", self._info),
            ):
                sub = re.match(pattern, rest)
                if sub and method == verb:
                    return name, fn, {**groups, **{k: v for k, v in sub.groupdict().items() if v is not None}}
            return None, None, None
        m = _RESOLVE.match(path)
        if m and method in ("GET", "HEAD"):
            repo_type = {"datasets": "dataset", "spaces": "space"}.get(m["type"] or "", "model")
            return "resolve", self._resolve, {"type": repo_type, "repo": m["repo"], "rev": m["rev"], "path": m["path"]}
        return None, None, None

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    # ------------------------------------------------------------------ helpers
    def _repo(self, groups, *, write: bool) -> _Repo | None:
        if not self._authorize(write):
            return None
        repo = self.hub.repos.get(f"{groups['type']}:{groups['repo']}")
        if repo is None:
            self._error(404, f"Repository Not Found for url: {self.path}.", code="RepoNotFound")
            return None
        return repo

    def _url(self, repo: _Repo) -> str:
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return f"{self.hub.endpoint}/{prefix}{repo.repo_id}"

    # ------------------------------------------------------------------ routes
    def _create(self, groups, query):
        payload = json.loads(self._body() or b"{}")
        if not self._authorize(write=True):
            return
        name, org = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        repo_id = f"{org or USER}/{name}"
        key = f"{repo_type}:{repo_id}"
        if key in self.hub.repos:
            repo = self.hub.repos[key]
            self._error(409, "You already created this repo", url=self._url(repo))
            return
        private = payload.get("private", payload.get("visibility") == "private")
        repo = _Repo(repo_id=repo_id, repo_type=repo_type, private=bool(private))
        self.hub.repos[key] = repo
        self.hub._create_commit(repo, "main", {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"},
                                "initial commit", "")
        self._send(200, {"url": self._url(repo), "name": repo_id, "id": repo_id})

    def _whoami(self, groups, query):
        role = self._role()
        if role is None:
            self._error(401, "Invalid credentials in Authorization header")
            return
        self._send(200, {"type": "user", "name": USER, "auth": {"accessToken": {"role": role}}})

    def _validate(self, groups, query):
        payload = json.loads(self._body() or b"{}")
        content = payload.get("content", "")
        if content.startswith("---"):
            import yaml

            try:
                yaml.safe_load(content.split("---", 2)[1])
            except yaml.YAMLError as err:
                self._error(400, f"Invalid metadata in README.md: {err}")
                return
        self._send(200, {"errors": [], "warnings": []})

    def _preupload(self, groups, query):
        payload = json.loads(self._body() or b"{}")
        repo = self._repo(groups, write=True)
        if repo is None:
            return
        snap = repo.snapshot(groups["rev"]) or {}
        files = []
        for item in payload.get("files", []):
            stored = snap.get(item["path"])
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_oid(stored) if stored is not None else None,
                }
            )
        self._send(200, {"files": files, "commitOid": repo.branches.get(groups["rev"])})

    def _commit(self, groups, query):
        body = self._body()
        repo = self._repo(groups, write=True)
        if repo is None:
            return
        branch = groups["rev"]
        if branch not in repo.branches:
            self._error(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
            return
        files = dict(repo.snapshot(branch) or {})
        header = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
                parent = value.get("parentCommit")
                if parent and parent != repo.branches[branch]:
                    self._error(409, "A commit has happened since. Please refresh and try again.")
                    return
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:
                self._error(400, f"this stub does not support commit operation {key!r}")
                return
        oid = self.hub._create_commit(repo, branch, files, header.get("summary", ""), header.get("description", ""))
        self._send(200, {"commitUrl": f"{self._url(repo)}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None})

    def _branch(self, groups, query):
        payload = json.loads(self._body() or b"{}")
        repo = self._repo(groups, write=True)
        if repo is None:
            return
        branch = groups["rev"]
        if branch in repo.branches:
            self._error(409, f"Reference refs/heads/{branch} already exists")
            return
        start = payload.get("startingPoint") or "main"
        oid = repo.branches.get(start, start if start in repo.commits else None)
        if oid is None:
            self._error(404, f"Invalid rev id: {start}")
            return
        repo.branches[branch] = oid
        self._send(200, {})

    def _info(self, groups, query):
        repo = self._repo(groups, write=False)
        if repo is None:
            return
        rev = groups.get("rev", "main")
        snap = repo.snapshot(rev)
        if snap is None:
            self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
            return
        oid = repo.branches.get(rev, rev)
        self._send(
            200,
            {
                "id": repo.repo_id,
                "sha": oid,
                "private": repo.private,
                "siblings": [{"rfilename": p} for p in sorted(snap)],
            },
        )

    def _tree(self, groups, query):
        repo = self._repo(groups, write=False)
        if repo is None:
            return
        snap = repo.snapshot(groups["rev"])
        if snap is None:
            self._error(404, f"Invalid rev id: {groups['rev']}", code="RevisionNotFound")
            return
        base = (groups.get("path") or "").strip("/")
        recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
        entries, folders = [], set()
        for path in sorted(snap):
            if base and not path.startswith(base + "/"):
                continue
            rel = path[len(base) + 1 :] if base else path
            if "/" in rel and not recursive:
                folders.add((base + "/" if base else "") + rel.split("/", 1)[0])
                continue
            if recursive:
                parts = path.split("/")[:-1]
                for i in range(len(base.split("/")) if base else 0, len(parts)):
                    folders.add("/".join(parts[: i + 1]))
            entries.append({"type": "file", "path": path, "oid": git_blob_oid(snap[path]), "size": len(snap[path])})
        entries += [{"type": "directory", "path": f, "oid": git_blob_oid(f.encode())} for f in sorted(folders)]
        self._send(200, entries)

    def _resolve(self, groups, query):
        repo = self._repo(groups, write=False)
        if repo is None:
            return
        snap = repo.snapshot(groups["rev"])
        if snap is None or groups["path"] not in snap:
            self._error(404, "Entry not found", code="EntryNotFound")
            return
        content = snap[groups["path"]]
        oid = repo.branches.get(groups["rev"], groups["rev"])
        self._send(200, raw=content, headers={"ETag": f'"{git_blob_oid(content)}"', "X-Repo-Commit": oid})


def main(argv: list[str] | None = None) -> None:
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--seconds", type=float, default=600, help="stop after this many seconds")
    args = parser.parse_args(argv)
    with HubStub(port=args.port) as hub:
        print(f"Hub stub at {hub.endpoint} (token: the DEFAULT_TOKEN in tests/hub_server.py); "
              f"stops in {args.seconds:.0f} s", flush=True)
        time.sleep(args.seconds)


if __name__ == "__main__":
    main()
