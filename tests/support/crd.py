"""Custom resources checked against their CRD's own openAPIV3Schema, strictly."""

from __future__ import annotations


def strict(schema):
    """The API server prunes fields a CRD does not know, so a misspelt field would vanish silently: refuse
    unknown fields wherever the schema lists properties (and does not preserve unknown fields)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema
