"""Calls medallion-serve with the real KServe V2 client (tritonclient.http): health, metadata,
then inference over every row of a CSV whose columns are the model's inputs, once with binary
tensors (the client's default) and once with JSON tensors. Prints one JSON line.
Usage: triton_infer.py HOST:PORT MODEL inputs.csv
"""
import csv
import json
import sys

import numpy as np
import tritonclient.http as http

url, model, path = sys.argv[1:4]
client = http.InferenceServerClient(url=url)
assert client.is_server_live(), "not live"
assert client.is_server_ready(), "not ready"
assert client.is_model_ready(model), "model not ready"
meta = client.get_model_metadata(model)
with open(path) as f:
    rows = list(csv.DictReader(f))


def tensors(binary):
    out = []
    for spec in meta["inputs"]:
        name, dt = spec["name"], spec["datatype"]
        column = [r[name] for r in rows]
        if dt == "FP64":
            data = np.array([float(v) for v in column], dtype=np.float64)
        elif dt == "BOOL":
            data = np.array([float(v) != 0 for v in column], dtype=np.bool_)
        else:
            data = np.array(column, dtype=np.object_)
        t = http.InferInput(name, [len(rows)], dt)
        t.set_data_from_numpy(data, binary_data=binary)
        out.append(t)
    return out


binary = client.infer(model, tensors(True)).as_numpy(meta["outputs"][0]["name"])
requested = [http.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=False)]
as_json = client.infer(model, tensors(False), outputs=requested).as_numpy(meta["outputs"][0]["name"])
print(json.dumps({
    "metadata": meta,
    "binary": [float(x) for x in binary],
    "json": [float(x) for x in as_json],
}))
