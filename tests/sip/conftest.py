"""Harness of the protocol tests: a proxy under test and SIPp on 127.0.0.1.

The proxy under test is chosen by IMSDLG_PROXY:
  imsdlgd   (default) <repo>/build/imsdlgd, or the binary named by IMSDLGD;
            tests are skipped with a reason while it is not built
  kamailio  Debian's Kamailio (5.6) running the same Lua script through
            app_lua/KEMI: the reference the scenarios are validated against

Both are started from one config template (Kamailio syntax); the Kamailio
flavour only adds what Kamailio needs besides (mpath, fork, stderr logging,
tmx for $T_reply_code, no DNS).

Every test runs with children=1 and children=2 (IMSDLG_CHILDREN=N pins one).

Isolation: when allowed (root, as on the project's machines and in CI) the
whole test process first moves into a new network namespace with only a
loopback interface. Everything it starts inherits it, so no packet can leave
127.0.0.1 whatever a message says (the RFC 4475 messages are full of
example.com hosts and 192.0.2.x addresses, and a proxy that tried DNS would
otherwise reach the resolver of the machine). IMSDLG_NETNS=0 turns it off;
the torture test then skips itself.
"""

from __future__ import annotations

import ctypes
import fcntl
import http.client
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

import sippeer
import sipwire

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIOS = HERE / "scenarios"
LUA_DIR = HERE / "lua"
TORTURE_DIR = REPO.parent / "shared" / "testdata" / "rfc4475"

PROXY_KIND = os.environ.get("IMSDLG_PROXY", "imsdlgd").strip().lower() or "imsdlgd"
IMSDLGD = Path(os.environ.get("IMSDLGD", str(REPO / "build" / "imsdlgd")))
KAMAILIO = os.environ.get("KAMAILIO", "/usr/sbin/kamailio")
KAMAILIO_MODULES = os.environ.get("KAMAILIO_MODULES", "/usr/lib/x86_64-linux-gnu/kamailio/modules/")
SIPP = os.environ.get("SIPP", "/usr/bin/sipp")

HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds for the proxy to listen
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL

NETNS = {"isolated": False, "why": "not tried"}


# --------------------------------------------------------------------------
# network namespace
# --------------------------------------------------------------------------
def _loopback_up() -> None:
    """Bring lo up in the current namespace (ioctl, so no iproute2 needed)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH14s", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b"\0" * 14))


def _enter_netns() -> None:
    if os.environ.get("IMSDLG_NETNS", "1") == "0":
        NETNS["why"] = "IMSDLG_NETNS=0"
        return
    CLONE_NEWNET = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        NETNS["why"] = "unshare(CLONE_NEWNET): " + os.strerror(ctypes.get_errno())
        return
    _loopback_up()
    NETNS.update(isolated=True, why="own network namespace, loopback only")


def pytest_configure(config):
    config.addinivalue_line("markers", "imsdlgd_only: checks of imsdlgd that Kamailio cannot run")
    config.addinivalue_line("markers", "slow: the load test")
    if NETNS["why"] == "not tried":
        _enter_netns()


@pytest.fixture(scope="session", autouse=True)
def _network_isolation():
    """Enter the loopback-only network namespace once, before any test starts a process."""
    if NETNS["why"] == "not tried":
        _enter_netns()
    yield NETNS


def pytest_report_header(config):
    target = str(IMSDLGD) if PROXY_KIND == "imsdlgd" else KAMAILIO
    return [
        f"imsdlg protocol tests: proxy under test = {PROXY_KIND} ({target})",
        f"network: {NETNS['why']}",
    ]


# --------------------------------------------------------------------------
# failure reports: tails of the proxy log and of the SIPp error logs
# --------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for title, path, lines in getattr(item, "_sip_artifacts", []):
            path = Path(path)
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                rep.sections.append((f"{title} ({path}), last {lines} lines", "\n".join(text)))


def _artifact(request, title: str, path: Path, lines: int = 60) -> None:
    arts = getattr(request.node, "_sip_artifacts", None)
    if arts is None:
        arts = request.node._sip_artifacts = []
    arts.append((title, path, lines))


# --------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------
_handed_out: set[int] = set()


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP, below the ephemeral range."""
    for _ in range(2000):
        port = random.randrange(20000, 32000)
        if port in _handed_out or port + 1 in _handed_out or port - 1 in _handed_out:
            continue
        if _port_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def _listening(port: int, udp: bool = True, tcp: bool = True) -> bool:
    """Whether 127.0.0.1:port (or 0.0.0.0:port) is bound (UDP) / listening (TCP)."""
    want = f"{port:04X}"
    found = {"udp": not udp, "tcp": not tcp}
    for proto in ("udp", "tcp"):
        if found[proto]:
            continue
        try:
            lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4:
                continue
            addr, state = fields[1], fields[3]
            ip, _, p = addr.partition(":")
            if p != want or ip not in ("0100007F", "00000000"):
                continue
            if proto == "tcp" and state != "0A":  # LISTEN
                continue
            found[proto] = True
    return found["udp"] and found["tcp"]


