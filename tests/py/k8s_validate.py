"""Validates Kubernetes objects (YAML files, one or more documents each) against the Kubernetes
JSON schemas bundled by PyPI's kubernetes-validate, strictly (unknown fields are errors).

usage: k8s_validate.py VERSION FILE ...
Prints "<n> objects valid" or every error with its file, kind and name, exit 1.
"""
import sys

import kubernetes_validate
import yaml


def main():
    version = sys.argv[1]
    errors, count = [], 0
    for path in sys.argv[2:]:
        for doc in yaml.safe_load_all(open(path)):
            if doc is None:
                continue
            count += 1
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                name = doc.get("metadata", {}).get("name")
                errors.append(f"{path}: {doc.get('kind')} {name}: {'.'.join(map(str, e.path))}: {e.message}")
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(f"{count} objects valid")


main()
