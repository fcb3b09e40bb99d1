#!/usr/bin/env python3
"""long_sessions.py — the clients, servers and seeded schedule behind make-long-sessions.sh.

Why it exists: the long-session captures (beacons that live inside one connection,
a heavily jittered beacon, and benign long sessions) need programs that talk on a
precise, reproducible schedule. The schedule is drawn once from a seed (`plan`) and
written to long-sessions.json; every client then acts at `T0 + offset` on an absolute
clock, so the gaps on the wire are the planned gaps (to a few milliseconds).

Usage: long_sessions.py plan SEED OUT.json
       long_sessions.py ROLE PLAN.json SCENARIO T0 [ARGS...]
Each role checks what it receives and exits non-zero (one-line message) if the
exchange did not go as planned, so a broken capture is never written silently.
"""
import http.client
import http.server
import json
import math
import random
import socket
import struct
import subprocess
import sys
import threading
import time

# ---- the plan -----------------------------------------------------------------

# Each scenario: its own client/server pair (documentation addresses only), port and
# capture settings. `snaplen` 0 captures whole packets; the two large captures (bulk
# download, video stream) keep headers plus a little payload.
SCENARIOS = {
    "beacon_c2_tcp_persistent": dict(
        kind="beacon", client="198.51.100.41", server="203.0.113.41", proto="tcp", server_port=4444, snaplen=0),
    "beacon_http_keepalive": dict(
        kind="beacon", client="198.51.100.42", server="203.0.113.42", proto="tcp", server_port=80, snaplen=0),
    "beacon_udp_fixed_port": dict(
        kind="beacon", client="198.51.100.43", server="203.0.113.43", proto="udp", server_port=4000,
        client_port=41414, snaplen=0),
    "beacon_http_jittered": dict(
        kind="beacon", client="198.51.100.44", server="203.0.113.44", proto="tcp", server_port=80, snaplen=0),
    "benign_tcp_keepalive_idle": dict(
        kind="benign", client="198.51.100.51", server="203.0.113.51", proto="tcp", server_port=5222, snaplen=0),
    "benign_interactive": dict(
        kind="benign", client="198.51.100.52", server="203.0.113.52", proto="tcp", server_port=23, snaplen=0),
    "benign_bulk_download": dict(
        kind="benign", client="198.51.100.53", server="203.0.113.53", proto="tcp", server_port=80, snaplen=96),
    "benign_video_stream": dict(
        kind="benign", client="198.51.100.54", server="203.0.113.54", proto="udp", server_port=5004,
        client_port=5004, snaplen=64),
    "benign_tls_session": dict(
        kind="benign", client="198.51.100.55", server="203.0.113.55", proto="tcp", server_port=443, snaplen=0),
}

INTERACTIVE_COMMANDS = [
    "ls -l", "cd /var/log", "tail -n 20 syslog", "df -h", "uptime", "ps aux | grep nginx",
    "cat /etc/hostname", "vi notes.txt", "grep -c error app.log", "free -m", "who", "date",
    "ip addr", "du -sh *", "less README", "history | tail", "systemctl status cron", "pwd",
]


def ms(x):
    return round(x, 3)