RPC_WAIT = 5.0  # seconds for the RPC server to come up after the SIP ports


def http_request(port: int, method: str, path: str, body: bytes | str | None = None,
                 headers: dict | None = None, timeout: float = RPC_WAIT) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of one HTTP request to 127.0.0.1:port,
    tried again while the port refuses connections (for up to RPC_WAIT s:
    the RPC server starts after the SIP ports)."""
    deadline = time.monotonic() + RPC_WAIT
    while True:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type", ""), resp.read()
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


def wait_listening(port: int, udp: bool = True, tcp: bool = True, timeout: float = START_TIMEOUT, proc=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port, udp, tcp):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _stop_pid(proc: subprocess.Popen, grace: float = STOP_GRACE) -> int | None:
    """SIGTERM, then SIGKILL after `grace` s; our own process group goes too."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # started with start_new_session
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait(timeout=grace)
    # children of a forking daemon left behind after its main process went
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        pass
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode


# --------------------------------------------------------------------------
# proxy config: one template for both daemons
# --------------------------------------------------------------------------
# The first line of a report of AddressSanitizer, LeakSanitizer or
# UndefinedBehaviorSanitizer.
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error: |SUMMARY: \w+Sanitizer")
MODULES = ["tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops", "siputils", "sanity", "xlog", "corex", "kex", "kemix"]
DEFAULT_MODPARAMS = {("tm", "fr_timer"): 2000, ("tm", "fr_inv_timer"): 4000}


class Unquoted(str):
    """A global parameter's value written as it is (alias=tcp:host:port):
    both daemons take a quoted one as a plain string."""


def render_cfg(kind: str, port: int, children: int, lua: Path, modparams: dict | None = None, debug: int = 2,
               udp_options: str = "", core: dict | None = None) -> str:
    params = dict(DEFAULT_MODPARAMS)
    params.update(modparams or {})
    out = ["#!KAMAILIO", f"# generated by tests/sip/conftest.py for {kind}"]
    if kind == "kamailio":
        out.append(f'mpath="{KAMAILIO_MODULES}"')
    out += [
        f"listen=udp:{HOST}:{port} {udp_options}".rstrip(),
        f"listen=tcp:{HOST}:{port}",
        f"children={children}",
        f"debug={debug}",
    ]
    out += [f"{name}={value if isinstance(value, (int, Unquoted)) else chr(34) + value + chr(34)}"
            for name, value in (core or {}).items()]
    if kind == "kamailio":
        # foreground with worker children, log to stderr, never ask DNS
        out += ["fork=yes", "log_stderror=yes", "dns=no", "rev_dns=no", "auto_aliases=no"]
    out += [f'loadmodule "{m}.so"' for m in MODULES]
    out.append('loadmodule "app_lua.so"')
    for (mod, name), value in params.items():
        val = value if isinstance(value, int) else f'"{value}"'
        out.append(f'modparam("{mod}", "{name}", {val})')
    out += [f'modparam("app_lua", "load", "{lua}")', 'cfgengine "lua"', ""]
    return "\n".join(out)


