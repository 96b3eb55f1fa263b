"""One peer profile of Parquet files, as a user would write it.
Usage: profile_peers.py <polars|duckdb|pandas> <file.parquet> [...]
"""
import sys

tool, files = sys.argv[1], sys.argv[2:]
if tool == "polars":
    import polars as pl

    print(pl.scan_parquet(files).collect().describe())
elif tool == "duckdb":
    import duckdb

    print(duckdb.sql(f"SUMMARIZE SELECT * FROM read_parquet({files!r})").fetchall()[:1])
elif tool == "pandas":
    import pandas as pd

    print(pd.concat([pd.read_parquet(f) for f in files]).describe(include="all"))