def plan(seed):
    """All schedules, drawn from one seed (one independent stream per scenario)."""
    out = {}

    def rng(name):
        return random.Random(f"{seed}/{name}")

    # Persistent TCP C2 (Sliver/Manx style): one connection, a check-in every 15 s ± 15 %.
    r = rng("beacon_c2_tcp_persistent")
    n, period, jitter = 24, 15.0, 0.15
    gaps = [ms(period * r.uniform(1 - jitter, 1 + jitter)) for _ in range(n - 1)]
    tasks = sorted(r.sample(range(2, n), 2))
    out["beacon_c2_tcp_persistent"] = dict(
        description="persistent TCP C2: one connection, small check-in + small reply every 15 s +-15 %; "
        "two check-ins get a task and the client sends its result 0.2 s later on the same connection",
        period_s=period, jitter=jitter, distribution="uniform [0.85, 1.15] x period", count=n,
        offsets_s=offsets(gaps), gaps_s=gaps,
        request_bytes=[r.randint(64, 80) for _ in range(n)],
        reply_bytes=[r.randint(32, 40) for _ in range(n)],
        task_checkins=tasks, task_bytes=420, result_bytes=900, result_delay_s=0.2)

    # HTTP/1.1 keep-alive POST every 10 s ± 30 % on one connection.
    r = rng("beacon_http_keepalive")
    n, period, jitter = 34, 10.0, 0.30
    gaps = [ms(period * r.uniform(1 - jitter, 1 + jitter)) for _ in range(n - 1)]
    out["beacon_http_keepalive"] = dict(
        description="HTTP/1.1 keep-alive client: POST /api/v2/poll every 10 s +-30 % on one connection",
        period_s=period, jitter=jitter, distribution="uniform [0.7, 1.3] x period", count=n,
        offsets_s=offsets(gaps), gaps_s=gaps, path="/api/v2/poll",
        body_bytes=[r.randint(120, 180) for _ in range(n)],
        reply_body_bytes=[r.randint(16, 48) for _ in range(n)])

    # UDP beacon from one fixed source port every ~12 s (± 5 %), each answered.
    r = rng("beacon_udp_fixed_port")
    n, period, jitter = 28, 12.0, 0.05
    gaps = [ms(period * r.uniform(1 - jitter, 1 + jitter)) for _ in range(n - 1)]
    out["beacon_udp_fixed_port"] = dict(
        description="UDP beacon: one fixed source port (one 5-tuple), a datagram every 12 s +-5 %, each answered",
        period_s=period, jitter=jitter, distribution="uniform [0.95, 1.05] x period", count=n,
        offsets_s=offsets(gaps), gaps_s=gaps,
        request_bytes=[r.randint(48, 56) for _ in range(n)],
        reply_bytes=[r.randint(24, 32) for _ in range(n)])

    # Heavily jittered HTTP beacon: a new connection (curl) each time, sleep U(0.1, 1.9) x 10 s.
    r = rng("beacon_http_jittered")
    n, period = 40, 10.0
    gaps = [ms(period * r.uniform(0.1, 1.9)) for _ in range(n - 1)]
    out["beacon_http_jittered"] = dict(
        description="heavily jittered HTTP beacon: curl GET /updates/check, a new TCP connection each time, "
        "sleep uniform in [0.1, 1.9] x 10 s",
        period_s=period, jitter=0.9, distribution="uniform [0.1, 1.9] x period", count=n,
        offsets_s=offsets(gaps), gaps_s=gaps, path="/updates/check", body_bytes=700)

    # Benign: idle TCP connection kept up by kernel keepalive probes.
    out["benign_tcp_keepalive_idle"] = dict(
        description="idle TCP connection: one hello/welcome exchange, then silence for 300 s kept up by "
        "kernel keepalive probes (client SO_KEEPALIVE, TCP_KEEPIDLE=5, TCP_KEEPINTVL=5)",
        why_benign="no payload after the first second; only zero-length keepalive probes and their ACKs",
        duration_s=300.0, keepidle_s=5, keepintvl_s=5, hello=b"HELLO flowsentry-idle\n".decode(),
        welcome="WELCOME\n")

    # Benign: interactive session, log-normal think times, one packet per keystroke.
    r = rng("benign_interactive")
    commands, t = [], 1.0
    while True:
        line = r.choice(INTERACTIVE_COMMANDS)
        keys = [ms(min(1.0, max(0.03, r.lognormvariate(math.log(0.12), 0.45)))) for _ in range(len(line))]
        end = t + sum(keys)
        if end > 330.0:
            break
        out_bytes = int(min(6000, max(0, r.lognormvariate(math.log(400), 1.2))))
        commands.append(dict(start_s=ms(t), line=line, key_gaps_s=keys, output_bytes=out_bytes))
        t = ms(end + min(60.0, max(0.4, r.lognormvariate(math.log(5.0), 1.0))))
    exit_keys = [ms(min(1.0, max(0.03, r.lognormvariate(math.log(0.12), 0.45)))) for _ in range(4)]
    commands.append(dict(start_s=ms(t), line="exit", key_gaps_s=exit_keys, output_bytes=0))
    out["benign_interactive"] = dict(
        description="interactive line session (telnet-like, remote echo, TCP_NODELAY): one segment per "
        "keystroke, think times log-normal (median 5 s, sigma 1.0, clipped to [0.4, 60] s), "
        "keystroke gaps log-normal (median 0.12 s, sigma 0.45), output log-normal (median 400 B)",
        why_benign="human timing: pauses are irregular (log-normal, heavy tailed), sizes vary per command",
        commands=commands, keystrokes=sum(len(c["line"]) + 1 for c in commands))

    # Benign: bulk download, shaped by a token bucket so it lasts about 5 minutes.
    out["benign_bulk_download"] = dict(
        description="one HTTP GET (curl, python3 http.server) of a 5,600,000-byte file through a "
        "160 kbit/s token bucket (tc tbf) on the server's egress: a continuous ~5 minute download",
        why_benign="one request, then a continuous flow from the server; the client sends no payload after "
        "the request", path="/bulk.bin", file_bytes=5600000, rate_kbit=160)

    # Benign: constant-bitrate video stream (RTP-like over UDP).
    out["benign_video_stream"] = dict(
        description="RTP-like constant-bitrate UDP stream: the client sends one PLAY datagram, the server "
        "answers with 7500 RTP packets of 1200 bytes, one every 40 ms (25 pps, 240 kbit/s), for 300 s",
        why_benign="continuous stream from the server, no pauses, one client datagram",
        packets=7500, interval_s=0.04, payload_bytes=1200, rtp_payload_type=96)

    # Benign: long-lived TLS session with sporadic requests.
    r = rng("benign_tls_session")
    offs, t = [], 3.0
    while t < 330.0:
        offs.append(ms(t))
        t += min(80.0, max(3.0, r.expovariate(1 / 20.0)))
    out["benign_tls_session"] = dict(
        description="openssl s_client to openssl s_server -rev (TLS 1.3, self-signed cert made by the "
        "script) over one connection; sporadic request lines at exponential gaps (mean 20 s, clipped to "
        "[3, 80] s), each answered by the reversed line",
        why_benign="one session, few requests at memoryless (Poisson) times",
        offsets_s=offs, gaps_s=[ms(b - a) for a, b in zip(offs, offs[1:])],
        line_bytes=[r.randint(30, 300) for _ in offs])

    for name, fixed in SCENARIOS.items():
        out[name] = dict(fixed, **out[name])
    return dict(seed=seed, generator="captures/make-long-sessions.sh (captures/long_sessions.py plan)",
                scenarios=out)


