"""Profile of a silver version: medallion-profile against polars describe(), duckdb SUMMARIZE and
pandas describe(include="all") on the same Parquet, in one run. Prints wall time, peak RSS, ratios.
Usage: profile_bench.py --medallion DIR --rows N [--seed S] [--repeat R] [--workdir DIR]
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--medallion", required=True)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="medallion-profile-bench-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, f"sales-{a.rows}-{a.seed}.csv")
    if not os.path.exists(src):
        subprocess.run([os.path.join(a.medallion, "medallion"), "generate", "sales", "--rows", str(a.rows),
                        "--seed", str(a.seed), "--out", src], check=True)
    lake = os.path.join(work, "profile-lake")
    shutil.rmtree(lake, ignore_errors=True)
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    subprocess.run([os.path.join(a.medallion, "medallion-import"), "--lake", lake, "--dataset", "sales",
                    "--source", src, "--outputs-dir", os.path.join(work, "o1")], **quiet)
    subprocess.run([os.path.join(a.medallion, "medallion-refine"), "--lake", lake, "--dataset", "sales", "--version", "1",
                    "--contract", os.path.join(REPO, "examples/contracts/sales.yaml"), "--outputs-dir", os.path.join(work, "o2")], **quiet)
    files = sorted(glob.glob(os.path.join(lake, "silver/sales/v1/*.parquet")))
    size = sum(os.path.getsize(f) for f in files)
    print(f"silver sales v1: {a.rows:,} rows, {size / 2**20:,.0f} MiB Parquet, {os.cpu_count()} cores")
    tools = [("medallion-profile", [os.path.join(a.medallion, "medallion-profile"), "--lake", lake, "--dataset", "sales",
                                    "--outputs-dir", os.path.join(work, "o3")])]
    for peer in ["polars", "duckdb", "pandas"]:
        tools.append((peer, [sys.executable, os.path.join(HERE, "profile_peers.py"), peer, *files]))
    results = {}
    for name, cmd in tools:
        best = min((run(cmd, dict(os.environ, RUST_LOG="warn")) for _ in range(a.repeat)), key=lambda r: r[0])
        results[name] = best
        print(f"  {name:18} {best[0]:7.2f} s  {best[1]:7.0f} MiB RSS", flush=True)
    ours = results["medallion-profile"]
    print("\nratios (peer / medallion-profile): time >1 means we are faster, RSS >1 means we use less memory")
    for name, (secs, rss) in results.items():
        if name != "medallion-profile":
            print(f"  {name:8} time x{secs / ours[0]:5.2f}   RSS x{rss / ours[1]:5.2f}")
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
