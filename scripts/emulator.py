#!/usr/bin/env python3
"""fleetguard's local AWS emulator: moto in server mode, configured to behave like AWS where we rely on it.

What this launcher adds on top of plain `moto_server`:
  * `iot.use_valid_cert` is on, so a certificate id is SHA-256 of the DER (as on AWS), not of the PEM text.
  * `GET  /_fleetguard/published`   every message published through the IoT data plane (for assertions only).
  * `GET  /_fleetguard/disconnects` every DeleteConnection call (moto answers those with HTTP 500; we record
                                    and acknowledge them, as AWS would for a connected client).
  * `GET  /_fleetguard/calls`       a count of AWS API calls per operation since the last reset
                                    (`?contains=S`: only the recent calls whose path or body contains S).
  * `POST /_fleetguard/faults`      {"operation": "iot:PUT /target-policies/{id}", "nth": 1, "times": 3,
                                    "status": 500}: starting with the Nth next call of that operation, fail
                                    `times` calls in a row (fault injection for tests; operation names are
                                    those `/_fleetguard/calls` reports; `"error": "<AWS error code>"`
                                    answers with that code, e.g. a 404 ResourceNotFoundException).
                                    `"every": K` instead fails every Kth call from then on, until
                                    the faults are dropped (a steady throttling rate for load runs);
                                    an operation `"dynamodb:*"` matches every call of that service.
  * `GET  /_fleetguard/faults`      how many calls each fault has failed so far.
  * `DELETE /_fleetguard/faults`    drops faults not yet spent.
  * `POST /_fleetguard/reset`       moto's reset plus ours.
  * CreateThing behaves as on AWS: the same name and configuration return the existing thing, a different
    configuration is ResourceAlreadyExistsException (moto replaces the thing, wiping its attributes).
  * ListCACertificates (`GET /cacertificates`, which moto lacks) answers from moto's registered CAs, one page.
  * A CA's auto-registration is kept as AWS keeps it (RegisterCACertificate `allowAutoRegistration`,
    UpdateCACertificate `newAutoRegistrationStatus`) and DescribeCACertificate reports it
    (`autoRegistrationStatus`); DescribeCertificate names a certificate's CA (`caCertificateId`).
    moto drops both, and the local gateway's JITR reads them.
  * IAM as AWS applies it (scripts/iam_local.py): `POST /_fleetguard/iam/roles` registers a stack's
                                    function roles; their requests are authorized against those
                                    policies (AccessDeniedException as AWS answers it);
                                    `GET /_fleetguard/iam/usage` what each role used and was refused;
                                    STS GetCallerIdentity names a role's key's session (no permission
                                    needed, as on AWS).
  * exits when its parent process dies, so a test run never leaves an emulator behind.

Usage: emulator.py [--host 127.0.0.1] [--port 5000] [--watch-parent]
"""

import argparse
import base64
import collections
import io
import json
import os
import sys
import threading
import time
import urllib.parse
from collections import Counter

from moto.core.config import default_user_config

# Must be set before any certificate is registered: AWS computes the id over the DER bytes.
default_user_config["iot"]["use_valid_cert"] = True

from moto.iotdata.models import iotdata_backends  # noqa: E402
from moto.moto_api import _internal  # noqa: E402,F401
from moto.moto_api._internal.models import moto_api_backend  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.iot.exceptions import (  # noqa: E402
    InvalidStateTransitionException,
    ResourceAlreadyExistsException,
)
from moto.iot.models import IoTBackend  # noqa: E402
from werkzeug.serving import run_simple  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iam_local  # noqa: E402

_roles = iam_local.Roles()


def _key_policy(region, key_id):
    """(key id, key policy) of a KMS key named by id, ARN or alias; (None, None) if unknown."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kms.models import kms_backends

    backend = kms_backends[DEFAULT_ACCOUNT_ID][region]
    try:
        resolved = backend.any_id_to_key_id(key_id)
        return resolved, json.loads(backend.describe_key(resolved).policy)
    except Exception:  # noqa: BLE001 an unknown key: KMS answers NotFound after authorization
        return None, None

_moto_create_thing = IoTBackend.create_thing


def _create_thing_as_aws(self, thing_name, thing_type_name, attribute_payload, billing_group_name=None):
    """API_CreateThing: "If this call is made multiple times using the same thing name and configuration,
    the call will succeed. If this call is made with the same thing name but different configuration a
    ResourceAlreadyExistsException is thrown." """
    existing = next((t for t in self.things.values() if t.thing_name == thing_name), None)
    if existing is None:
        return _moto_create_thing(self, thing_name, thing_type_name, attribute_payload, billing_group_name)
    attributes = (attribute_payload or {}).get("attributes") or {}
    existing_type = existing.thing_type.thing_type_name if existing.thing_type else None
    if attributes == existing.attributes and (thing_type_name or None) == existing_type:
        return existing
    raise ResourceAlreadyExistsException("thing already exists", thing_name, existing.arn)