def offsets(gaps):
    t, offs = 0.0, [0.0]
    for g in gaps:
        t += g
        offs.append(ms(t))
    return offs


def print_plan(p):
    say(f"schedule (seed {p['seed']}), offsets in seconds from T0:")
    for name, s in p["scenarios"].items():
        head = f"  {name}: {s['client']} -> {s['server']}:{s['proto']}/{s['server_port']}"
        if "offsets_s" in s:
            head += f", {len(s['offsets_s'])} events"
        if "period_s" in s:
            head += f", period {s['period_s']} s, {s['distribution']}"
        say(head)
        if "offsets_s" in s:
            say("    offsets " + " ".join(f"{o:.3f}" for o in s["offsets_s"]))
        if "gaps_s" in s and s["gaps_s"]:
            g = s["gaps_s"]
            say(f"    gaps min {min(g):.3f} max {max(g):.3f} mean {sum(g) / len(g):.3f}")
        if "commands" in s:
            c = s["commands"]
            say(f"    {len(c)} commands, {s['keystrokes']} keystrokes, starts "
                + " ".join(f"{x['start_s']:.1f}" for x in c))


# ---- helpers -----------------------------------------------------------------------

def say(msg):
    print(msg, file=sys.stderr, flush=True)


def fail(msg):
    say(f"long_sessions.py: {msg}")
    sys.exit(1)


def sleep_until(t):
    while True:
        left = t - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))


# How late (s) a planned event may start before the run is void: the captures must
# match the schedule, so a machine too busy to keep it fails the run instead.
MAX_LATE = 0.1


def on_time(t, what):
    sleep_until(t)
    late = time.time() - t
    if late > MAX_LATE:
        fail(f"{what} started {late:.3f}s late (machine too busy?); run the script again")


