#!/usr/bin/env python3
"""Replays the hostile-client attacks of issue 10 against a scimd binary and prints what each
cost: response bytes, time, server memory (VmRSS / VmHWM from /proc), and how long unrelated
requests waited meanwhile.

    python3 bench/hostile.py --scimd target/release/scimd [--only bulk,patch,csv,trickle]

Each attack runs against a fresh server on a fresh SQLite database in a temporary directory,
on a free loopback port. Standard library only. Timings are for comparing two binaries on the
same machine, not absolute figures.
"""

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary):
        self.binary = os.path.abspath(binary)
        self.dir = tempfile.mkdtemp(prefix="scimd-hostile-")
        self.db = f"sqlite:{self.dir}/scimd.db"
        self.port = free_port()
        self.proc = subprocess.Popen(
            [self.binary, "--database-url", self.db, "serve", "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE, stderr=open(f"{self.dir}/server.log", "w"), text=True,
        )
        self.token = None
        for line in self.proc.stdout:
            m = re.search(r"(scimd_\S+)", line)
            if m and "Token" in line:
                self.token = m.group(1)
                break
        for _ in range(100):
            try:
                if self.request("GET", "/healthz", auth=False)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)

    def cli(self, *args):
        out = subprocess.run([self.binary, "--database-url", self.db, *args],
                             capture_output=True, text=True, check=True).stdout
        return out.strip().splitlines()[-1]

    def request(self, method, path, body=None, auth=True, token=None, ctype="application/scim+json",
                timeout=600):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Content-Type": ctype}
        if auth:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        payload = r.read()
        c.close()
        return r.status, payload

    def mem(self):
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    fields[k] = int(v.split()[0]) // 1024
        return fields

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def timed(f):
    t = time.monotonic()
    out = f()
    return out, time.monotonic() - t


def bulk(binary):
    s = Server(binary)
    n = 1000
    # bulkIds as long as a 1 MiB request allows, each POST referencing the next: one cycle.
    width = 480
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"{i:0>{width}}",
            "data": {"userName": f"bulkId:{(i + 1) % n:0>{width}}"}} for i in range(n)]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}
    before = s.mem()
    (status, payload), took = timed(lambda: s.request("POST", "/scim/v2/Bulk", body))
    after = s.mem()
    print(f"bulk cycle: request {len(json.dumps(body))} bytes -> {status}, response {len(payload)} bytes, "
          f"{took:.2f} s, RSS {before['VmRSS']} MB -> peak {after['VmHWM']} MB")
    # The longest bulkIds scimd accepts, in the same cycle.
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"{i:0>128}",
            "data": {"userName": f"bulkId:{(i + 1) % n:0>128}"}} for i in range(n)]
    body["Operations"] = ops
    (status, payload), took = timed(lambda: s.request("POST", "/scim/v2/Bulk", body))
    print(f"bulk cycle, 128-byte bulkIds: {status}, response {len(payload)} bytes, {took:.2f} s, "
          f"peak RSS {s.mem()['VmHWM']} MB")
    s.stop()


def patch(binary):
    s = Server(binary)
    s.cli("org", "create", "other")
    other = s.cli("token", "create", "--org", "other")
    status, payload = s.request("POST", "/scim/v2/Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@acme.test",
        "emails": [{"value": "ann@acme.test", "primary": True}]})
    uid = json.loads(payload)["id"]
    for label, values in [
        ("58,000 emails as bare strings", [f"e{i}@x.io" for i in range(58000)]),
        ("40,000 emails as objects", [{"value": f"{i}@x.io"} for i in range(40000)]),
    ]:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "emails", "value": values}]}
        waits = []

        def unrelated():
            time.sleep(0.3)
            _, t = timed(lambda: s.request("POST", "/scim/v2/Groups",
                                           {"displayName": f"g{time.time()}"}, token=other))
            waits.append(t)

        th = threading.Thread(target=unrelated)
        th.start()
        (status, payload), took = timed(lambda: s.request("PATCH", f"/scim/v2/Users/{uid}", body))
        th.join()
        stored = len(json.loads(s.request("GET", f"/scim/v2/Users/{uid}")[1]).get("emails", []))
        print(f"patch, {label} ({len(json.dumps(body))} bytes): {status} in {took:.2f} s, "
              f"{stored} emails stored; another organization's POST /Groups meanwhile took {waits[0]:.2f} s")
    s.stop()


def csv(binary):
    s = Server(binary)
    admin = s.cli("admin", "token", "create")
    data = ("email,group membership\n" + ",\n" * 200_000).encode()
    path = "/admin/v1/orgs/default/invitations/import?dry_run=true"
    (status, payload), took = timed(lambda: s.request("POST", path, data, token=admin, ctype="text/csv"))
    print(f"csv, {len(data)} bytes of empty rows: {status} in {took:.2f} s: {payload[:160]!r}")
    results, healthz = [], []
    done = threading.Event()

    def upload():
        results.append(timed(lambda: s.request("POST", path, data, token=admin, ctype="text/csv")))

    def poll():
        while not done.is_set():
            _, t = timed(lambda: s.request("GET", "/healthz", auth=False))
            healthz.append(t)
            time.sleep(0.05)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    p = threading.Thread(target=poll)
    p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    p.join()
    print(f"csv, two at once: {max(t for _, t in results):.2f} s; slowest /healthz meanwhile "
          f"{max(healthz):.3f} s over {len(healthz)} probes")
    s.stop()


def trickle(binary):
    s = Server(binary)
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
    start = time.monotonic()
    closed = None
    sock.settimeout(1.0)
    while time.monotonic() - start < 45:
        try:
            sock.sendall(b"x")
            if sock.recv(1, socket.MSG_PEEK) == b"":
                closed = time.monotonic() - start
                break
        except socket.timeout:
            continue
        except OSError:
            closed = time.monotonic() - start
            break
    if closed is None:
        print("trickled headers: connection still open after 45 s")
    else:
        print(f"trickled headers: connection closed by the server after {closed:.1f} s")
    s.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scimd", required=True)
    ap.add_argument("--only", default="bulk,patch,csv,trickle")
    a = ap.parse_args()
    for name in a.only.split(","):
        {"bulk": bulk, "patch": patch, "csv": csv, "trickle": trickle}[name](a.scimd)


if __name__ == "__main__":
    main()
