"""Validates YAML documents against Argo's own JSON schema (../shared/argo/workflows-schema.json).

usage: argo_schema.py SCHEMA [DEFINITION]=FILE ...
An empty DEFINITION validates against the whole schema (oneOf Workflow, WorkflowTemplate, ...);
otherwise against that definition (e.g. io.argoproj.workflow.v1alpha1.ExecutorPlugin).
Prints "<n> documents valid" or every error with its path, exit 1.
"""
import json
import sys

import jsonschema
import yaml


def main():
    schema = json.load(open(sys.argv[1]))
    validator_class = jsonschema.validators.validator_for(schema)
    errors, count = [], 0
    for arg in sys.argv[2:]:
        definition, _, path = arg.partition("=")
        target = dict(schema)
        if definition:
            target = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
        validator = validator_class(target)
        for doc in yaml.safe_load_all(open(path)):
            if doc is None:
                continue
            count += 1
            for e in validator.iter_errors(doc):
                where = "/".join(str(p) for p in e.absolute_path)
                errors.append(f"{path}: {where}: {e.message[:300]}")
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(f"{count} documents valid")


main()
