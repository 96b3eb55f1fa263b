"""Checks a medallion profile.json against pandas on the same Parquet: for every int/float column,
describe()'s count, mean, std, min, 25%, 50%, 75% and max within 1e-9 relative; nulls; exact
distinct counts; top values of text columns.
Usage: describe_check.py <profile.json> <version-dir>
"""
import json
import math
import os
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def close(a, b):
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None and (b is None or math.isnan(b))
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def main():
    profile = json.load(open(sys.argv[1]))
    vdir = sys.argv[2]
    manifest = json.load(open(os.path.join(vdir, "_manifest.json")))
    table = pa.concat_tables([pq.read_table(os.path.join(vdir, f["name"])) for f in manifest["files"]])
    df = table.to_pandas()
    checked = []
    for col in profile["columns"]:
        name = col["name"]
        s = df[name]
        if col["nulls"] != int(s.isna().sum()) or col["count"] != int(s.notna().sum()):
            sys.exit(f"MISMATCH {name}: count/nulls {col['count']}/{col['nulls']}")
        if col["distinct_exact"] and col["distinct"] != int(s.nunique()):
            sys.exit(f"MISMATCH {name}: distinct {col['distinct']} != {s.nunique()}")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            d = s.describe()
            n = col["numeric"]
            pairs = {"mean": n["mean"], "std": n["std"], "min": n["min"], "25%": n["q25"], "50%": n["q50"], "75%": n["q75"], "max": n["max"]}
            for k, ours in pairs.items():
                if not close(ours, float(d[k])):
                    sys.exit(f"MISMATCH {name}.{k}: ours {ours!r} pandas {float(d[k])!r}")
            deciles = [float(s.quantile(q)) for q in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]]
            for ours, theirs in zip(n["deciles"], deciles):
                if not close(ours, theirs):
                    sys.exit(f"MISMATCH {name} deciles: {n['deciles']} != {deciles}")
            checked.append(name)
        if col.get("text") and col["text"]["top_exact"]:
            counts = s.value_counts()
            for value, c in col["text"]["top"]:
                if int(counts.get(value, -1)) != c:
                    sys.exit(f"MISMATCH {name} top value {value!r}: {c} != {counts.get(value)}")
    print(json.dumps({"numeric_columns_checked": checked}))


if __name__ == "__main__":
    main()
