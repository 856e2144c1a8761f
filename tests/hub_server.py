"""A small local stand-in for the Hugging Face Hub's HTTP API (tests only).

It implements what ``huggingface_hub`` 2.4 uses to create a model or Space repo, commit to it (regular
files inline, LFS files through the LFS batch API with basic PUT transfer), create branches and
pull-request refs, and what ``snapshot_download`` / ``hf_hub_download`` use to read it back
(revision info, recursive tree listing, ``resolve/`` HEAD and GET). Commits are atomic: every
LFS object a commit names must already be uploaded or nothing changes. ``auth_check`` is
answered too; a repo with ``Repo.gated`` set refuses its files (403 GatedRepo), like a gated
model whose license the token's account has not accepted.

Xet is not implemented: clients must set ``HF_HUB_DISABLE_XET=1`` (huggingface_hub uploads LFS
files through Xet whenever the ``hf_xet`` package is importable, see
``huggingface_hub.utils._runtime.is_xet_available``).

``HubState.fail`` injects errors: ``{"lfs_put": [507], "commit": [503]}`` makes the next request
of that kind answer with the popped status. ``HubState.requests`` records every request.
Run standalone with ``python tests/hub_server.py --port 8123 --token hf_x``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".pt", ".png", ".gguf")
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
_TYPES = "(models|datasets|spaces)"
_REPO = r"([^/]+/[^/]+)"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool = False
    gated: bool = False  # files and auth-check answer 403 GatedRepo (no token has access)
    refs: dict[str, str] = field(default_factory=dict)  # ref name -> commit sha
    commits: dict[str, dict] = field(default_factory=dict)  # sha -> {files, message, parent}

    def snapshot(self, rev: str) -> tuple[str, dict[str, dict]] | None:
        sha = self.refs.get(rev, rev if rev in self.commits else None)
        return (sha, self.commits[sha]["files"]) if sha else None


@dataclass
class HubState:
    token: str
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def commit(self, repo: Repo, ref: str, files: dict[str, dict], message: str) -> str:
        sha = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
        repo.commits[sha] = {"files": files, "message": message, "parent": repo.refs.get(ref)}
        repo.refs[ref] = sha
        return sha

    def add_folder(self, repo_id: str, folder, message: str = "seed") -> str:
        """Seed a repo with a local folder's files (LFS for weights), as a push would."""
        from pathlib import Path

        files: dict[str, dict] = {".gitattributes": {"data": GITATTRIBUTES}}
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            data, rel = path.read_bytes(), path.relative_to(folder).as_posix()
            if rel.endswith(LFS_SUFFIXES) or len(data) >= LFS_MIN_SIZE:
                oid = hashlib.sha256(data).hexdigest()
                self.lfs[oid] = data
                files[rel] = {"lfs": oid}
            else:
                files[rel] = {"data": data}
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo())
            return self.commit(repo, "main", files, message)

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        """The repo's files at ``rev`` as path -> bytes."""
        _, files = self.repos[repo_id].snapshot(rev)
        return {path: self.file_bytes(entry) for path, entry in files.items()}

    def file_bytes(self, entry: dict) -> bytes:
        return self.lfs[entry["lfs"]] if entry.get("lfs") else entry["data"]


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubState  # set on the subclass made by serve()

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    # --- plumbing --------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.state.requests.append((method, url.path))
        try:
            for pattern, meth, func in ROUTES:
                match = re.fullmatch(pattern, url.path)
                if match and meth == method.replace("HEAD", "GET"):
                    return func(self, *[unquote(g) if g else g for g in match.groups()])
            raise HubError(404, f"no route for {method} {url.path}")
        except HubError as err:
            self._send(err.status, {"error": str(err)}, err.headers | (
                {"X-Error-Code": err.code} if err.code else {}) | {"X-Error-Message": str(err)})

    def do_GET(self): self._dispatch("GET")
    def do_HEAD(self): self._dispatch("HEAD")
    def do_POST(self): self._dispatch("POST")
    def do_PUT(self): self._dispatch("PUT")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self):
        return json.loads(self._body() or b"{}")

    def _send(self, status: int, payload=None, headers=None, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        if raw is None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _failure(self, kind: str) -> None:
        with self.state.lock:
            pending = self.state.fail.get(kind)
            status = pending.pop(0) if pending else None
        if status:
            self._body()  # drain the request so the connection stays usable
            raise HubError(status, f"injected failure on {kind}")

    def _auth(self, write: bool, repo: Repo | None = None) -> None:
        if not write and not (repo and repo.private):
            return
        if self.headers.get("authorization") != f"Bearer {self.state.token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_id: str, write: bool = False) -> Repo:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        self._auth(write, repo)
        return repo

    def _rev(self, repo: Repo, rev: str) -> tuple[str, dict[str, dict]]:
        snap = repo.snapshot(rev)
        if snap is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return snap

    # --- write side -------------------------------------------------------------------------
    def create_repo(self) -> None:
        self._auth(write=True)
        self._failure("create_repo")
        payload = self._json()
        repo_id = f"{payload['organization']}/{payload['name']}"
        with self.state.lock:
            if repo_id in self.state.repos:  # the Hub's 409 names the existing repo's url
                return self._send(409, {"error": "You already created this repo",
                                        "url": f"{self.server.base_url}/{repo_id}"})
            repo = Repo(private=payload.get("visibility") == "private")
            self.state.repos[repo_id] = repo
            self.state.commit(repo, "main", {".gitattributes": {"data": GITATTRIBUTES}},
                              "initial commit")
        self._send(200, {"url": f"{self.server.base_url}/{repo_id}", "name": repo_id})

    def preupload(self, _type, repo_id, rev) -> None:
        repo = self._repo(repo_id, write=True)
        _, files = repo.snapshot(rev) or repo.snapshot("main")
        out = []
        for item in self._json()["files"]:
            lfs = item["path"].endswith(LFS_SUFFIXES) or item["size"] >= LFS_MIN_SIZE
            remote = files.get(item["path"])
            oid = None if remote is None else (remote.get("lfs") or git_blob_sha1(remote["data"]))
            out.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False, "oid": oid})
        self._send(200, {"files": out, "commitOid": repo.refs.get(rev)})

    def lfs_batch(self, repo_id) -> None:
        self._repo(repo_id, write=True)
        objects = []
        for obj in self._json()["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.state.lfs:
                base = self.server.base_url
                entry["actions"] = {"upload": {"href": f"{base}/lfs-upload/{obj['oid']}"},
                                    "verify": {"href": f"{base}/lfs-verify"}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects})

    def lfs_put(self, oid) -> None:
        self._failure("lfs_put")
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        with self.state.lock:
            self.state.lfs[oid] = data
        self._send(200, {})

    def lfs_verify(self) -> None:
        payload = self._json()
        if payload["oid"] not in self.state.lfs:
            raise HubError(404, f"LFS object {payload['oid']} was not uploaded")
        self._send(200, {})

    def commit(self, _type, repo_id, rev) -> None:
        repo = self._repo(repo_id, write=True)
        self._failure("commit")
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        with self.state.lock:
            _base_sha, files = self._rev(repo, rev)
            files = dict(files)
            for line in lines[1:]:  # line 0 is the header (summary, description)
                files.update(self._apply(line, files))
            ref = rev
            if self.query.get("create_pr"):
                ref = f"refs/pr/{1 + sum(r.startswith('refs/pr/') for r in repo.refs)}"
            sha = self.state.commit(repo, ref, files, lines[0]["value"]["summary"])
        pr_url = f"{self.server.base_url}/{repo_id}/discussions/{ref.rsplit('/', 1)[-1]}"
        self._send(200, {"commitUrl": f"{self.server.base_url}/{repo_id}/commit/{sha}",
                         "commitOid": sha, "pullRequestUrl": pr_url if ref != rev else None})

    def _apply(self, line: dict, files: dict) -> dict:
        value = line["value"]
        if line["key"] == "file":
            return {value["path"]: {"data": base64.b64decode(value["content"])}}
        if line["key"] == "lfsFile":
            if value["oid"] not in self.state.lfs:
                raise HubError(422, f"LFS object for {value['path']} was never uploaded")
            return {value["path"]: {"lfs": value["oid"]}}
        if line["key"] == "deletedFile":
            files.pop(value["path"], None)
            return {}
        raise HubError(400, f"unsupported commit operation {line['key']}")

    def create_branch(self, _type, repo_id, branch) -> None:
        repo = self._repo(repo_id, write=True)
        payload = self._json()
        with self.state.lock:
            if branch in repo.refs:
                raise HubError(409, f"Reference {branch} already exists")
            repo.refs[branch] = self._rev(repo, payload.get("startingPoint") or "main")[0]
        self._send(200, {})

    def validate_yaml(self) -> None:
        import yaml

        content = self._json().get("content", "")
        try:
            if content.startswith("---"):
                yaml.safe_load(content.split("---", 2)[1])
        except yaml.YAMLError as exc:
            raise HubError(400, f"invalid YAML: {exc}") from None
        self._send(200, {"errors": [], "warnings": []})

    # --- read side ---------------------------------------------------------------------------
    def repo_info(self, _type, repo_id, rev) -> None:
        repo = self._repo(repo_id)
        sha, files = self._rev(repo, rev or "main")
        self._send(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                         "gated": "manual" if repo.gated else False,
                         "tags": [], "siblings": [{"rfilename": p} for p in sorted(files)]})

    def auth_check(self, _type, repo_id) -> None:
        repo = self._repo(repo_id)
        self._gate(repo, repo_id)
        self._send(200, {})

    def _gate(self, repo: Repo, repo_id: str) -> None:
        if repo.gated:
            raise HubError(403, f"Access to model {repo_id} is restricted", "GatedRepo")

    def tree(self, _type, repo_id, rev, prefix) -> None:
        repo = self._repo(repo_id)
        _, files = self._rev(repo, rev)
        prefix = (prefix or "").strip("/")
        recursive = self.query.get("recursive", ["False"])[0].lower() == "true"
        entries, folders = [], set()
        for path in sorted(files):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:] if prefix else path
            if "/" in rest and not recursive:
                folders.add(f"{prefix}/{rest.split('/')[0]}".strip("/"))
                continue
            entries.append(self._tree_entry(path, files[path]))
        if prefix and not entries and not folders:
            raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in folders]
        self._send(200, entries)

    def _tree_entry(self, path: str, entry: dict) -> dict:
        data = self.state.file_bytes(entry)
        out = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        if entry.get("lfs"):
            out["lfs"] = {"oid": entry["lfs"], "size": len(data), "pointerSize": 134}
        return out

    def resolve(self, _type, repo_id, rev, path) -> None:
        repo = self._repo(repo_id)
        self._gate(repo, repo_id)
        sha, files = self._rev(repo, rev)
        entry = files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound",
                           {"X-Repo-Commit": sha})
        data = self.state.file_bytes(entry)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"'}
        if entry.get("lfs"):
            headers |= {"X-Linked-Etag": f'"{entry["lfs"]}"', "X-Linked-Size": len(data)}
        self._send(200, headers=headers | {"Content-Type": "application/octet-stream"}, raw=data)


