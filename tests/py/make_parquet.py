"""Writes a small typed Parquet file with pyarrow (snappy, pyarrow's default codec)."""
import sys

import pyarrow as pa
import pyarrow.parquet as pq

table = pa.table({"id": [1, 2, 3], "price": [1.5, 2.0, 3.25], "city": ["Montréal", None, "Windsor"]})
pq.write_table(table, sys.argv[1])
