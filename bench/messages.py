#!/usr/bin/env python3
"""The message bus between two real daemons (bench/messages.sh starts them): messages per second
and one-way latency (push on A until B's waiting pop returns) for 1 KiB and 1 MiB messages, and
the memory B holds with 10 000 unread 1 KiB messages. Standard library only."""
import base64, json, os, statistics, sys, threading, time, urllib.parse, urllib.request

A, B, B_METRICS, B_PID = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def call(api, method, path, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{api}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read()
        return r.status, (json.loads(text) if text else None)


def info(api):
    return call(api, "GET", "/api/v1/admin")[1]


def push(payload, topic=None):
    body = {"dst": {"pk": B_PK}, "payload": base64.b64encode(payload).decode()}
    if topic:
        body["topic"] = base64.b64encode(topic).decode()
    return call(A, "POST", "/api/v1/messages", body)


def pop(timeout=30, topic=None):
    query = f"timeout={timeout}"
    if topic:
        query += "&topic=" + urllib.parse.quote(base64.b64encode(topic).decode(), safe="")
    status, m = call(B, "GET", f"/api/v1/messages?{query}", timeout=timeout + 10)
    return m if status == 200 else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def gauge(name):
    with urllib.request.urlopen(f"http://{B_METRICS}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


B_PK = info(B)["nodePubkey"]
# The route from A to B: one message that arrives; then nothing left over in B's inbox.
push(b"warm-up", b"warm-up")
assert pop(60, b"warm-up") is not None, "the first message never arrived"
while pop(1):
    pass

# First, in a fresh daemon: the memory 10 000 unread messages hold (they stay, on their own topic).
before = rss_kib(B_PID)
payload = os.urandom(1024)
for i in range(10_000):
    push(payload, b"inbox")
for _ in range(600):
    if gauge("mycelium_messages_inbox") >= 10_000:
        break
    time.sleep(0.1)
held = gauge("mycelium_messages_inbox")
after = rss_kib(B_PID)
print(f"BENCH inbox: {held:.0f} unread 1 KiB messages, B's RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB "
      f"(+{(after - before) / 1024:.1f} MiB, {(after - before) * 1024 / max(held, 1):.0f} B per message)")

for size, count in [(1024, 300), (1 << 20, 10)]:
    payload = os.urandom(size)
    # One-way latency: B waits in a pop while A pushes.
    latencies = []
    for _ in range(min(count, 50)):
        got = {}
        t = threading.Thread(target=lambda: got.update(m=pop(60, b"latency"), at=time.monotonic()))
        t.start()
        time.sleep(0.02)
        start = time.monotonic()
        _, sent = push(payload, b"latency")
        t.join()
        assert got["m"] is not None and got["m"]["id"] == sent["id"], "message lost"
        latencies.append((got["at"] - start) * 1000)
    latencies.sort()
    # Throughput: push them all, pop them all.
    start = time.monotonic()
    for _ in range(count):
        push(payload, b"throughput")
    for _ in range(count):
        assert pop(120, b"throughput") is not None, "message lost"
    elapsed = time.monotonic() - start
    print(f"BENCH message {size} B: {count / elapsed:.1f} msg/s ({count * size * 8 / elapsed / 1e6:.1f} Mbit/s), "
          f"latency median {statistics.median(latencies):.2f} ms, p99 {latencies[int(len(latencies) * 0.99) - 1]:.2f} ms "
          f"(n={len(latencies)})")

