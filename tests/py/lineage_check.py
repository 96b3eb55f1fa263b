"""Checks a (large) bronze version's lineage with pyarrow compute, without loading rows into Python.
Usage: lineage_check.py <version-dir> <source-file>
Prints {"rows", "row_groups", "files"}; exits 1 on the first problem.
"""
import hashlib
import json
import os
import sys

import pyarrow.compute as pc
import pyarrow.parquet as pq


def main():
    vdir, src = sys.argv[1:]
    manifest = json.load(open(os.path.join(vdir, "_manifest.json")))
    sha = hashlib.sha256(open(src, "rb").read()).hexdigest()
    rows, groups, expected_next = 0, 0, 1
    for f in manifest["files"]:
        pf = pq.ParquetFile(os.path.join(vdir, f["name"]))
        groups += pf.metadata.num_row_groups
        t = pf.read(columns=["_source_sha256", "_row_number", "_source_url"])
        shas = pc.unique(t["_source_sha256"]).to_pylist()
        if shas != [sha]:
            sys.exit(f"MISMATCH: _source_sha256 values {shas[:3]} != [{sha}]")
        urls = pc.unique(t["_source_url"]).to_pylist()
        if urls != [manifest["source"]["url"]]:
            sys.exit(f"MISMATCH: _source_url values {urls[:3]}")
        n = t.num_rows
        rn = t["_row_number"]
        if pc.min(rn).as_py() != expected_next or pc.max(rn).as_py() != expected_next + n - 1:
            sys.exit(f"MISMATCH: _row_number range in {f['name']}")
        expected_next += n
        rows += n
    if rows != manifest["rows"] or manifest["source"]["sha256"] != sha:
        sys.exit(f"MISMATCH: {rows} rows vs manifest {manifest['rows']}, or the manifest digest")
    print(json.dumps({"rows": rows, "row_groups": groups, "files": len(manifest["files"])}))


if __name__ == "__main__":
    main()
