"""Prints the YAML documents of a file as one JSON list."""
import json
import sys

import yaml

print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))