IoTBackend.create_thing = _create_thing_as_aws

_moto_update_certificate = IoTBackend.update_certificate


def _update_certificate_as_aws(self, certificate_id, new_status):
    """API_UpdateCertificate: a REVOKED certificate cannot be set to another status (AWS answers
    InvalidStateTransitionException; moto accepts any transition)."""
    cert = self.describe_certificate(certificate_id)
    if cert.status == "REVOKED" and new_status != "REVOKED":
        raise InvalidStateTransitionException("a REVOKED certificate cannot change status")
    return _moto_update_certificate(self, certificate_id, new_status)


IoTBackend.update_certificate = _update_certificate_as_aws

from moto.core.responses import ActionResult  # noqa: E402
from moto.iot.models import FakeCaCertificate, FakeCertificate  # noqa: E402
from moto.iot.responses import IoTResponse  # noqa: E402

_moto_certificate_description = FakeCertificate.to_description_dict


def _certificate_description_as_aws(self):
    """API_CertificateDescription has caCertificateId; API_CACertificateDescription has
    autoRegistrationStatus (ENABLE | DISABLE). moto reports neither."""
    d = _moto_certificate_description(self)
    if isinstance(self, FakeCaCertificate):
        d["autoRegistrationStatus"] = getattr(self, "auto_registration_status", "DISABLE")
    elif self.ca_certificate_id:
        d["caCertificateId"] = self.ca_certificate_id
    return d


FakeCertificate.to_description_dict = _certificate_description_as_aws


def _register_ca_certificate_as_aws(self):
    """API_RegisterCACertificate, keeping `allowAutoRegistration` (moto ignores it)."""
    cert = self.iot_backend.register_ca_certificate(
        ca_certificate=self._get_param("caCertificate"),
        set_as_active=self._get_bool_param("setAsActive"),
        registration_config=self._get_param("registrationConfig"),
    )
    cert.auto_registration_status = "ENABLE" if self._get_bool_param("allowAutoRegistration") else "DISABLE"
    return ActionResult({"certificateId": cert.certificate_id, "certificateArn": cert.arn})


IoTResponse.register_ca_certificate = _register_ca_certificate_as_aws
_moto_update_ca_certificate = IoTResponse.update_ca_certificate


def _update_ca_certificate_as_aws(self):
    """API_UpdateCACertificate, with `newAutoRegistrationStatus` (moto ignores it)."""
    status = self._get_param("newAutoRegistrationStatus")
    result = _moto_update_ca_certificate(self)
    if status in ("ENABLE", "DISABLE"):
        cert = self.iot_backend.describe_ca_certificate(self.path.split("/")[-1])
        cert.auto_registration_status = status
    return result


IoTResponse.update_ca_certificate = _update_ca_certificate_as_aws

# TransactWriteItems: moto backs up every table a transaction names with a deep copy, before every
# transaction, to restore it if a condition fails: O(table size) per transaction, quadratic over a
# load run (the audit table grows with every decision). With one DynamoDB request at a time (see
# `_dynamodb_lock`), backing up only the items the transaction writes is as atomic, so the tables
# are no longer copied and the written items are put back on failure.
import copy as _copy  # noqa: E402

