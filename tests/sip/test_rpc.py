"""Management interface: JSON-RPC 2.0 over HTTP and a UNIX socket, from
Python and through imsdlgctl, against a running imsdlgd (docs/rpc.md).
imsdlgd only: rpc_listen is not Kamailio's."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import conftest

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd",
                                reason="rpc_listen is imsdlgd's")

TOKEN = "t0ken-for-tests"
WAIT = conftest.RPC_WAIT


def imsdlgctl() -> Path | None:
    """imsdlgctl of the same build as the daemon under test, else any build-*/."""
    here = conftest.IMSDLGD.parent / "imsdlgctl"
    if os.access(here, os.X_OK):
        return here
    found = sorted(conftest.REPO.glob("build*/imsdlgctl"))
    return found[0] if found else None


class Rpc:
    """The endpoints of one started proxy."""

    def __init__(self, proxy, http_port: int, sock: str):
        self.proxy, self.http_port, self.sock = proxy, http_port, sock

    def http(self, body: bytes | str, token: str | None = None, path: str = "/RPC",
             method: str = "POST") -> tuple[int, bytes]:
        if isinstance(body, str):
            body = body.encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        status, _, data = conftest.http_request(self.http_port, method, path, body, headers)
        return status, data

    def http_call(self, method: str, params=None, token: str | None = None, id_=1):
        req = {"jsonrpc": "2.0", "method": method, "id": id_}
        if params is not None:
            req["params"] = params
        status, body = self.http(json.dumps(req), token)
        return status, json.loads(body)

    def unix(self, text: str) -> list[dict]:
        """Sends text and half-closes; returns the reply lines, parsed (the
        server closes once it has answered everything)."""
        deadline = time.monotonic() + WAIT
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with s:
            s.settimeout(WAIT)
            s.sendall(text.encode())
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    def unix_call(self, method: str, params=None, id_=1) -> dict:
        req = {"jsonrpc": "2.0", "method": method, "id": id_}
        if params is not None:
            req["params"] = params
        replies = self.unix(json.dumps(req) + "\n")
        assert len(replies) == 1, replies
        return replies[0]


@pytest.fixture
def rpc_proxy(proxy, monkeypatch):
    """rpc_proxy(extra=[...]) -> Rpc of a proxy with rpc_listen on HTTP (a free
    port) and a UNIX socket, plus jsonrpcs/xhttp loaded (they change nothing)."""
    sockdir = tempfile.mkdtemp(prefix="imsdlg-rpc-")  # short: sun_path is 108 bytes

    def start(extra: list[str] | None = None) -> Rpc:
        http_port = conftest.free_port()
        sock = os.path.join(sockdir, "rpc.sock")
        orig = conftest.render_cfg

        def render(kind, port, children, lua, modparams=None, debug=2, **kw):
            text = orig(kind, port, children, lua, modparams, debug, **kw)
            lines = [f"rpc_listen=http:{conftest.HOST}:{http_port}",
                     f"rpc_listen=unix:{sock}",
                     'loadmodule "jsonrpcs.so"', 'loadmodule "xhttp.so"']
            lines += extra or []
            return text.replace(f"children={children}\n",
                                f"children={children}\n" + "\n".join(lines) + "\n")

        monkeypatch.setattr(conftest, "render_cfg", render)
        p = proxy("default.lua")
        return Rpc(p, http_port, sock)

    yield start
    shutil.rmtree(sockdir, ignore_errors=True)


def check_version(reply: dict) -> None:
    assert reply["jsonrpc"] == "2.0" and reply["id"] == 1, reply
    assert reply["result"].startswith("imsdlgd "), reply


def test_both_transports(rpc_proxy, children):
    r = rpc_proxy()
    status, reply = r.http_call("core.version")
    assert status == 200
    check_version(reply)
    check_version(r.unix_call("core.version"))

    for reply in (r.http_call("system.listMethods")[1], r.unix_call("system.listMethods")):
        methods = reply["result"]
        assert methods == sorted(methods)
        for m in ("core.version", "core.uptime", "core.info", "system.listMethods",
                  "system.methodHelp"):
            assert m in methods, methods

    info = r.unix_call("core.info")["result"]
    assert info["workers"] == children
    assert info["pid"] == r.proxy.proc.pid
    assert f"udp:{conftest.HOST}:{r.proxy.port}" in info["listeners"]
    assert f"http:{conftest.HOST}:{r.http_port}" in info["rpc"]
    assert f"unix:{r.sock}" in info["rpc"]
    up = r.http_call("core.uptime")[1]["result"]
    assert set(up) == {"now", "up_since", "uptime"} and up["uptime"] >= 0

    # the socket is for the daemon's user and group only
    assert os.stat(r.sock).st_mode & 0o777 == 0o660


def test_errors_keep_the_server_serving(rpc_proxy):
    r = rpc_proxy()
    status, body = r.http(b'{"jsonrpc":"2.0","method":')
    assert status == 400 and json.loads(body)["error"]["code"] == -32700
    status, reply = r.http_call("no.such")
    assert status == 404 and reply["error"]["code"] == -32601
    status, reply = r.http_call("system.methodHelp")
    assert status == 400 and reply["error"]["code"] == 400, reply
    status, body = r.http(b"x" * (64 * 1024 + 1))
    assert status == 413 and json.loads(body)["error"]["code"] == -32600
    # a batch with a notification and an invalid member
    batch = [{"jsonrpc": "2.0", "method": "core.version", "id": 1},
             {"jsonrpc": "2.0", "method": "core.version"},
             {"jsonrpc": "2.0", "id": 2}]
    status, body = r.http(json.dumps(batch))
    replies = json.loads(body)
    assert status == 200 and [x["id"] for x in replies] == [1, 2]
    assert replies[1]["error"]["code"] == -32600

    # broken lines get their parse error at once; the next request is served
    replies = r.unix('{"jsonrpc":"2.0","method":]\n'
                     '{"jsonrpc" x\n'
                     '{"jsonrpc":"2.0","method":"core.version","id":1}\n')
    assert [x.get("error", {}).get("code") for x in replies] == [-32700, -32700, None], replies
    check_version(replies[2])
    # a request over several lines
    replies = r.unix('{\n "jsonrpc": "2.0",\n "method": "core.version",\n "id": 1\n}\n')
    check_version(replies[0])

    # one request without newline, then a half-close
    replies = r.unix('{"jsonrpc":"2.0","method":"core.version","id":1}')
    check_version(replies[0])
    check_version(r.http_call("core.version")[1])
    assert r.proxy.alive()


def test_token(rpc_proxy, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    r = rpc_proxy([f'rpc_token="{token_file}"', 'modparam("jsonrpcs", "pretty_format", 1)'])
    assert r.http_call("core.version")[0] == 401
    assert r.http_call("core.version", token="wrong")[0] == 401
    status, body = r.http('{"jsonrpc":"2.0","method":"core.version","id":1}', token=TOKEN)
    assert status == 200
    assert b"\n" in body  # pretty_format
    check_version(json.loads(body))
    # the UNIX socket is guarded by its file mode, not by the token
    check_version(r.unix_call("core.version"))


def run_ctl(*args, env=None) -> subprocess.CompletedProcess:
    ctl = imsdlgctl()
    if ctl is None:
        pytest.skip("imsdlgctl is not built")
    return subprocess.run([str(ctl), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def test_imsdlgctl(rpc_proxy, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    r = rpc_proxy([f'rpc_token="{token_file}"'])
    # wait until the RPC server answers
    check_version(r.unix_call("core.version"))
    unix, http_url = f"unix:{r.sock}", f"http://{conftest.HOST}:{r.http_port}"

    for target, extra in ((unix, []), (http_url, ["-T", str(token_file)])):
        out = run_ctl("-s", target, *extra, "core.version")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("imsdlgd "), out.stdout
        out = run_ctl("-s", target, *extra, "-l")
        assert out.returncode == 0, out.stderr
        assert "core.uptime" in out.stdout.split(), out.stdout
        out = run_ctl("-s", target, *extra, "core.info")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["rpc"], out.stdout

    # kamcmd typing: numbers as numbers, s: forces a string, negative numbers
    # are parameters, not options
    out = run_ctl("-s", unix, "core.echo", "42", "s:42", "-7", "text")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [42, "42", -7, "text"]
    out = run_ctl("-s", unix, "-r", "core.version")
    reply = json.loads(out.stdout)
    assert reply["jsonrpc"] == "2.0" and reply["result"].startswith("imsdlgd ")

    # an error reply: non-zero, the message on stderr
    out = run_ctl("-s", unix, "no.such")
    assert out.returncode == 1 and "Method not found" in out.stderr, out
    out = run_ctl("-s", unix, "system.methodHelp", "no.such")
    assert out.returncode == 1 and "400" in out.stderr, out
    out = run_ctl("-s", http_url, "core.version")  # no token
    assert out.returncode == 1 and "Unauthorized" in out.stderr, out
    out = run_ctl("-s", http_url, "core.version", env={"IMSDLG_RPC_TOKEN": TOKEN})
    assert out.returncode == 0, out.stderr
    out = run_ctl("-s", f"unix:{r.sock}.missing", "core.version")
    assert out.returncode == 2 and "No such file" in out.stderr, out