def listen_also(monkeypatch, proto: str, host: str) -> None:
    """Proxies started after this also listen on proto:host, their port."""
    orig = render_cfg

    def render(kind, port, children, lua, *args, **kw):
        text = orig(kind, port, children, lua, *args, **kw)
        return text.replace(f"listen=tcp:{HOST}:{port}\n",
                            f"listen=tcp:{HOST}:{port}\nlisten={proto}:{host}:{port}\n")

    monkeypatch.setitem(globals(), "render_cfg", render)


def render_lua(name: str, subst: dict | None = None) -> str:
    text = (LUA_DIR / name).read_text()
    for key, value in (subst or {}).items():
        text = text.replace(f"@{key}@", str(value))
    left = re.findall(r"@[A-Z][A-Z0-9_]*@", text)
    if left:
        raise ValueError(f"{name}: placeholders left unreplaced: {sorted(set(left))}")
    return text


def proxy_command(kind: str, cfg: Path, workdir: Path) -> list[str]:
    if kind == "kamailio":
        # -DD: no daemonizing but still forking the workers; -E: log to stderr
        return [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-m", "64", "-M", "8", "-w", str(workdir)]
    return [str(IMSDLGD), "-f", str(cfg)]


def proxy_available() -> tuple[bool, str]:
    if PROXY_KIND == "kamailio":
        if not os.access(KAMAILIO, os.X_OK):
            return False, f"IMSDLG_PROXY=kamailio but {KAMAILIO} is not installed"
        return True, ""
    if PROXY_KIND != "imsdlgd":
        return False, f"IMSDLG_PROXY={PROXY_KIND!r}: expected 'imsdlgd' or 'kamailio'"
    if not os.access(IMSDLGD, os.X_OK):
        return False, f"{IMSDLGD} is not built yet (build it, or run with IMSDLG_PROXY=kamailio)"
    return True, ""


class Proxy:
    def __init__(self, kind: str, port: int, cfg: Path, lua: Path, log: Path, workdir: Path):
        self.kind, self.host, self.port = kind, HOST, port
        self.cfg, self.lua, self.log, self.workdir = cfg, lua, log, workdir
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "Proxy":
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            proxy_command(self.kind, self.cfg, self.workdir),
            stdin=subprocess.DEVNULL,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        if not wait_listening(self.port, proc=self.proc):
            rc = self.stop()
            raise RuntimeError(
                f"{self.kind} did not listen on udp+tcp {self.addr} within {START_TIMEOUT}s (exit {rc}):\n"
                + self.log_tail(40)
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is not None:
            self.returncode = _stop_pid(self.proc)
            self._logf.close()
        return self.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


@pytest.fixture(params=[1, 2], ids=lambda n: f"children{n}")
def children(request) -> int:
    pinned = os.environ.get("IMSDLG_CHILDREN")
    if pinned and int(pinned) != request.param:
        pytest.skip(f"IMSDLG_CHILDREN={pinned}")
    return request.param


@pytest.fixture
def proxy_kind() -> str:
    return PROXY_KIND


@pytest.fixture
def proxy(request, tmp_path, children):
    """proxy(lua="default.lua", subst={...}, modparams={...}) -> a started Proxy."""
    ok, why = proxy_available()
    if not ok:
        pytest.skip(why)
    started: list[Proxy] = []

    def start(lua: str = "default.lua", subst: dict | None = None, modparams: dict | None = None,
              debug: int = 2, name: str = "proxy", udp_options: str = "", core: dict | None = None) -> Proxy:
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        port = free_port()
        lua_path = workdir / lua
        lua_path.write_text(render_lua(lua, subst))
        cfg = workdir / f"{name}.cfg"
        cfg.write_text(render_cfg(PROXY_KIND, port, children, lua_path, modparams, debug, udp_options=udp_options,
                                  core=core))
        p = Proxy(PROXY_KIND, port, cfg, lua_path, workdir / f"{name}.log", workdir)
        _artifact(request, f"{PROXY_KIND} log", p.log, 80)
        started.append(p)
        return p.start()

    yield start
    reports = []
    for p in started:
        p.stop()
        reports += [f"{p.log}: {line.strip()}" for line in p.log_text().splitlines()
                    if SANITIZER_REPORT.search(line)]
    # A sanitizer's finding in the daemon fails the test even when nothing
    # on the wire showed it (a leak found at exit, an error in a path whose
    # outcome no assertion reads).
    assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


# --------------------------------------------------------------------------
# SIPp
# --------------------------------------------------------------------------
TRANSPORTS = {"udp": "u1", "tcp": "t1", "u1": "u1", "t1": "t1", "tn": "tn", "un": "un"}


class SippRun:
    def __init__(self, name: str, cmd: list[str], workdir: Path, port: int, transport: str):
        self.name, self.cmd, self.dir, self.port, self.transport = name, cmd, workdir, port, transport
        self.msg_log = workdir / "messages.log"
        self.err_log = workdir / "errors.log"
        self.stat_csv = workdir / "stats.csv"
        self.screen = workdir / "screen.log"
        self.out = workdir / "stdout.log"
        self.proc: subprocess.Popen | None = None
        self.rc: int | None = None

    def start(self) -> "SippRun":
        (self.dir / "command").write_text(" ".join(self.cmd) + "\n")
        self._outf = open(self.out, "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self._outf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, timeout: float) -> int:
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.rc = _stop_pid(self.proc, grace=2.0)
            raise AssertionError(f"sipp {self.name} still running after {timeout}s: stopped (rc {self.rc})")
        finally:
            if self.proc.poll() is not None:
                self._outf.close()
        return self.rc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.rc = _stop_pid(self.proc, grace=2.0)
            self._outf.close()

    # what went over the wire, as this SIPp saw it
    def messages(self) -> list[sipwire.Msg]:
        return sipwire.parse_sipp_log(self.msg_log)

    def received(self) -> list[sipwire.Msg]:
        return [m for m in self.messages() if m.direction == "received"]

    def sent(self) -> list[sipwire.Msg]:
        return [m for m in self.messages() if m.direction == "sent"]

    def stats(self) -> dict[str, str]:
        """The last row of the -trace_stat CSV (cumulative counters end in '(C)')."""
        if not self.stat_csv.exists():
            return {}
        rows = [r for r in self.stat_csv.read_text(errors="replace").splitlines() if r.strip()]
        if len(rows) < 2:
            return {}
        head = rows[0].split(";")
        return dict(zip(head, rows[-1].split(";")))

    def successful_calls(self) -> int:
        return int(self.stats().get("SuccessfulCall(C)", "0") or 0)

    def failed_calls(self) -> int:
        return int(self.stats().get("FailedCall(C)", "0") or 0)

    def errors(self) -> str:
        return self.err_log.read_text(errors="replace") if self.err_log.exists() else ""

    def explain(self) -> str:
        out = self.out.read_text(errors="replace").splitlines()[-15:] if self.out.exists() else []
        return (f"sipp {self.name} rc={self.rc} ({self.dir})\n" + "\n".join(out) + "\n" + self.errors()[-3000:])


class Sipp:
    """Starts SIPp instances with everything traced into tmp_path/<name>/."""

    def __init__(self, request, tmp_path: Path):
        self.request, self.tmp = request, tmp_path
        self.runs: list[SippRun] = []

    def _base(self, scenario: str, port: int, transport: str, calls: int, timeout: float,
              keys: dict | None, extra: list[str] | None) -> list[str]:
        cmd = [
            SIPP, "-sf", str(SCENARIOS / scenario), "-i", HOST, "-p", str(port),
            "-t", TRANSPORTS[transport], "-m", str(calls), "-nostdin",
            "-timeout", f"{int(timeout)}s", "-timeout_error",
            "-trace_msg", "-message_file", "messages.log",
            "-trace_err", "-error_file", "errors.log",
            "-trace_stat", "-stf", "stats.csv", "-fd", "1",
            "-trace_screen", "-screen_file", "screen.log",
        ]
        if TRANSPORTS[transport] in ("tn", "un"):
            cmd += ["-max_socket", "512"]  # SIPp's default (50000) exceeds the open-file limit
        for key, value in (keys or {}).items():
            cmd += ["-key", key, str(value)]
        return cmd + list(extra or [])

    def _dir(self, name: str) -> Path:
        d = self.tmp / name
        d.mkdir(exist_ok=False)
        return d

    def uas(self, scenario: str, name: str = "uas", transport: str = "udp", calls: int = 1,
            timeout: float = 30, keys: dict | None = None, extra: list[str] | None = None,
            port: int | None = None) -> SippRun:
        """Start a UAS in the background and wait until it listens."""
        port = port or free_port()
        cmd = self._base(scenario, port, transport, calls, timeout, keys, extra)
        run = SippRun(name, cmd, self._dir(name), port, TRANSPORTS[transport])
        self.runs.append(run)
        _artifact(self.request, f"sipp {name} errors", run.err_log, 40)
        run.start()
        tcp = run.transport.startswith("t")
        if not wait_listening(port, udp=not tcp, tcp=tcp, timeout=5, proc=run.proc):
            run.stop()
            raise RuntimeError("UAS did not start: " + run.explain())
        return run

    def uac(self, scenario: str, proxy: Proxy, remote_port: int | None, name: str = "uac", transport: str = "udp",
            calls: int = 1, rate: float = 10, timeout: float = 30, keys: dict | None = None,
            extra: list[str] | None = None, wait: bool = True) -> SippRun:
        """Run a UAC sending to 127.0.0.1:remote_port through the proxy (-rsa),
        or, with remote_port None, to the proxy: the scenario then says where
        its requests go after the first (setdest)."""
        port = free_port()
        cmd = self._base(scenario, port, transport, calls, timeout, keys, extra)
        remote = [proxy.addr] if remote_port is None else [f"{HOST}:{remote_port}", "-rsa", proxy.addr]
        cmd = [cmd[0], *remote, "-r", str(rate)] + cmd[1:]
        run = SippRun(name, cmd, self._dir(name), port, TRANSPORTS[transport])
        self.runs.append(run)
        _artifact(self.request, f"sipp {name} errors", run.err_log, 40)
        run.start()
        if wait:
            run.wait(timeout + 10)
        return run

    def close(self) -> None:
        for run in self.runs:
            run.stop()


@pytest.fixture
def sipp(request, tmp_path):
    if not os.access(SIPP, os.X_OK):
        pytest.skip(f"{SIPP} missing (Debian package sip-tester)")
    s = Sipp(request, tmp_path)
    yield s
    s.close()


# --------------------------------------------------------------------------
# a name server
# --------------------------------------------------------------------------
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class NameServer:
    """dnsmasq serving records of the zone "test" (a name it was not given
    does not exist) on 127.0.0.1:port, with every query in its log."""

    def __init__(self, workdir: Path, records: list[str], ttl: int = 300):
        self.port = free_port()
        self.log = workdir / "dnsmasq.log"
        cmd = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", f"--port={self.port}",
               "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
               "--local=/test/", "--log-queries", f"--log-facility={self.log}", "--pid-file=",
               f"--local-ttl={ttl}"]
        cmd += ["--user=root"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(cmd + records, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        if not wait_listening(self.port, udp=True, tcp=False, proc=self.proc):
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None else "not listening"
            raise RuntimeError(f"dnsmasq did not start: {err}")

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def queries(self, qtype: str, name: str) -> int:
        """How many queries of qtype (A, AAAA, SRV) for name it got."""
        text = self.log.read_text() if self.log.exists() else ""
        return sum(1 for line in text.splitlines() if f"query[{qtype}] {name} from" in line)

    def stop(self) -> None:
        _stop_pid(self.proc)


@pytest.fixture
def nameserver(tmp_path):
    if not Path(DNSMASQ).exists():
        pytest.skip("dnsmasq missing (Debian package dnsmasq-base)")
    made: list[NameServer] = []

    def start(records: list[str], ttl: int = 300) -> NameServer:
        made.append(NameServer(tmp_path, records, ttl))
        return made[-1]

    yield start
    for ns in made:
        ns.stop()


@pytest.fixture
def peers():
    """Endpoints a test drives message by message (sippeer.Peers)."""
    made = sippeer.Peers()
    yield made
    errors = made.close()
    assert not errors, errors


@pytest.fixture
def netns_isolated() -> bool:
    return NETNS["isolated"]
