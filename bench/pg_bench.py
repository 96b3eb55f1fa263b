"""PostgreSQL → bronze: medallion-import --connection --query against pandas (read_sql +
to_parquet), polars (connectorx) and the ADBC PostgreSQL driver + pyarrow, on the same table in a
PostgreSQL started here. Prints wall time, peak RSS and ratios.
Usage: pg_bench.py --medallion DIR [--rows N] [--repeat R]
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find(tool):
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/bin", "/usr/lib/postgresql/15/bin"]:
        p = os.path.join(d, tool)
        if os.path.exists(p):
            return p
    sys.exit(f"PostgreSQL's {tool} is not installed; install the postgresql package")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--medallion", required=True)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    import psycopg

    work = tempfile.mkdtemp(prefix="medallion-pg-bench-")
    root = os.geteuid() == 0
    if root:
        os.chmod(work, 0o755)
        os.chown(work, 65534, 65534)
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if root else []
    pw = os.path.join(work, "pw")
    with open(pw, "w") as f:
        f.write("bench-password")
    os.chmod(pw, 0o644)
    data = os.path.join(work, "data")
    subprocess.run(as_user + [find("initdb"), "-D", data, "-U", "bench", "--auth=scram-sha-256", "-E", "UTF8",
                              "--locale=C", f"--pwfile={pw}"], check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(as_user + [find("postgres"), "-D", data, "-p", str(port), "-k", work,
                                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"postgresql://bench:bench-password@127.0.0.1:{port}/postgres"
    try:
        for _ in range(300):
            try:
                psycopg.connect(uri).close()
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f"""CREATE TABLE sales AS SELECT g::int8 AS id, (g % 97)::int4 AS store,
                (g % 100000 / 100.0)::numeric(10,2) AS amount, 'customer-' || (g % 50000) AS customer,
                timestamptz '2026-01-01' + g * interval '1 second' AS sold_at, (g % 3 = 0) AS member
                FROM generate_series(1, {a.rows}) g""")
            conn.execute("VACUUM ANALYZE sales")
        query = "SELECT * FROM sales"
        lake = os.path.join(work, "lake")
        env = dict(os.environ, BENCH_PG_PASSWORD="bench-password", RUST_LOG="warn")
        subprocess.run([os.path.join(a.medallion, "medallion-connect"), "register", "--lake", lake, "--name", "bench",
                        "--kind", "postgres", "--host", "127.0.0.1", "--port", str(port), "--database", "postgres",
                        "--user", "bench", "--sslmode", "disable", "--password-env", "BENCH_PG_PASSWORD",
                        "--outputs-dir", os.path.join(work, "o0")], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"table sales: {a.rows:,} rows (int8, int4, numeric(10,2), text, timestamptz, bool), {os.cpu_count()} cores")
        results = {}
        for i in range(a.repeat):
            for name in ["medallion-import", "pandas", "polars", "adbc"]:
                out = os.path.join(work, f"{name}-{i}.parquet")
                if name == "medallion-import":
                    cmd = [os.path.join(a.medallion, "medallion-import"), "--lake", lake, "--dataset", "sales",
                           "--connection", "bench", "--query", query, "--snapshot", f"run-{i}",
                           "--outputs-dir", os.path.join(work, f"o{i + 1}")]
                else:
                    cmd = [sys.executable, os.path.join(HERE, "pg_peers.py"), name, uri, query, out]
                r = run(cmd, env)
                if name not in results or r[0] < results[name][0]:
                    results[name] = r
        for name, (secs, rss) in results.items():
            print(f"  {name:18} {secs:7.2f} s  {rss:7.0f} MiB RSS", flush=True)
        ours = results["medallion-import"]
        print("\nratios (peer / medallion-import): time >1 means we are faster, RSS >1 means we use less memory")
        for name, (secs, rss) in results.items():
            if name != "medallion-import":
                print(f"  {name:8} time x{secs / ours[0]:5.2f}   RSS x{rss / ours[1]:5.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