import moto.dynamodb.models as _ddb_models  # noqa: E402
from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.models.table import Table as _DdbTable  # noqa: E402


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: tables are not deep-copied."""

    @staticmethod
    def deepcopy(x, memo=None):
        return x if isinstance(x, _DdbTable) else _copy.deepcopy(x, memo)


_ddb_models.copy = _TablesNotCopied
_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_write_items_item_backup(self, transact_items):
    saved = []
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            name = op["TableName"]
            table = self.get_table(name)
            key = op.get("Key") or {
                a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a is not None
            }
            old = self.get_item(name, key)
            saved.append((name, key, None if old is None else old.to_json()["Attributes"]))
        except Exception:  # noqa: BLE001 the transaction itself reports what is wrong with it
            pass
    try:
        return _moto_transact_write_items(self, transact_items)
    except Exception:
        for name, key, attrs in reversed(saved):
            if attrs is None:
                if self.get_item(name, key) is not None:
                    self.delete_item(name, key)
            else:
                self.put_item(name, attrs)
        raise


DynamoDBBackend.transact_write_items = _transact_write_items_item_backup

_lock = threading.Lock()
_disconnects: list = []
_calls: Counter = Counter()
_dynamodb_lock = threading.Lock()
# The latest requests as (operation, path + body), for counts scoped to one test's resources.
_requests: collections.deque = collections.deque(maxlen=50_000)
_faults: list = []  # [{"operation", "skip", "times", "status", "error", "every", "seen", "failed"}]
_spent: list = []  # faults used up, kept for GET /_fleetguard/faults


def _matches(pattern, op):
    """A fault's operation: exact ('dynamodb:GetItem'), without its service ('GetItem'), or a whole
    service ('dynamodb:*')."""
    if pattern.endswith(":*"):
        return op.startswith(pattern[:-1])
    return pattern in (op, op.split(":", 1)[-1])


def _json(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _published():
    out = []
    for account, regions in iotdata_backends.items():
        for region, backend in regions.items():
            for topic, payload in backend.published_payloads:
                raw = payload if isinstance(payload, bytes) else str(payload).encode()
                out.append(
                    {
                        "account": account,
                        "region": region,
                        "topic": topic,
                        "payload_b64": base64.b64encode(raw).decode(),
                    }
                )
    return out


def _operation(environ):
    """Best-effort 'service:Operation' name of an AWS request, for call counting and faults."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in auth:
        try:
            service = auth.split("Credential=")[1].split(",")[0].split("/")[3]
        except IndexError:
            service = ""
    if target:  # JSON protocol (DynamoDB): DynamoDB_20120810.GetItem
        return f"{service or 'dynamodb'}:{target.split('.')[-1]}"
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "")
    return f"{service}:{method} {_route(path)}"


def _region(environ):
    """The region of a SigV4-signed request (its credential scope), us-east-1 if unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        return auth.split("Credential=")[1].split(",")[0].split("/")[2]
    except IndexError:
        return "us-east-1"


def _route(path):
    """Collapse identifiers out of a REST path so counts group by operation."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/"
    return "/" + parts[0] + ("/{id}" if len(parts) > 1 else "")


