"""medallion-plugin vs Argo's Python `hello` executor plugin, same machine, same load.

The Python plugin is written out here from the description in Argo's executor-plugin docs (an
`http.server` BaseHTTPRequestHandler that checks the bearer token, answers the hello template and
`{}` otherwise) and run with the machine's python3. Both get the agent's request shape from wrk:
  - python hello:      its own `hello` template (Succeeded + one output)
  - medallion {}:      a template for another plugin (the reply every plugin gives most often)
  - medallion lookup:  `lookup` of a silver version served from the plugin's cache
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HELLO = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, token_file = int(sys.argv[1]), sys.argv[2]
with open(token_file) as f:
    token = f.read().strip()

class Plugin(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, body, status=200):
        self.send_response(status)
        self.end_headers()
        if body is not None:
            self.wfile.write(json.dumps(body).encode("utf-8"))

    def do_POST(self):
        if self.headers.get("Authorization") != "Bearer " + token:
            return self.reply(None, 403)
        if self.path != "/api/v1/template.execute":
            return self.reply(None, 404)
        args = json.loads(self.rfile.read(int(self.headers.get("Content-Length"))))
        if "hello" in args["template"].get("plugin", {}):
            self.reply({"node": {"phase": "Succeeded", "message": "Hello template!",
                                 "outputs": {"parameters": [{"name": "foo", "value": "bar"}]}}})
        else:
            self.reply({})

HTTPServer(("127.0.0.1", port), Plugin).serve_forever()
'''

TOKEN = "bench-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                return
        except OSError:
            time.sleep(0.0005)
    raise SystemExit(f"nothing listened on {port} within {timeout}s")


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def body(template):
    return json.dumps({
        "workflow": {"metadata": {"name": "bench-wf", "namespace": "argo", "uid": "0b1c2d3e-aaaa-bbbb-cccc-000000000001"}},
        "template": template,
    })


def call(port, payload):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/template.execute", data=payload.encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read().decode()


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(port, payload, connections, duration, workdir):
    script = os.path.join(workdir, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n')
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f"wrk.body = [==[{payload}]==]\n")
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script,
         f"http://127.0.0.1:{port}/api/v1/template.execute"],
        capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out and "connect 0, read 0, write 0, timeout 0" not in out:
        print(out, file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    dist = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return rps, to_ms(dist["50"]), to_ms(dist["99"])


def start_time_ms(cmd, port, runs=7):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(port, proc)
        times.append((time.perf_counter() - t0) * 1000)
        proc.kill()
        proc.wait()
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--medallion", required=True, help="directory with the release binaries")
    ap.add_argument("--floor", required=True, help="the loopback-floor server (bench/loopback_floor.rs)")
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per measurement")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="medallion-plugin-bench-")
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN)
    hello_py = os.path.join(work, "hello_plugin.py")
    with open(hello_py, "w") as f:
        f.write(HELLO)

    # A real silver version for the look-up case.
    lake = os.path.join(work, "lake")
    outputs = os.path.join(work, "outputs")
    subprocess.run([f"{a.medallion}/medallion-import", "--lake", lake, "--dataset", "houses",
                    "--source", "examples/data/houses.csv", "--outputs-dir", outputs],
                   check=True, capture_output=True)
    subprocess.run([f"{a.medallion}/medallion-refine", "--lake", lake, "--dataset", "houses", "--version", "1",
                    "--contract", "examples/contracts/houses.yaml", "--outputs-dir", outputs],
                   check=True, capture_output=True)

    hello_body = body({"name": "main", "plugin": {"hello": {}}})
    foreign_body = body({"name": "main", "plugin": {"hello": {}}})
    lookup_body = body({"name": "latest", "inputs": {}, "plugin": {"medallion": {"lookup": {"dataset": "houses", "layer": "silver"}}}})

    def python_cmd(port):
        return ["python3", hello_py, str(port), token_file]

    def ours_cmd(port):
        return [f"{a.medallion}/medallion-plugin", "--port", str(port), "--token-file", token_file,
                "--lake", lake, "--cache-ttl", "60s"]

    def floor_cmd(port):
        return [a.floor, str(port)]

    cases = [
        ("python hello (Argo docs)", python_cmd, hello_body, "Hello template!"),
        ("loopback floor (no work)", floor_cmd, foreign_body, "{}"),
        ("medallion-plugin {}", ours_cmd, foreign_body, "{}"),
        ("medallion-plugin lookup", ours_cmd, lookup_body, '"version","value":"1"'),
    ]
    results = []
    for name, cmd, payload, expect in cases:
        port = free_port()
        start = start_time_ms(cmd(port), port)
        proc = subprocess.Popen(cmd(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(port, proc)
        status, reply = call(port, payload)
        assert status == 200 and expect in reply, f"{name}: unexpected reply {status} {reply}"
        time.sleep(0.3)
        idle = rss_kib(proc.pid, "VmRSS")
        c1 = wrk(port, payload, 1, a.duration, work)
        c8 = wrk(port, payload, 8, a.duration, work)
        peak = rss_kib(proc.pid, "VmHWM")
        proc.kill()
        proc.wait()
        results.append((name, start, idle, peak, c1, c8))

    print(f"\nexecutor plugins, {a.duration}s of wrk load per row, loopback, 2 cores shared with wrk\n")
    print(f"{'server':<28} {'start':>8} {'idle RSS':>9} {'peak RSS':>9} {'c=1 req/s':>10} {'p50':>8} {'p99':>8} {'c=8 req/s':>10} {'p50':>8} {'p99':>8}")
    for name, start, idle, peak, c1, c8 in results:
        print(f"{name:<28} {start:>6.1f}ms {idle/1024:>7.1f}Mi {peak/1024:>7.1f}Mi "
              f"{c1[0]:>10.0f} {c1[1]:>6.3f}ms {c1[2]:>6.3f}ms {c8[0]:>10.0f} {c8[1]:>6.3f}ms {c8[2]:>6.3f}ms")
    base = results[0]
    print("\nratios against the Python hello plugin (throughput: higher is better)")
    floor = results[1]
    for name, start, idle, peak, c1, c8 in results[2:]:
        print(f"  {name:<26} c=1 {c1[0]/base[4][0]:5.1f}x  c=8 {c8[0]/base[5][0]:5.1f}x  "
              f"start {base[1]/start:4.1f}x faster  peak RSS {peak/base[3]:.2f}x")
    print("\ntargets: >= 10x the Python plugin's throughput, p99 <= 1 ms, RSS <= 10 MiB, start < 50 ms")
    ok = all(r[4][0] >= 10 * base[4][0] and r[5][0] >= 10 * base[5][0] and r[4][2] <= 1.0 and r[5][2] <= 1.0
             and r[3] <= 10 * 1024 and r[1] < 50 for r in results[2:])
    print("all met" if ok else "NOT all met (see the table)")
    print(f"\nthe loopback floor (a server doing nothing) reaches {floor[4][0]:.0f} req/s at c=1 "
          f"({floor[4][0]/base[4][0]:.1f}x the Python plugin) and {floor[5][0]:.0f} at c=8 on this machine;")
    for name, start, idle, peak, c1, c8 in results[2:]:
        print(f"  {name:<26} reaches {c1[0]/floor[4][0]:.0%} of it at c=1, {c8[0]/floor[5][0]:.0%} at c=8")


main()
