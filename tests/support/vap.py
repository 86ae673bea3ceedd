"""A ValidatingAdmissionPolicy applied to one request as the API server applies it, its CEL run by cel-python.

No API server runs here, so this plays its admission step for the policies the program registers: the
request's operation and resource against `matchConstraints.resourceRules`, the namespace's labels against
`namespaceSelector` (matchLabels and In/NotIn/Exists/DoesNotExist expressions), then `matchConditions`
(all must hold), then each validation. The CEL variables are the API server's: `object`, `oldObject`,
`request`, `namespaceObject`.
"""

from __future__ import annotations

import celpy


def evaluate(expression: str, variables: dict):
    env = celpy.Environment()
    return env.program(env.compile(expression)).evaluate(
        {name: celpy.json_to_cel(value) for name, value in variables.items()})


def _selected(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for term in selector.get("matchExpressions") or []:
        key, op, values = term["key"], term["operator"], term.get("values") or []
        if not {"In": lambda: labels.get(key) in values, "NotIn": lambda: labels.get(key) not in values,
                "Exists": lambda: key in labels, "DoesNotExist": lambda: key not in labels}[op]():
            return False
    return True


def request(username: str, operation: str, resource: str, obj: dict, namespace: dict) -> dict:
    """An AdmissionRequest for a core (v1) object in `namespace` (a Namespace object)."""
    meta = namespace["metadata"]
    return {"uid": "r1", "kind": {"group": "", "version": "v1", "kind": obj.get("kind", "")},
            "resource": {"group": "", "version": "v1", "resource": resource}, "name": obj["metadata"]["name"],
            "namespace": meta["name"], "operation": operation, "userInfo": {"username": username}}


def refusals(policy: dict, req: dict, obj: dict, namespace: dict, old: dict | None = None) -> list[str] | None:
    """The messages of the validations the request breaks ([]: admitted); None when the policy does not match."""
    spec = policy["spec"]
    rules = spec["matchConstraints"]["resourceRules"]
    resource = req["resource"]
    if not any(resource["group"] in r["apiGroups"] and resource["version"] in r["apiVersions"]
               and resource["resource"] in r["resources"] and req["operation"] in r["operations"] for r in rules):
        return None
    labels = {"kubernetes.io/metadata.name": namespace["metadata"]["name"],  # set on every namespace
              **(namespace["metadata"].get("labels") or {})}
    if not _selected(spec["matchConstraints"].get("namespaceSelector") or {}, labels):
        return None
    namespace = {**namespace, "metadata": {**namespace["metadata"], "labels": labels}}
    variables = {"object": obj, "oldObject": old, "request": req, "namespaceObject": namespace}
    if not all(bool(evaluate(c["expression"], variables)) for c in spec.get("matchConditions") or []):
        return None
    return [str(evaluate(v["messageExpression"], variables)) if "messageExpression" in v else v["message"]
            for v in spec["validations"] if not bool(evaluate(v["expression"], variables))]