ROUTES = [
    (r"/api/repos/create", "POST", Handler.create_repo),
    (r"/api/validate-yaml", "POST", Handler.validate_yaml),
    (rf"/api/{_TYPES}/{_REPO}/preupload/([^/]+)", "POST", Handler.preupload),
    (rf"/api/{_TYPES}/{_REPO}/commit/([^/]+)", "POST", Handler.commit),
    (rf"/api/{_TYPES}/{_REPO}/branch/([^/]+)", "POST", Handler.create_branch),
    (rf"/api/{_TYPES}/{_REPO}/tree/([^/]+)(?:/(.*))?", "GET", Handler.tree),
    (rf"/api/{_TYPES}/{_REPO}/auth-check", "GET", Handler.auth_check),
    (rf"/api/{_TYPES}/{_REPO}(?:/revision/([^/]+))?", "GET", Handler.repo_info),
    (rf"/(?:spaces/|datasets/)?{_REPO}\.git/info/lfs/objects/batch", "POST", Handler.lfs_batch),
    (r"/lfs-upload/([0-9a-f]{64})", "PUT", Handler.lfs_put),
    (r"/lfs-verify", "POST", Handler.lfs_verify),
    (rf"/(spaces/|datasets/)?{_REPO}/resolve/([^/]+)/(.+)", "GET", Handler.resolve),
]


def serve(token: str, port: int = 0) -> tuple[ThreadingHTTPServer, HubState]:
    """Start the server on 127.0.0.1 in a daemon thread; call ``server.shutdown()`` to stop."""
    state = HubState(token=token)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8123, help="port on 127.0.0.1")
    parser.add_argument("--token", default="hf_local_test_token", help="accepted write token")
    args = parser.parse_args()
    srv, _ = serve(args.token, args.port)
    print(f"HF_ENDPOINT={srv.base_url} HF_HUB_DISABLE_XET=1  (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.shutdown()
