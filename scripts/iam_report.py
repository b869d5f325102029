#!/usr/bin/env python3
"""Per function (and for fleetctl's OperatorPolicy and AWS IoT's ClaimProvisioningRole): the actions its
role in infra/template.yaml grants against those the test suite used.

The emulator records each role's decisions (scripts/iam_local.py) in target/iam-usage/ while the suite
runs (every test binary's emulator appends there). This prints, per function, the actions used and
granted, granted but never used, and used but refused (a missing grant, unless a test refused it on
purpose: roles registered as `<function>~<why>` are a test's own and are left out).

--check fails when a grant was not used by the suite and the template does not say why it stays (a
comment line `# untested: <why>` inside the function's Policies, naming the action), or when a role was
refused an action outside a test that refuses on purpose.

Usage: iam_report.py [--usage DIR] [--template FILE] [--check]
"""

import argparse
import glob
import json
import os
import re
import sys

import yaml


def granted(template_path):
    """{binary: {action: True}} from each function's Policies and the KMS key policies naming its role,
    and {binary: {action: why}} from its `# untested:` comments."""
    text = open(template_path, encoding="utf-8").read()
    template = yaml.safe_load(text)
    resources = template.get("Resources", {})
    out, why, implied = {}, {}, {}
    binaries = {}
    for logical_id, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = res["Metadata"]["BuildProperties"]["Binary"]
        binaries[logical_id] = binary
        actions = set()
        for doc in res["Properties"].get("Policies") or []:
            for st in doc.get("Statement") or []:
                if st.get("Effect") == "Allow":
                    a = st.get("Action")
                    actions.update(a if isinstance(a, list) else [a])
        out[binary] = actions
        # SAM adds sqs:SendMessage* on an SQS on-failure destination to the function's role.
        failure = ((res["Properties"].get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")
        if (failure or {}).get("Type") == "SQS":
            implied.setdefault(binary, set()).add("sqs:SendMessage*")
    # The operators' managed policy: fleetctl's role.
    for logical_id, res in resources.items():
        if res.get("Type") == "AWS::IAM::ManagedPolicy" and logical_id == "OperatorPolicy":
            binaries[logical_id] = "fleetctl"
            actions = set()
            for st in res["Properties"]["PolicyDocument"].get("Statement") or []:
                if st.get("Effect") == "Allow":
                    a = st.get("Action")
                    actions.update(a if isinstance(a, list) else [a])
            out["fleetctl"] = actions
    # The role AWS IoT assumes for RegisterThing (the local gateway's fleet provisioning uses it).
    role = resources.get("ClaimProvisioningRole")
    if role:
        binaries["ClaimProvisioningRole"] = "claim-provisioning"
        actions = set()
        for p in role["Properties"].get("Policies") or []:
            for st in p["PolicyDocument"].get("Statement") or []:
                if st.get("Effect") == "Allow":
                    a = st.get("Action")
                    actions.update(a if isinstance(a, list) else [a])
        out["claim-provisioning"] = actions
    # Key policies: a statement whose principal is a function's role grants that function.
    for res in resources.values():
        if res.get("Type") != "AWS::KMS::Key":
            continue
        for st in res["Properties"]["KeyPolicy"].get("Statement") or []:
            if isinstance(st, dict) and "Fn::If" in st:
                st = st["Fn::If"][1]
            principal = ((st or {}).get("Principal") or {}).get("AWS")
            if isinstance(principal, dict) and "Fn::GetAtt" in principal:
                role = principal["Fn::GetAtt"][0]
                function = role[: -len("Role")] if role.endswith("Role") else role
                if function in binaries:
                    a = st.get("Action")
                    out[binaries[function]].update(a if isinstance(a, list) else [a])
    # `# untested: <action> (<why>)` comments inside a function's block (continued on the comment lines
    # that follow), naming the action they keep.
    current = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if m:
            current = binaries.get(m.group(1))
        c = re.match(r"^\s*# untested: (.*)$", line)
        if c and current:
            reason = c.group(1).strip()
            for more in lines[i + 1:]:
                cont = re.match(r"^\s*# (?!untested:)(.*)$", more)
                if not cont:
                    break
                reason += " " + cont.group(1).strip()
            actions = re.findall(r"\b[a-z0-9-]+:[A-Za-z]+\b", reason)
            text_why = re.sub(r"^[a-z0-9-]+:[A-Za-z]+\s*", "", reason).strip("() ")
            for action in actions:
                why.setdefault(current, {})[action] = text_why
    return out, why, implied


def _covers(pattern, action):
    regex = "".join(".*" if c == "*" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, action.lower()) is not None


def used(usage_dir):
    """{binary: {"allow": set, "deny": {action: resource}}}"""
    out = {}
    for path in glob.glob(os.path.join(usage_dir, "*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    u = json.loads(line)
                except ValueError:
                    continue
                function = u.get("function", "")
                if "~" in function:
                    continue  # a test's own role, refused on purpose
                entry = out.setdefault(function, {"allow": set(), "deny": {}})
                if u["decision"] == "allow":
                    entry["allow"].add(u["action"])
                else:
                    entry["deny"][u["action"]] = u.get("resource", "")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--usage", default=os.path.join(root, "target", "iam-usage"))
    parser.add_argument("--template", default=os.path.join(root, "infra", "template.yaml"))
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="the table for the README")
    args = parser.parse_args()
    grants, why, implied = granted(args.template)
    usage = used(args.usage)
    if not usage:
        print(f"no usage recorded in {args.usage}: run the test suite first", file=sys.stderr)
        return 1
    problems = []
    if args.markdown:
        print("| role | granted | used by the suite | granted, never used (kept because) |")
        print("|---|---|---|---|")
    else:
        print(f"{'function':<20} {'granted':>7} {'used':>5}  granted, never used by the suite")
    for function in sorted(grants):
        g = grants[function]
        sam = implied.get(function, set())
        u = usage.get(function, {"allow": set(), "deny": {}})
        unused = sorted(a for a in g | sam if not any(_covers(a, x) for x in u["allow"]))
        used_count = sum(1 for a in g | sam if a not in unused)
        def label(a):
            if a in sam:
                return a + " (SAM's, for its on-failure destination)"
            return a + (" (untested: kept)" if a in why.get(function, {}) else "")
        shown = ", ".join(label(a) for a in unused) or "-"
        if args.markdown:
            kept = "; ".join(
                f"`{a}` (SAM's, for its on-failure queue)" if a in sam else f"`{a}`: {why.get(function, {}).get(a, 'no reason given')}"
                for a in unused
            ) or "—"
            print(f"| {function} | {len(g | sam)} | {used_count} | {kept} |")
        else:
            print(f"{function:<20} {len(g | sam):>7} {used_count:>5}  {shown}")
        for a in unused:
            if a not in why.get(function, {}) and a not in sam:
                problems.append(f"{function}: {a} is granted, never used, and has no '# untested:' reason")
        for a, resource in sorted(u["deny"].items()):
            problems.append(f"{function}: refused {a} on {resource}")
    for p in problems:
        print("  ! " + p)
    if args.check and problems:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
