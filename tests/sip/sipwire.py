"""What went over the wire: parse SIPp -trace_msg logs and raw SIP messages.

SIPp writes every message it sends or receives into its message log as

    ----------------------------------------------- 2026-01-01 12:00:00.000000
    UDP message received [528] bytes :
    <message>

or "... message sent (466 bytes):". parse_sipp_log() turns that file into a
list of Msg, each knowing its direction, so a test can say "the UAS received
exactly one ACK, with the branch of the INVITE it received".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# RFC 3261 §7.3.3 compact forms, so that a proxy writing them is still read.
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}

# Not anchored at a line start: SIPp writes notes such as "UDP message lost
# (recv)." without a newline, right before the next separator.
_SEP = re.compile(
    r"-{20,} \d{4}-\d\d-\d\d [\d:.]+\n(?P<proto>\w+) message (?P<dir>received|sent)[^\n]*\n\n"
)
_NOTES = re.compile(r"(\w+ message (voluntary )?lost \([^)]*\)\.)+$")


@dataclass
class Msg:
    """One SIP message. Header names are lower-cased long forms."""

    raw: str
    direction: str = ""  # "received" / "sent" when read from a SIPp log, else ""
    transport: str = ""
    start: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""

    @classmethod
    def parse(cls, raw: str, direction: str = "", transport: str = "") -> "Msg":
        text = raw.replace("\r\n", "\n")
        head, _, body = text.partition("\n\n")
        lines = head.split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        start = lines[0].strip() if lines else ""
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded line
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue
            name = name.strip().lower()
            name = COMPACT.get(name, name)
            headers.append((name, value.strip()))
        return cls(raw, direction, transport, start, headers, body)

    # --- start line -------------------------------------------------------
    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/")

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0] if self.is_request else ""

    @property
    def ruri(self) -> str:
        parts = self.start.split()
        return parts[1] if self.is_request and len(parts) > 1 else ""

    @property
    def code(self) -> int:
        if self.is_request:
            return 0
        parts = self.start.split()
        try:
            return int(parts[1])
        except (IndexError, ValueError):
            return -1

    @property
    def reason(self) -> str:
        return self.start.split(" ", 2)[2] if not self.is_request and self.start.count(" ") >= 2 else ""

    # --- headers ----------------------------------------------------------
    def all(self, name: str) -> list[str]:
        """Every value of a header, comma-separated values split (not for Date-like ones)."""
        name = COMPACT.get(name.lower(), name.lower())
        out: list[str] = []
        for n, v in self.headers:
            if n == name:
                out.extend(split_commas(v) if name in LIST_HEADERS else [v])
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.all(name)
        return values[0] if values else default

    def count(self, name: str) -> int:
        return len(self.all(name))

    @property
    def cseq_method(self) -> str:
        cseq = self.get("cseq", "") or ""
        parts = cseq.split()
        return parts[1] if len(parts) > 1 else ""

    @property
    def cseq_num(self) -> int:
        cseq = self.get("cseq", "") or ""
        try:
            return int(cseq.split()[0])
        except (IndexError, ValueError):
            return -1

    @property
    def call_id(self) -> str:
        return self.get("call-id", "") or ""

    @property
    def vias(self) -> list[str]:
        return self.all("via")

    @property
    def top_branch(self) -> str:
        vias = self.vias
        return via_param(vias[0], "branch") if vias else ""

    @property
    def max_forwards(self) -> int | None:
        value = self.get("max-forwards")
        return int(value) if value is not None and value.strip().isdigit() else None

    def __repr__(self) -> str:  # short form in assertion messages
        return f"<{self.direction or 'msg'} {self.start!r} cseq={self.get('cseq')!r}>"


LIST_HEADERS = {"via", "record-route", "route", "contact", "proxy-require", "require", "supported"}


def split_commas(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and <...>."""
    out, cur, depth, quoted = [], [], 0, False
    i = 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\" and i + 1 < len(value):
                cur.append(value[i : i + 2])
                i += 2
                continue
            if ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def via_param(via: str, name: str) -> str:
    for part in via.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def via_sent_by(via: str) -> tuple[str, int | None]:
    """('host', port or None) of a Via value such as 'SIP/2.0/UDP h:5060;branch=x'."""
    proto_and_host = via.split(";", 1)[0].strip()
    parts = proto_and_host.split(None, 1)
    if len(parts) < 2:
        return "", None
    hostport = parts[1].strip()
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    return host.strip(), int(port) if port.strip().isdigit() else None


def uri_of(name_addr: str) -> str:
    """The URI inside a name-addr ('<sip:a@b;lr>;x=y' -> 'sip:a@b;lr')."""
    if "<" in name_addr:
        return name_addr.split("<", 1)[1].split(">", 1)[0]
    return name_addr.split(";", 1)[0].strip()


def uri_hostport(uri: str) -> tuple[str, int | None]:
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.split("@", 1)[1] if "@" in rest else rest
    rest = re.split(r"[;?>]", rest, maxsplit=1)[0]
    host, _, port = rest.partition(":")
    return host, int(port) if port.isdigit() else None


def parse_sipp_log(path: str | Path) -> list[Msg]:
    """All messages of a SIPp -trace_msg file, in order."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    marks = list(_SEP.finditer(text))
    msgs = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        raw = _NOTES.sub("", text[m.end() : end].rstrip("\n"))
        if not raw.strip():
            continue
        msgs.append(Msg.parse(raw, m.group("dir"), m.group("proto")))
    return msgs


def received(path: str | Path) -> list[Msg]:
    return [m for m in parse_sipp_log(path) if m.direction == "received"]


def sent(path: str | Path) -> list[Msg]:
    return [m for m in parse_sipp_log(path) if m.direction == "sent"]


def requests(msgs: list[Msg], method: str) -> list[Msg]:
    return [m for m in msgs if m.is_request and m.method == method]


def responses(msgs: list[Msg], code: int | None = None, cseq_method: str | None = None) -> list[Msg]:
    out = [m for m in msgs if not m.is_request]
    if code is not None:
        out = [m for m in out if m.code == code]
    if cseq_method is not None:
        out = [m for m in out if m.cseq_method == cseq_method]
    return out


def distinct(msgs: list[Msg]) -> list[Msg]:
    """Drop exact retransmissions (same raw text), keeping the first."""
    seen, out = set(), []
    for m in msgs:
        key = m.raw.strip()
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out
