#!/usr/bin/env python3
"""Prints a TCP port that is free on 127.0.0.1 now, chosen below the ephemeral
range so that a client's own outgoing sockets cannot take it meanwhile. The
benchmark scripts give it to spaced's admin listener, so that the only other
`listening on` line spaced prints is the bus's."""
import random
import socket
import sys


def main():
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for port in random.sample(range(10000, low), 200):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            print(port)
            return 0
        except OSError:
            pass
        finally:
            s.close()
    print("free_port.py: no free port found in 200 tries", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
