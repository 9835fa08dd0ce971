"""A faithful fake of the parts of HashiCorp Vault's HTTP API that hvac uses here.

No Vault binary can be obtained in this environment, so the tests run the REAL hvac client against this
server. It implements, with Vault's paths, status codes and JSON envelopes:

- token auth: `X-Vault-Token` on every request (403 "permission denied" otherwise),
  `GET /v1/auth/token/lookup-self`, and `GET /v1/sys/health` (no token needed);
- KV version 2 at mount `secret/`: `GET|POST|PUT|DELETE /v1/secret/data/<path>` (versions, `?version=`,
  check-and-set `options.cas`, soft delete), `GET|LIST|DELETE /v1/secret/metadata/<path>` (LIST also as
  `GET ?list=true`);
- transit at mount `transit/`: `POST|GET /v1/transit/keys/<name>`, `LIST /v1/transit/keys`,
  `POST /v1/transit/keys/<name>/rotate`, `POST /v1/transit/keys/<name>/config` (min_decryption_version),
  `POST /v1/transit/encrypt|decrypt|rewrap/<name>` with `vault:v<N>:<base64(nonce|ciphertext)>`
  ciphertexts made with AES-256-GCM, one random key per key version (encrypt creates a missing key, as
  Vault's default upsert does).

`sealed = True` makes every request answer 503 like a sealed Vault; `stop()` makes it unreachable.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class VaultError(Exception):
    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)


class FakeVault:
    """The server's state and its HTTP front; `url` and `root_token` are what a client needs."""

    def __init__(self, root_token: str = "test-root-token") -> None:
        self.root_token = root_token
        self.tokens = {root_token}
        self.sealed = False
        self.kv: dict[str, dict[str, Any]] = {}  # path -> {"versions": {n: {...}}, "current": n, ...}
        self.transit: dict[str, dict[str, Any]] = {}  # name -> {"keys": {n: bytes}, "latest": n, ...}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FakeVault:
        handler = type("Handler", (_Handler,), {"vault": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # Dispatch

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], token: str | None, body: Any
    ) -> Any:
        with self._lock:
            self.requests.append((method, path))
            if path == "/v1/sys/health":
                return {
                    "initialized": True,
                    "sealed": self.sealed,
                    "standby": False,
                    "version": "1.15.0-fake",
                }
            if self.sealed:
                raise VaultError(503, "Vault is sealed")
            if token not in self.tokens:
                raise VaultError(403, "permission denied")
            if method == "GET" and query.get("list") == ["true"]:
                method = "LIST"
            parts = path.strip("/").split("/")
            if parts[:1] != ["v1"] or len(parts) < 3:
                raise VaultError(404)
            mount, rest = parts[1], parts[2:]
            if parts[1:5] == ["auth", "token", "lookup-self"]:
                return self._envelope({"id": token, "policies": ["root"], "ttl": 0, "renewable": False})
            if mount == "secret":
                return self._kv(method, rest, query, body)
            if mount == "transit":
                return self._transit(method, rest, body)
            raise VaultError(404, f"no handler for route '{'/'.join(parts[1:])}'")

    @staticmethod
    def _envelope(data: Any) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        }

    # KV version 2

    def _kv(self, method: str, rest: list[str], query: dict[str, list[str]], body: Any) -> Any:
        kind, path = rest[0], "/".join(rest[1:])
        if kind == "data" and path:
            return self._kv_data(method, path, query, body)
        if kind == "metadata":
            return self._kv_metadata(method, path)
        raise VaultError(405)

    def _version_meta(self, entry: dict[str, Any], number: int) -> dict[str, Any]:
        version = entry["versions"][number]
        return {
            "created_time": version["created_time"],
            "custom_metadata": None,
            "deletion_time": version["deletion_time"],
            "destroyed": False,
            "version": number,
        }

    def _kv_data(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        entry = self.kv.get(path)
        if method == "GET":
            if entry is None:
                raise VaultError(404)
            number = int(query["version"][0]) if query.get("version") else entry["current"]
            if number not in entry["versions"]:
                raise VaultError(404)
            version = entry["versions"][number]
            meta = self._version_meta(entry, number)
            if version["deletion_time"]:
                return VaultError(404), {"data": {"data": None, "metadata": meta}}
            return self._envelope({"data": version["data"], "metadata": meta})
        if method in {"POST", "PUT"}:
            if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
                raise VaultError(400, "no data provided")
            cas = (body.get("options") or {}).get("cas")
            current = entry["current"] if entry else 0
            if cas is not None and int(cas) != current:
                raise VaultError(400, "check-and-set parameter did not match the current version")
            if entry is None:
                entry = self.kv[path] = {"versions": {}, "current": 0, "created_time": _now()}
            entry["current"] = current + 1
            entry["versions"][entry["current"]] = {
                "data": body["data"],
                "created_time": _now(),
                "deletion_time": "",
            }
            return self._envelope(self._version_meta(entry, entry["current"]))
        if method == "DELETE":
            if entry is not None:
                entry["versions"][entry["current"]]["deletion_time"] = _now()
            return None
        raise VaultError(405)

    def _kv_metadata(self, method: str, path: str) -> Any:
        if method == "LIST":
            prefix = f"{path.rstrip('/')}/" if path else ""
            names = set()
            for key, entry in self.kv.items():
                if key.startswith(prefix) and entry["versions"]:
                    head, sep, _ = key[len(prefix) :].partition("/")
                    names.add(head + sep)
            if not names:
                raise VaultError(404)
            return self._envelope({"keys": sorted(names)})
        entry = self.kv.get(path)
        if method == "GET":
            if entry is None:
                raise VaultError(404)
            versions = {str(n): self._version_meta(entry, n) for n in entry["versions"]}
            return self._envelope(
                {
                    "cas_required": False,
                    "created_time": entry["created_time"],
                    "current_version": entry["current"],
                    "max_versions": 0,
                    "oldest_version": min(entry["versions"]),
                    "updated_time": entry["versions"][entry["current"]]["created_time"],
                    "versions": versions,
                }
            )
        if method == "DELETE":
            self.kv.pop(path, None)
            return None
        raise VaultError(405)

    # Transit

    def _transit(self, method: str, rest: list[str], body: Any) -> Any:
        body = body or {}
        if rest == ["keys"] and method == "LIST":
            if not self.transit:
                raise VaultError(404)
            return self._envelope({"keys": sorted(self.transit)})
        if len(rest) == 2 and rest[0] == "keys":
            name = rest[1]
            if method in {"POST", "PUT"}:
                self._create_key(name)
                return None
            if method == "GET":
                return self._envelope(self._key_info(self._key(name)))
        if len(rest) == 3 and rest[0] == "keys" and method in {"POST", "PUT"}:
            key = self._key(rest[1])
            if rest[2] == "rotate":
                key["latest"] += 1
                key["keys"][key["latest"]] = (AESGCM.generate_key(bit_length=256), _now())
                return self._envelope(self._key_info(key))
            if rest[2] == "config":
                if "min_decryption_version" in body:
                    key["min_decryption_version"] = int(body["min_decryption_version"])
                return self._envelope(self._key_info(key))
        if len(rest) == 2 and method in {"POST", "PUT"}:
            operation, name = rest
            if operation == "encrypt":
                key = self.transit.get(name) or self._create_key(name)
                return self._envelope(self._encrypt(key, self._b64(body.get("plaintext"), "plaintext")))
            if operation == "decrypt":
                plaintext = self._decrypt(self._key(name), body.get("ciphertext"))
                return self._envelope({"plaintext": base64.b64encode(plaintext).decode()})
            if operation == "rewrap":
                key = self._key(name)
                return self._envelope(self._encrypt(key, self._decrypt(key, body.get("ciphertext"))))
        raise VaultError(405)

    def _create_key(self, name: str) -> dict[str, Any]:
        if name not in self.transit:
            self.transit[name] = {
                "name": name,
                "keys": {1: (AESGCM.generate_key(bit_length=256), _now())},
                "latest": 1,
                "min_decryption_version": 1,
            }
        return self.transit[name]

    def _key(self, name: str) -> dict[str, Any]:
        if name not in self.transit:
            raise VaultError(400, "encryption key not found")
        return self.transit[name]

    @staticmethod
    def _key_info(key: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": key["name"],
            "type": "aes256-gcm96",
            "latest_version": key["latest"],
            "min_decryption_version": key["min_decryption_version"],
            "min_encryption_version": 0,
            "keys": {str(n): created for n, (_, created) in key["keys"].items()},
            "deletion_allowed": False,
            "derived": False,
            "exportable": False,
            "supports_encryption": True,
            "supports_decryption": True,
        }

    @staticmethod
    def _b64(value: Any, field: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            raise VaultError(400, f"failed to base64-decode {field}") from None

    @staticmethod
    def _encrypt(key: dict[str, Any], plaintext: bytes) -> dict[str, Any]:
        version = key["latest"]
        nonce = os.urandom(12)
        sealed = AESGCM(key["keys"][version][0]).encrypt(nonce, plaintext, None)
        ciphertext = f"vault:v{version}:{base64.b64encode(nonce + sealed).decode()}"
        return {"ciphertext": ciphertext, "key_version": version}

    def _decrypt(self, key: dict[str, Any], ciphertext: Any) -> bytes:
        if not isinstance(ciphertext, str) or not ciphertext.startswith("vault:v"):
            raise VaultError(400, "invalid ciphertext: no prefix")
        try:
            _, version_text, payload = ciphertext.split(":", 2)
            version = int(version_text[1:])
        except ValueError:
            raise VaultError(400, "invalid ciphertext: wrong format") from None
        if version < key["min_decryption_version"]:
            raise VaultError(400, "ciphertext or signature version is disallowed by policy (too old)")
        if version not in key["keys"]:
            raise VaultError(400, "invalid key version")
        raw = self._b64(payload, "ciphertext")
        try:
            return AESGCM(key["keys"][version][0]).decrypt(raw[:12], raw[12:], None)
        except InvalidTag:
            raise VaultError(400, "cipher: message authentication failed") from None


class _Handler(BaseHTTPRequestHandler):
    vault: FakeVault
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the server stays quiet)
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._reply(400, {"errors": ["failed to parse JSON input"]})
            return
        try:
            result = self.vault.handle(
                self.command, url.path, parse_qs(url.query), self.headers.get("X-Vault-Token"), body
            )
        except VaultError as error:
            self._reply(error.status, {"errors": error.errors})
            return
        if isinstance(result, tuple):  # an error status that still carries a body (a deleted KV version)
            self._reply(result[0].status, result[1])
        elif result is None:
            self._reply(204, None)
        else:
            self._reply(200, result)

    def _reply(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _serve
