"""Reads back what medallion-train logged to a real MLflow server, through its REST API.
Usage: mlflow_query.py TRACKING_URI EXPERIMENT MODEL; prints one JSON line.
"""
import json
import sys

import requests

uri, experiment, model = sys.argv[1:4]
api = f"{uri}/api/2.0/mlflow"
exp = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": experiment}).json()["experiment"]
runs = requests.post(f"{api}/runs/search", json={"experiment_ids": [exp["experiment_id"]]}).json().get("runs", [])
out = {"experiment_id": exp["experiment_id"], "runs": []}
for run in runs:
    info, data = run["info"], run["data"]
    artifacts = requests.get(f"{api}/artifacts/list", params={"run_id": info["run_id"]}).json().get("files", [])
    out["runs"].append({
        "run_id": info["run_id"],
        "status": info["status"],
        "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])},
        "params": {p["key"]: p["value"] for p in data.get("params", [])},
        "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
        "artifacts": sorted(a["path"] for a in artifacts),
    })
versions = requests.get(f"{uri}/api/2.0/mlflow/model-versions/search", params={"filter": f"name='{model}'"}).json()
out["registered"] = [{"version": v["version"], "run_id": v.get("run_id"), "source": v.get("source")} for v in versions.get("model_versions", [])]
card = requests.get(f"{uri}/get-artifact", params={"path": "card.html", "run_uuid": runs[0]["info"]["run_id"]}) if runs else None
out["card_bytes"] = len(card.content) if card is not None and card.ok else 0
print(json.dumps(out))
