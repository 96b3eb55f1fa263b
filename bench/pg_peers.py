"""PostgreSQL query → zstd Parquet the way a user would write it with each peer.
Usage: pg_peers.py <peer> <postgresql-uri> <query> <out.parquet>
  pandas    pandas.read_sql over a psycopg connection, then to_parquet
  polars    polars.read_database_uri (connectorx), then write_parquet
  adbc      the ADBC PostgreSQL driver (Arrow-native), fetch_arrow_table, then pyarrow.parquet
"""
import sys
import warnings


def main():
    peer, uri, query, out = sys.argv[1:5]
    if peer == "pandas":
        import pandas as pd
        import psycopg
        warnings.simplefilter("ignore")
        with psycopg.connect(uri) as conn:
            pd.read_sql(query, conn).to_parquet(out, compression="zstd")
    elif peer == "polars":
        import polars as pl
        pl.read_database_uri(query, uri, engine="connectorx").write_parquet(out, compression="zstd")
    elif peer == "adbc":
        import adbc_driver_postgresql.dbapi as adbc
        import pyarrow.parquet as pq
        with adbc.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(query)
            pq.write_table(cur.fetch_arrow_table(), out, compression="zstd")
    else:
        sys.exit(f"unknown peer {peer}")


if __name__ == "__main__":
    main()
