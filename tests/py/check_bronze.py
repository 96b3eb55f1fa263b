"""Reads a bronze version with pyarrow (a reader users really use) and checks it against its source
CSV, read with Python's csv module: same columns, same rows, same values as strings, lineage right.
Usage: check_bronze.py <source.csv> <version-dir> [--delimiter X] [--encoding E]
Prints a JSON summary; exits 1 with the first difference.
"""
import csv
import hashlib
import json
import os
import sys

import pyarrow.parquet as pq


def fail(msg):
    sys.exit(f"MISMATCH: {msg}")


def main():
    src, vdir, *rest = sys.argv[1:]
    opts = dict(zip(rest[::2], rest[1::2]))
    delimiter = opts.get("--delimiter", ",")
    encoding = opts.get("--encoding", "utf-8-sig")
    manifest = json.load(open(os.path.join(vdir, "_manifest.json")))
    tables = [pq.read_table(os.path.join(vdir, f["name"])) for f in manifest["files"]]
    rows = [r for t in tables for r in t.to_pylist()]
    columns = tables[0].schema.names
    with open(src, newline="", encoding=encoding) as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader)
        expected = list(reader)
    etag = manifest["source"].get("etag")
    id_col = "_source_etag" if etag else "_source_sha256"
    lineage = ["_source_url", id_col, "_ingested_at", "_row_number"]
    if columns != [h.strip() for h in header] + lineage:
        fail(f"columns {columns} != header {header} + lineage")
    if len(rows) != len(expected) or manifest["rows"] != len(rows):
        fail(f"{len(rows)} rows read, {len(expected)} in the CSV, manifest says {manifest['rows']}")
    identity = etag or hashlib.sha256(open(src, "rb").read()).hexdigest()
    ingested = {r["_ingested_at"] for r in rows}
    if len(ingested) != 1:
        fail(f"_ingested_at is not one value: {len(ingested)}")
    for i, (got, want) in enumerate(zip(rows, expected)):
        values = [got[h.strip()] for h in header]
        if values != want:
            fail(f"row {i + 1}: {values} != {want}")
        if got["_row_number"] != i + 1:
            fail(f"row {i + 1}: _row_number {got['_row_number']}")
        if got[id_col] != identity:
            fail(f"row {i + 1}: {id_col} {got[id_col]} != {identity}")
        if got["_source_url"] != manifest["source"]["url"]:
            fail(f"row {i + 1}: _source_url {got['_source_url']}")
    meta = pq.ParquetFile(os.path.join(vdir, manifest["files"][0]["name"])).metadata
    codecs = {meta.row_group(g).column(c).compression for g in range(meta.num_row_groups) for c in range(meta.num_columns)}
    print(json.dumps({"rows": len(rows), "columns": len(columns), "codecs": sorted(codecs), "row_groups": meta.num_row_groups}))


if __name__ == "__main__":
    main()
