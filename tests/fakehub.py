"""A local stand-in for a model hub's HTTP API, started by the tests on 127.0.0.1: as much of it
as huggingface_hub's create_repo, upload_folder (regular uploads: each file inline in the commit)
and snapshot_download use. It keeps repositories in memory and records every request."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hub:
    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo id -> {"sha": commit, "files": {path: bytes}}
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                hub.requests.append(("POST", self.path))
                hub._post(self)

            def do_GET(self):
                hub.requests.append((self.command, self.path))
                hub._get(self)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _send(handler, code, body=b"", headers=None, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    @staticmethod
    def _body(handler) -> bytes:
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))

    def _post(self, h):
        path = h.path.split("?")[0]
        parts = path.split("/")
        if path == "/api/validate-yaml":
            self._body(h)
            return self._send(h, 200, {"errors": [], "warnings": []})
        if path == "/api/repos/create":
            request = json.loads(self._body(h))
            name = request["name"]
            repo = name if "/" in name else f"{request.get('organization') or 'user'}/{name}"
            self.repos.setdefault(repo, {"sha": "0" * 40, "files": {}})
            return self._send(h, 200, {"url": f"{self.url}/{repo}", "name": repo})
        if len(parts) >= 6 and parts[1:3] == ["api", "models"] and parts[5] == "preupload":
            request = json.loads(self._body(h))
            files = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in request["files"]
            ]
            return self._send(h, 200, {"files": files})
        if len(parts) >= 6 and parts[1:3] == ["api", "models"] and parts[5] == "commit":
            repo = f"{parts[3]}/{parts[4]}"
            files = dict(self.repos[repo]["files"])
            for line in self._body(h).decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            digest = json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in files.items()))
            sha = hashlib.sha1(digest.encode()).hexdigest()
            self.repos[repo] = {"sha": sha, "files": files}
            return self._send(h, 200, {"commitUrl": f"{self.url}/{repo}/commit/{sha}", "commitOid": sha})
        return self._send(h, 404, {"error": f"no route {path}"})

    def _get(self, h):
        path = h.path.split("?")[0]
        parts = path.split("/")
        if len(parts) >= 5 and parts[1:3] == ["api", "models"]:
            repo = f"{parts[3]}/{parts[4]}"
            if repo not in self.repos:
                return self._send(h, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            r = self.repos[repo]
            if len(parts) >= 6 and parts[5] == "tree":
                listing = [
                    {"type": "file", "path": k, "size": len(v), "oid": hashlib.sha1(v).hexdigest()}
                    for k, v in sorted(r["files"].items())
                ]
                return self._send(h, 200, listing)
            siblings = [{"rfilename": k} for k in sorted(r["files"])]
            return self._send(h, 200, {"id": repo, "modelId": repo, "sha": r["sha"], "siblings": siblings})
        if len(parts) >= 5 and parts[3] == "resolve":
            repo, name = f"{parts[1]}/{parts[2]}", "/".join(parts[5:])
            r = self.repos.get(repo)
            if r is None or name not in r["files"]:
                return self._send(h, 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            data = r["files"][name]
            headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": r["sha"]}
            return self._send(h, 200, data, headers, "application/octet-stream")
        return self._send(h, 404, {"error": f"no route {path}"})
