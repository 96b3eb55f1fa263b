"""Prints a bronze version (or any Parquet files) as JSON, read with pyarrow.
Usage: dump.py <version-dir>          rows of the files its manifest lists
       dump.py --files a.parquet ...  rows of these files
Output: {"columns": [...], "types": [...], "rows": [{...}, ...]} (timestamps as ISO strings)
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def main():
    if sys.argv[1] == "--files":
        files = sys.argv[2:]
    else:
        vdir = sys.argv[1]
        manifest = json.load(open(os.path.join(vdir, "_manifest.json")))
        files = [os.path.join(vdir, f["name"]) for f in manifest["files"]]
    table = pa.concat_tables([pq.read_table(f) for f in files])
    rows = table.to_pylist()
    print(json.dumps({"columns": table.schema.names, "types": [str(t) for t in table.schema.types], "rows": rows}, default=str))


if __name__ == "__main__":
    main()