class Launcher:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/_fleetguard/"):
            return self.control(path, method, environ, start_response)
        op = _operation(environ)
        # Keep what identifies the request's resources (path and body), so a test sharing the emulator
        # can count only its own calls (`/_fleetguard/calls?contains=<its table prefix or id>`).
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with _lock:
            _calls[op] += 1
            _requests.append((op, path + "\n" + body[:65536].decode("utf-8", "replace")))
        from moto.core import DEFAULT_ACCOUNT_ID

        refused = _roles.authorize(environ, body, DEFAULT_ACCOUNT_ID, _key_policy)
        if refused is not None:
            status, headers, payload = refused
            data = json.dumps(payload).encode()
            start_response(status, headers + [("Content-Length", str(len(data)))])
            return [data]
        with _lock:
            for fault in list(_faults):
                if _matches(fault["operation"], op) and fault["path_contains"] in path:
                    if fault["every"]:
                        fault["seen"] += 1
                        if fault["seen"] % fault["every"] != 0:
                            continue
                        fault["failed"] += 1
                        return _json(
                            start_response,
                            f"{fault['status']} Injected",
                            {"__type": fault["error"], "message": "fleetguard injected fault"},
                        )
                    fault["skip"] -= 1
                    if fault["skip"] < 0:
                        fault["times"] -= 1
                        fault["failed"] += 1
                        if fault["times"] <= 0:
                            _faults.remove(fault)
                            _spent.append(fault)
                        return _json(
                            start_response,
                            f"{fault['status']} Injected",
                            {"__type": fault["error"], "message": "fleetguard injected fault"},
                        )
        # STS GetCallerIdentity: the caller's own ARN, no permission needed (moto answers the deployer's).
        identity = _roles.caller_identity(environ, body, DEFAULT_ACCOUNT_ID)
        if identity is not None:
            status, headers, data = identity
            start_response(status, headers + [("Content-Length", str(len(data)))])
            return [data]
        # AWS IoT ListCACertificates: GET /cacertificates (the expiry watch). moto lacks it; one page.
        if method == "GET" and path.rstrip("/") == "/cacertificates" and op.startswith("iot:"):
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.iot.models import iot_backends

            backend = iot_backends[DEFAULT_ACCOUNT_ID][_region(environ)]
            certificates = [
                {
                    "certificateArn": c.arn,
                    "certificateId": c.certificate_id,
                    "status": c.status,
                    "creationDate": c.creation_date.timestamp(),
                }
                for c in backend.ca_certificates.values()
            ]
            return _json(start_response, "200 OK", {"certificates": certificates})
        # IoT data plane DeleteConnection: DELETE /connections/{clientId}. moto lacks it.
        if method == "DELETE" and path.startswith("/connections/"):
            client_id = path[len("/connections/") :]
            with _lock:
                _disconnects.append({"client_id": client_id, "query": environ.get("QUERY_STRING", "")})
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        if op.startswith("dynamodb:"):
            # moto applies a transaction by copying the tables and restoring the copy when a condition
            # fails, with no lock: a failed transaction racing another write can undo that write, and
            # a read can see half a transaction. DynamoDB is atomic; one DynamoDB request at a time
            # here makes moto so too (it is single-threaded Python under the GIL anyway).
            with _dynamodb_lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)

    def control(self, path, method, environ, start_response):
        if path == "/_fleetguard/health":
            return _json(start_response, "200 OK", {"ok": True})
        if path == "/_fleetguard/published":
            return _json(start_response, "200 OK", _published())
        if path == "/_fleetguard/disconnects":
            with _lock:
                return _json(start_response, "200 OK", list(_disconnects))
        if path == "/_fleetguard/calls":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            with _lock:
                if "contains" in query:
                    needle = query["contains"][0]
                    scoped = Counter(op for op, text in _requests if needle in text)
                    return _json(start_response, "200 OK", dict(scoped))
                return _json(start_response, "200 OK", dict(_calls))
        if path == "/_fleetguard/iam/roles" and method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            _roles.register(json.loads(environ["wsgi.input"].read(size) or b"{}"))
            return _json(start_response, "200 OK", {"ok": True})
        if path == "/_fleetguard/iam/authorize" and method == "POST":
            from moto.core import DEFAULT_ACCOUNT_ID

            size = int(environ.get("CONTENT_LENGTH") or 0)
            q = json.loads(environ["wsgi.input"].read(size) or b"{}")
            answer = _roles.check(
                q.get("access_key_id", ""), q.get("session_token", ""), q.get("action", ""),
                q.get("resource", ""), DEFAULT_ACCOUNT_ID, q.get("region", "us-east-1"), _key_policy,
            )
            return _json(start_response, "200 OK", answer)
        if path == "/_fleetguard/iam/usage":
            return _json(start_response, "200 OK", _roles.usage())
        if path == "/_fleetguard/faults" and method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            spec = json.loads(environ["wsgi.input"].read(size) or b"{}")
            with _lock:
                _faults.append(
                    {
                        "operation": spec["operation"],
                        "skip": int(spec.get("nth", 1)) - 1,
                        "times": int(spec.get("times", 1)),
                        # Scopes a fault to one test's resources when tests share the emulator.
                        "path_contains": str(spec.get("path_contains", "")),
                        "status": int(spec.get("status", 500)),
                        # The error code AWS would send, e.g. ResourceNotFoundException with 404.
                        "error": str(spec.get("error", "InternalFailure")),
                        "every": int(spec.get("every", 0)),
                        "seen": 0,
                        "failed": 0,
                    }
                )
            return _json(start_response, "200 OK", {"ok": True})
        if path == "/_fleetguard/faults" and method == "GET":
            with _lock:
                return _json(
                    start_response,
                    "200 OK",
                    [{k: f[k] for k in ("operation", "every", "failed")} for f in _faults + _spent],
                )
        if path == "/_fleetguard/faults" and method == "DELETE":
            with _lock:
                _faults.clear()
                _spent.clear()
            return _json(start_response, "200 OK", {"ok": True})
        if path == "/_fleetguard/reset" and method == "POST":
            moto_api_backend.reset()
            _roles.reset()
            with _lock:
                _disconnects.clear()
                _calls.clear()
                _requests.clear()
                _faults.clear()
                _spent.clear()
            return _json(start_response, "200 OK", {"ok": True})
        return _json(start_response, "404 Not Found", {"error": "unknown control path"})


def _watch_parent():
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--watch-parent", action="store_true", help="exit when the parent process exits")
    args = parser.parse_args()
    if args.watch_parent:
        threading.Thread(target=_watch_parent, daemon=True).start()
    app = Launcher(DomainDispatcherApplication(create_backend_app))
    print(f"fleetguard emulator on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
