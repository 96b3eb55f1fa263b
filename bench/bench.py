"""CSV -> zstd Parquet: medallion-import against pyarrow, polars, duckdb and pandas, in one run on
the same seeded file. Prints wall time, peak RSS and the ratios to each peer.
Usage: bench.py --medallion DIR --rows N [--kind sales|houses] [--seed S] [--repeat R] [--only a,b]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS in MiB) of that process alone (wait4)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if status != 0:
        sys.exit(f"{cmd[0]} failed ({status}): {err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--medallion", required=True, help="folder with medallion and medallion-import (release)")
    ap.add_argument("--rows", type=int, default=10_000_000, help="data rows (10M sales rows is about 1 GB)")
    ap.add_argument("--kind", default="sales")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the best time and its RSS are kept")
    ap.add_argument("--only", default="", help="comma-separated subset of tools")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args()

    work = a.workdir or tempfile.mkdtemp(prefix="medallion-bench-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, f"{a.kind}-{a.rows}-{a.seed}.csv")
    if not os.path.exists(src):
        subprocess.run([os.path.join(a.medallion, "medallion"), "generate", a.kind, "--rows", str(a.rows),
                        "--seed", str(a.seed), "--out", src], check=True)
    size = os.path.getsize(src)
    # Read once so every tool starts with the file in the page cache.
    with open(src, "rb") as f:
        while f.read(16 << 20):
            pass
    print(f"input: {src} ({a.rows:,} rows, {size / 2**20:,.0f} MiB), {os.cpu_count()} cores")

    tools = [("medallion-import", "strings")]
    for peer in ["duckdb", "polars", "pyarrow", "pandas"]:
        tools += [(peer, "strings"), (peer, "typed")]
    if a.only:
        keep = set(a.only.split(","))
        tools = [t for t in tools if t[0] in keep]

    results = []
    for tool, mode in tools:
        best = None
        for _ in range(a.repeat):
            out = os.path.join(work, "out")
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            if tool == "medallion-import":
                cmd = [os.path.join(a.medallion, "medallion-import"), "--lake", os.path.join(out, "lake"),
                       "--dataset", "bench", "--source", src, "--outputs-dir", os.path.join(out, "o")]
                env = dict(os.environ, RUST_LOG="warn")
            else:
                cmd = [sys.executable, os.path.join(HERE, "peers.py"), tool, mode, src, os.path.join(out, "x.parquet")]
                env = None
            secs, rss = run(cmd, env)
            written = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs if f.endswith(".parquet"))
            if best is None or secs < best[0]:
                best = (secs, rss, written)
        results.append({"tool": tool, "mode": mode, "seconds": best[0], "peak_rss_mib": best[1], "parquet_mib": best[2] / 2**20})
        print(f"  {tool:17} {mode:8} {best[0]:7.2f} s  {best[1]:7.0f} MiB RSS  {best[2] / 2**20:7.1f} MiB parquet", flush=True)

    ours = next((r for r in results if r["tool"] == "medallion-import"), None)
    if ours:
        print("\nratios (peer / medallion-import): time >1 means we are faster, RSS >1 means we use less memory")
        for r in results:
            if r is ours:
                continue
            print(f"  {r['tool']:8} {r['mode']:8} time x{r['seconds'] / ours['seconds']:5.2f}   RSS x{r['peak_rss_mib'] / ours['peak_rss_mib']:5.2f}")
        peers = [r for r in results if r is not ours]
        if peers:
            fastest = min(peers, key=lambda r: r["seconds"])
            leanest = min(peers, key=lambda r: r["peak_rss_mib"])
            speedup = fastest["seconds"] / ours["seconds"]
            memory = ours["peak_rss_mib"] / leanest["peak_rss_mib"]
            print(f"\nvs fastest peer ({fastest['tool']} {fastest['mode']}): {speedup:.2f}x faster (target >= 1.2)")
            print(f"vs leanest peer ({leanest['tool']} {leanest['mode']}): {memory:.2f} of its peak RSS (target <= 0.5)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": a.rows, "bytes": size, "results": results}, f, indent=2)
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
