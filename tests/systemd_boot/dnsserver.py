"""The DNS resolver of tests/test_systemd_boot.py, run as a systemd unit inside the throw-away
namespace on a private address (10.0.0.53), the way a Debian host without systemd-resolved
reaches the resolver DHCP gave it. Debian's /usr/bin/python3, stdlib only.

    dnsserver.py ADDRESS PORT NAME=IPV4 [NAME=IPV4 ...]

Answers UDP queries on ADDRESS:PORT: A for each NAME with its IPV4 (TTL 5), an empty NOERROR
for the other types of a known NAME (AAAA: glibc asks for both), NXDOMAIN for every other name.
One line per query on stderr (the unit's journal), so the test can count what reached it.
Sends READY=1 to $NOTIFY_SOCKET once bound.
"""

from __future__ import annotations

import socket
import struct
import sys

from pageserver import notify  # installed beside this script (the same sd_notify datagram)

TYPES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV", 65: "HTTPS"}


def answer(query: bytes, names: dict[str, str]) -> tuple[bytes, str]:
    """The response to one query, and a line saying what was asked and answered."""
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or (flags >> 11) & 0xF or qdcount != 1:  # a response, not QUERY, or odd
        return struct.pack("!HHHHHH", ident, 0x8000 | 4, 0, 0, 0, 0), "not implemented"  # NOTIMP
    labels, off = [], 12
    while query[off]:
        n = query[off]
        labels.append(query[off + 1 : off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n
    off += 1
    qtype, qclass = struct.unpack("!HH", query[off : off + 4])
    question = query[12 : off + 4]
    name = ".".join(labels)
    answers, count, rcode = b"", 0, 0
    if name not in names:
        rcode, said = 3, "NXDOMAIN"
    elif qtype == 1 and qclass == 1:
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(names[name])
        count, said = 1, names[name]
    else:
        said = "NOERROR, no data"
    # QR, AA, RD copied from the query, RA; the rcode.
    header = struct.pack("!HHHHHH", ident, 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode, 1, count, 0, 0)
    return header + question + answers, f"{TYPES.get(qtype, qtype)} {name} -> {said}"


def main() -> None:
    address, port = sys.argv[1], int(sys.argv[2])
    names = dict(arg.lower().split("=", 1) for arg in sys.argv[3:])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, port))
    notify(f"READY=1\nSTATUS=answering {', '.join(names)} on {address}:{port}")
    while True:
        query, peer = sock.recvfrom(4096)
        try:
            response, said = answer(query, names)
        except (IndexError, struct.error):
            continue  # not a DNS query: no answer
        sock.sendto(response, peer)
        sys.stderr.write(f"query from {peer[0]}:{peer[1]}: {said}\n")
        sys.stderr.flush()


if __name__ == "__main__":
    main()