def filler(tag, size):
    """Printable payload of exactly `size` bytes starting with `tag`."""
    body = (tag + b" " + b"flowsentry-long-session " * (size // 24 + 1))[:size - 1]
    return body + b"\n"


def recv_exact(sock, size):
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {size} bytes")
        buf += chunk
    return buf


def recv_line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("peer closed mid-line")
        buf += chunk
    return buf


def listen_tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4)
    return s


def connect_tcp(addr, port, nodelay=False):
    s = socket.create_connection((addr, port), timeout=30)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(None)
    return s


# ---- persistent TCP C2 -------------------------------------------------------------

def c2_server(s, port):
    lsock = listen_tcp(port)
    conn, _ = lsock.accept()
    for i in range(s["count"]):
        line = recv_line(conn)
        if not line.startswith(b"CHK"):
            fail(f"c2 server: check-in {i} starts with {line[:8]!r}")
        if i in s["task_checkins"]:
            conn.sendall(filler(b"TSK %d" % i, s["task_bytes"]))
            res = recv_line(conn)
            if not res.startswith(b"RES") or len(res) != s["result_bytes"]:
                fail(f"c2 server: bad result for task {i}")
        else:
            conn.sendall(filler(b"NOP %d" % i, s["reply_bytes"][i]))
    if conn.recv(1):
        fail("c2 server: data after the last check-in")
    conn.close()


def c2_client(s, t0):
    on_time(t0, "c2 connect")
    conn = connect_tcp(s["server"], s["server_port"])
    for i, off in enumerate(s["offsets_s"]):
        on_time(t0 + off, f"c2 check-in {i}")
        conn.sendall(filler(b"CHK implant-7f3a %d" % i, s["request_bytes"][i]))
        if i in s["task_checkins"]:
            task = recv_exact(conn, s["task_bytes"])
            if not task.startswith(b"TSK"):
                fail(f"c2 client: expected a task at check-in {i}")
            time.sleep(s["result_delay_s"])
            conn.sendall(filler(b"RES %d" % i, s["result_bytes"]))
        else:
            reply = recv_exact(conn, s["reply_bytes"][i])
            if not reply.startswith(b"NOP"):
                fail(f"c2 client: bad reply at check-in {i}")
    conn.close()


# ---- HTTP/1.1 keep-alive POST --------------------------------------------------------

class PollHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sizes = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        seq = int(json.loads(body)["seq"])
        reply = json.dumps({"seq": seq, "tasks": []}).encode()
        reply += b" " * max(0, self.sizes[seq] - len(reply))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, fmt, *args):
        say("poll server: " + fmt % args)


def http_poll_server(s, port):
    PollHandler.sizes = s["reply_body_bytes"]
    srv = http.server.HTTPServer(("0.0.0.0", port), PollHandler)
    srv.serve_forever()


