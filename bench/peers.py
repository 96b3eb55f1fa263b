"""One peer conversion, CSV -> zstd Parquet, as a user would write it.
Usage: peers.py <tool> <typed|strings> <input.csv> <output.parquet>
"""
import sys


def header(path):
    with open(path, newline="", encoding="utf-8") as f:
        return f.readline().rstrip("\r\n").split(",")


def pyarrow_(mode, src, dst):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    convert = pcsv.ConvertOptions()
    if mode == "strings":
        convert = pcsv.ConvertOptions(column_types={c: pa.string() for c in header(src)}, strings_can_be_null=False)
    reader = pcsv.open_csv(src, convert_options=convert)
    with pq.ParquetWriter(dst, reader.schema, compression="zstd") as w:
        for batch in reader:
            w.write_batch(batch)


def polars_(mode, src, dst):
    import polars as pl

    lf = pl.scan_csv(src, infer_schema=(mode == "typed"))
    lf.sink_parquet(dst, compression="zstd")


def duckdb_(mode, src, dst):
    import duckdb

    opts = ", all_varchar=true" if mode == "strings" else ""
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{src}'{opts})) TO '{dst}' (FORMAT parquet, COMPRESSION zstd)")


def pandas_(mode, src, dst):
    import pandas as pd

    if mode == "strings":
        df = pd.read_csv(src, dtype=str, keep_default_na=False)
    else:
        df = pd.read_csv(src)
    df.to_parquet(dst, compression="zstd", index=False)


if __name__ == "__main__":
    tool, mode, src, dst = sys.argv[1:]
    {"pyarrow": pyarrow_, "polars": polars_, "duckdb": duckdb_, "pandas": pandas_}[tool](mode, src, dst)
