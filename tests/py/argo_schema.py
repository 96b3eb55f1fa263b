"""Validates YAML documents against Argo's own JSON schema (../shared/argo/workflows-schema.json).

usage: argo_schema.py SCHEMA [DEFINITION]=FILE ...
An empty DEFINITION validates each document against the schema's oneOf branch for its `kind`
(Workflow, WorkflowTemplate, Sensor, ...), so errors point into that branch; otherwise against
that definition (e.g. io.argoproj.workflow.v1alpha1.ExecutorPlugin).
Prints "<n> documents valid" or every error with its path, exit 1.
"""
import json
import sys
import warnings

import jsonschema
import yaml

# Argo Events' schema names a draft URL jsonschema does not know; the latest draft is used.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    schema = json.load(open(sys.argv[1]))
    validator_class = jsonschema.validators.validator_for(schema)
    definitions = schema["definitions"]
    by_kind = {}
    for branch in schema.get("oneOf", []):
        name = branch["$ref"].rsplit("/", 1)[-1]
        kind = definitions[name].get("properties", {}).get("kind", {}).get("const")
        if kind:
            by_kind[kind] = name
    errors, count = [], 0
    for arg in sys.argv[2:]:
        definition, _, path = arg.partition("=")
        for doc in yaml.safe_load_all(open(path)):
            if doc is None:
                continue
            count += 1
            name = definition or by_kind.get(doc.get("kind") if isinstance(doc, dict) else None)
            if name is None:
                errors.append(f"{path}: kind {doc.get('kind')!r} is none of {sorted(by_kind)}")
                continue
            validator = validator_class({"$ref": f"#/definitions/{name}", "definitions": definitions})
            for e in validator.iter_errors(doc):
                where = "/".join(str(p) for p in e.absolute_path)
                errors.append(f"{path}: {where}: {e.message[:300]}")
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(f"{count} documents valid")


main()