def http_poll_client(s, t0):
    on_time(t0, "poll connect")
    conn = http.client.HTTPConnection(s["server"], s["server_port"], timeout=30)
    conn.connect()
    local = conn.sock.getsockname()
    for i, off in enumerate(s["offsets_s"]):
        on_time(t0 + off, f"POST {i}")
        body = json.dumps({"id": "a1b2c3d4", "seq": i}).encode()
        body += b" " * (s["body_bytes"][i] - len(body))
        conn.request("POST", s["path"], body=body, headers={
            "Content-Type": "application/json", "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200 or json.loads(data)["seq"] != i:
            fail(f"poll client: bad response {resp.status} to POST {i}")
        if conn.sock is None or conn.sock.getsockname() != local:
            fail(f"poll client: connection was not kept alive at POST {i}")
    conn.close()


# ---- UDP beacon from a fixed source port -------------------------------------------

def udp_server(s, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    for i in range(s["count"]):
        data, peer = sock.recvfrom(2048)
        if not data.startswith(b"BCN"):
            fail(f"udp server: datagram {i} starts with {data[:8]!r}")
        sock.sendto(filler(b"ACK %d" % i, s["reply_bytes"][i]), peer)


def udp_client(s, t0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", s["client_port"]))
    sock.settimeout(5)
    for i, off in enumerate(s["offsets_s"]):
        on_time(t0 + off, f"UDP beacon {i}")
        sock.sendto(filler(b"BCN %d" % i, s["request_bytes"][i]), (s["server"], s["server_port"]))
        data, _ = sock.recvfrom(2048)
        if not data.startswith(b"ACK %d" % i):
            fail(f"udp client: bad reply to datagram {i}")


# ---- heavily jittered HTTP beacon (curl, a new connection each time) ---------------------

def jitter_client(s, t0):
    url = f"http://{s['server']}:{s['server_port']}{s['path']}"
    for i, off in enumerate(s["offsets_s"]):
        on_time(t0 + off, f"jittered GET {i}")
        got = subprocess.run(
            ["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{size_download}",
             "-A", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", url],
            capture_output=True, text=True)
        if got.returncode != 0 or int(got.stdout or 0) != s["body_bytes"]:
            fail(f"jittered client: curl {i} failed: {got.stderr.strip()} ({got.stdout} bytes)")


# ---- benign: shaped bulk download (curl) ---------------------------------------------------

def bulk_client(s, t0):
    on_time(t0, "bulk download")
    url = f"http://{s['server']}:{s['server_port']}{s['path']}"
    got = subprocess.run(["curl", "-sS", "--max-time", "590", "-o", "/dev/null", "-w", "%{size_download}", url],
                         capture_output=True, text=True)
    if got.returncode != 0 or int(got.stdout or 0) != s["file_bytes"]:
        fail(f"bulk client: curl failed: {got.stderr.strip()} ({got.stdout} bytes)")


# ---- benign: idle keepalive connection ------------------------------------------------

def idle_server(s, port):
    lsock = listen_tcp(port)
    conn, _ = lsock.accept()
    if recv_line(conn) != s["hello"].encode():
        fail("idle server: bad hello")
    conn.sendall(s["welcome"].encode())
    if conn.recv(1):
        fail("idle server: payload after the hello")
    conn.close()


def idle_client(s, t0):
    on_time(t0, "idle connect")
    conn = connect_tcp(s["server"], s["server_port"])
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, s["keepidle_s"])
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, s["keepintvl_s"])
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    conn.sendall(s["hello"].encode())
    if recv_line(conn) != s["welcome"].encode():
        fail("idle client: bad welcome")
    sleep_until(t0 + s["duration_s"])
    conn.close()


# ---- benign: interactive session ---------------------------------------------------------

def shell_server(s, port):
    lsock = listen_tcp(port)
    conn, _ = lsock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(b"login ok\r\n$ ")
    for k, cmd in enumerate(s["commands"]):
        typed = b""
        while True:
            ch = recv_exact(conn, 1)
            if ch == b"\n":
                break
            typed += ch
            conn.sendall(ch)  # remote echo, one segment per keystroke
        if typed.decode() != cmd["line"]:
            fail(f"shell server: command {k} was {typed!r}")
        if cmd["line"] == "exit":
            conn.sendall(b"\r\nlogout\r\n")
            break
        out = b"\r\n" + filler(b"out %d" % k, cmd["output_bytes"]) if cmd["output_bytes"] else b"\r\n"
        conn.sendall(out + b"$ ")
    conn.close()


def shell_client(s, t0):
    on_time(t0, "shell connect")
    conn = connect_tcp(s["server"], s["server_port"], nodelay=True)
    if recv_exact(conn, 12) != b"login ok\r\n$ ":
        fail("shell client: no prompt")
    for k, cmd in enumerate(s["commands"]):
        t = t0 + cmd["start_s"]
        on_time(t, f"command {k}")
        for ch, gap in zip(cmd["line"], cmd["key_gaps_s"]):
            conn.sendall(ch.encode())
            if recv_exact(conn, 1) != ch.encode():
                fail(f"shell client: bad echo in command {k}")
            t += gap
            sleep_until(t)
        conn.sendall(b"\n")
        if cmd["line"] == "exit":
            want = b"\r\nlogout\r\n"
        else:
            want = b"\r\n" + (filler(b"out %d" % k, cmd["output_bytes"]) if cmd["output_bytes"] else b"") + b"$ "
        if recv_exact(conn, len(want)) != want:
            fail(f"shell client: bad output for command {k}")
    if conn.recv(1):
        fail("shell client: data after logout")
    conn.close()


# ---- benign: constant-bitrate RTP-like stream ------------------------------------------------

def rtp_server(s, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    data, peer = sock.recvfrom(2048)
    if not data.startswith(b"PLAY"):
        fail(f"rtp server: expected PLAY, got {data[:8]!r}")
    start = time.time() + 0.05
    ssrc = 0x5EED1234
    payload = bytes((i * 7) & 0xFF for i in range(s["payload_bytes"] - 12))
    for i in range(s["packets"]):
        sleep_until(start + i * s["interval_s"])
        header = struct.pack("!BBHII", 0x80, s["rtp_payload_type"] | (0x80 if i % 25 == 24 else 0),
                             i & 0xFFFF, (i * 3600) & 0xFFFFFFFF, ssrc)
        sock.sendto(header + payload, peer)


def rtp_client(s, t0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", s["client_port"]))
    on_time(t0, "PLAY")
    sock.sendto(b"PLAY rtp://stream/cam1\n", (s["server"], s["server_port"]))
    sock.settimeout(5)
    got = 0
    try:
        while got < s["packets"]:
            data, _ = sock.recvfrom(4096)
            if len(data) != s["payload_bytes"]:
                fail(f"rtp client: packet of {len(data)} bytes")
            got += 1
    except socket.timeout:
        fail(f"rtp client: stream stopped after {got} of {s['packets']} packets")


# ---- benign: long-lived TLS session (openssl s_client) ----------------------------------------

def tls_client(s, t0):
    on_time(t0, "TLS connect")
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"{s['server']}:{s['server_port']}", "-quiet", "-no_ign_eof", "-nocommands",
         "-verify_quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []

    def read_answers():
        for answer in proc.stdout:
            lines.append(answer)

    reader = threading.Thread(target=read_answers, daemon=True)
    reader.start()
    sent = []
    for i, off in enumerate(s["offsets_s"]):
        on_time(t0 + off, f"TLS request {i}")
        line = filler(b"REQ %d" % i, s["line_bytes"][i])
        sent.append(line)
        proc.stdin.write(line)
        proc.stdin.flush()
        deadline = time.time() + 10
        while len(lines) <= i:
            if time.time() > deadline or proc.poll() is not None:
                fail(f"tls client: no answer to request {i}: {proc.stderr.read1(400)!r}")
            time.sleep(0.01)
    proc.stdin.close()
    proc.wait(timeout=10)
    reader.join(timeout=5)
    for i, (a, b) in enumerate(zip(sent, lines)):
        if b.rstrip(b"\n") != a.rstrip(b"\n")[::-1]:
            fail(f"tls client: answer {i} is not the reversed request")


# ---- main ---------------------------------------------------------------------------

ROLES = {
    "c2-server": c2_server, "c2-client": c2_client,
    "poll-server": http_poll_server, "poll-client": http_poll_client,
    "udp-server": udp_server, "udp-client": udp_client,
    "jitter-client": jitter_client, "bulk-client": bulk_client,
    "idle-server": idle_server, "idle-client": idle_client,
    "shell-server": shell_server, "shell-client": shell_client,
    "rtp-server": rtp_server, "rtp-client": rtp_client,
    "tls-client": tls_client,
}


def main(argv):
    if len(argv) == 3 and argv[0] == "plan":
        p = plan(int(argv[1]))
        with open(argv[2], "w") as f:
            json.dump(p, f, indent=1)
            f.write("\n")
        print_plan(p)
        return
    if len(argv) < 3 or argv[0] not in ROLES:
        fail("usage: long_sessions.py plan SEED OUT.json | ROLE PLAN.json SCENARIO [T0]")
    with open(argv[1]) as f:
        s = json.load(f)["scenarios"][argv[2]]
    role = ROLES[argv[0]]
    try:
        if argv[0].endswith("-server"):
            role(s, s["server_port"])
        else:
            role(s, float(argv[3]))
    except (OSError, ValueError, KeyError) as e:
        fail(f"{argv[0]} {argv[2]}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
