"""Which dependencies of a Sensor an event matches, applying its data filters the way Argo Events
does for the filters Medallion uses: gjson dotted paths into the event data (`body` is the queue
message's JSON), string values as unanchored regexes (any value matching passes), all filters of
a dependency ANDed.

usage: sensor_filters.py SENSOR.yaml EVENT_FILE ...
An event file holds a JSON event, a JSON array of events, or base64 JSON as it sits in a queue.
Prints one JSON line per event: {"file": ..., "id": ..., "matches": [dependency names]}.
"""
import base64
import json
import re
import sys

import yaml


def events(path):
    text = open(path).read().strip()
    if not text.startswith(("{", "[")):
        text = base64.b64decode(text).decode("utf-8")
    doc = json.loads(text)
    return doc if isinstance(doc, list) else [doc]


def lookup(data, path):
    for key in path.split("."):
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data


def matches(dependency, data):
    for f in dependency.get("filters", {}).get("data", []):
        if f["type"] != "string":
            raise SystemExit(f"filter type {f['type']} is not handled by this checker")
        value = lookup(data, f["path"])
        if not isinstance(value, str) or not any(re.search(v, value) for v in f["value"]):
            return False
    return True


sensor = yaml.safe_load(open(sys.argv[1]))
for path in sys.argv[2:]:
    for event in events(path):
        data = {"body": event}
        hit = [d["name"] for d in sensor["spec"]["dependencies"] if matches(d, data)]
        print(json.dumps({"file": path.rsplit("/", 1)[-1], "id": event.get("id"), "matches": hit}))
