#!/usr/bin/env python3
"""JSON-RPC client of bench/dialog: figures from the proxies, and dlg.list
timed as a client sees it (the whole reply).

    rpc.py get TRANSPORT METHOD PATH [PARAM...]
                        prints the value at PATH ("/"-separated keys or
                        indexes, "" for the whole result) of METHOD's result;
                        exits 1 on an error reply, 2 when unreachable
    rpc.py once TRANSPORT...
                        one dlg.list per transport, a JSON line each
    rpc.py loop SECONDS OUT TRANSPORT...
                        dlg.list back to back, alternating the transports, for
                        SECONDS; a JSON line per call into OUT

A dlg.list that takes more than $RPC_TIMEOUT seconds (60) is given up.
TRANSPORT is unix:PATH (imsdlgd's UNIX socket: a request per line, a reply
per line), http://HOST:PORT/RPC (imsdlgd's HTTP listener) or
kamfifo:FIFO (Kamailio's jsonrpcs FIFO; the reply comes back on a FIFO this
script makes in the FIFO's directory, named by "reply_name").

A line: {"transport", "start", "end" (UNIX times), "seconds" (request sent
to last byte of the reply received, not parsed), "bytes", "dialogs",
"pages", "error"}.
When a reply holds exactly the page size asked (1000, imsdlgd's cap before
dlg.list returned everything in one reply) the script pages on with offset
and limit until a shorter page comes: "pages" says how many calls it took,
and "seconds" covers them all.
"""
import http.client
import json
import os
import signal
import socket
import sys
import time
import urllib.parse

PAGE = 1000
# seconds a dlg.list may take ("get" waits 10 s)
TIMEOUT = float(os.environ.get("RPC_TIMEOUT", "60"))


def request(method, params=None, rid=1, extra=None):
    req = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        req["params"] = params
    req.update(extra or {})
    return json.dumps(req).encode()


def call_unix(path, body):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(path)
        s.sendall(body + b"\n")
        chunks = []
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
            if b.endswith(b"\n"):
                break
        return b"".join(chunks)


def call_http(url, body):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=TIMEOUT)
    try:
        c.request("POST", u.path or "/RPC", body, {"Content-Type": "application/json"})
        return c.getresponse().read()
    finally:
        c.close()


def call_kamfifo(fifo, body_fn):
    name = "bench_rpc_%d" % os.getpid()  # jsonrpcs refuses a "." in it
    reply = os.path.join(os.path.dirname(fifo), name)
    if os.path.exists(reply):
        os.unlink(reply)
    os.mkfifo(reply, 0o600)

    def expired(*_):
        raise TimeoutError("no reply in %.0f s" % TIMEOUT)

    # opening a FIFO blocks until the other end opens too: bounded by an alarm
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(int(TIMEOUT))
    try:
        with open(fifo, "wb") as f:
            f.write(body_fn(name) + b"\n")
        with open(reply, "rb") as r:
            return r.read()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.unlink(reply)


def rpc(transport, method, params=None):
    """The raw reply bytes of one request."""
    if transport.startswith("unix:"):
        return call_unix(transport[5:], request(method, params))
    if transport.startswith("http://"):
        return call_http(transport, request(method, params))
    if transport.startswith("kamfifo:"):
        return call_kamfifo(transport[8:],
                            lambda n: request(method, params, extra={"reply_name": n}))
    raise SystemExit("unknown transport " + transport)


def dlg_list(transport):
    """dlg.list in full (paging when the server caps a reply)."""
    out = {"transport": transport.split(":")[0], "start": time.time(),
           "bytes": 0, "dialogs": 0, "pages": 0, "error": None}
    offset = 0
    params = None
    seconds = 0.0
    while True:
        t0 = time.perf_counter()
        try:
            raw = rpc(transport, "dlg.list", params)
        except (OSError, http.client.HTTPException) as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
            break
        finally:
            seconds += time.perf_counter() - t0  # the reply, not its parsing
        out["pages"] += 1
        out["bytes"] += len(raw)
        if len(raw) > 1 << 20:
            # a large reply is a list of dialogs: counted, not parsed, so
            # that this client's CPU does not compete with the calls
            # measured meanwhile (parsing 80 MB takes a core for seconds)
            n = raw.count(b'"h_entry":')
        else:
            try:
                reply = json.loads(raw)
            except ValueError:
                out["error"] = "not JSON (%d bytes): %s" % (
                    len(raw), raw[:200].decode(errors="replace"))
                break
            if "error" in reply:
                out["error"] = reply["error"]
                break
            res = reply.get("result")
            if isinstance(res, dict):  # Kamailio's jsonrpcs: one object, or a wrapper
                res = res.get("Dialogs", [res])
            n = len(res or [])
        out["dialogs"] += n
        if n != PAGE or transport.startswith("kamfifo:"):
            break
        offset += n
        params = {"offset": offset, "limit": PAGE}
    out["seconds"] = round(seconds, 4)
    out["end"] = time.time()
    return out


def get(transport, method, path, params):
    global TIMEOUT
    TIMEOUT = 10.0
    try:
        reply = json.loads(rpc(transport, method, [int(p) if p.isdigit() else p
                                                   for p in params] or None))
    except (OSError, ValueError, http.client.HTTPException) as e:
        print("%s: %s" % (transport, e), file=sys.stderr)
        return 2
    if "error" in reply:
        print("%s: %s" % (method, reply["error"]), file=sys.stderr)
        return 1
    v = reply.get("result")
    for k in filter(None, path.split("/")):
        v = v[int(k)] if isinstance(v, list) else v.get(k)
    print(v if isinstance(v, (str, int, float)) else json.dumps(v))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[0] == "get":
        return get(argv[1], argv[2], argv[3], argv[4:])
    if len(argv) >= 2 and argv[0] == "once":
        for t in argv[1:]:
            print(json.dumps(dlg_list(t)), flush=True)
        return 0
    if len(argv) >= 4 and argv[0] == "loop":
        until = time.monotonic() + float(argv[1])
        with open(argv[2], "w") as f:
            i = 0
            while time.monotonic() < until:
                f.write(json.dumps(dlg_list(argv[3 + i % (len(argv) - 3)])) + "\n")
                f.flush()
                i += 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
