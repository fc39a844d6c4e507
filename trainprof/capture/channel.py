"""The child's messages: a Unix datagram socket it (every rank of a distributed run, and the
DataLoader workers of each) reports to, and what the messages said."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field


def open_channel() -> tuple[socket.socket, str]:
    """A Unix datagram socket the child (every rank of a distributed run) reports to: one
    message per datagram, so ranks writing at once never interleave; torchrun's workers
    inherit no file descriptors, but they can reach a path."""
    d = tempfile.mkdtemp(prefix="trainprof-")  # short: a socket path is limited to ~100 bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(d, "msg"))
    return sock, os.path.join(d, "msg")


def close_channel(sock: socket.socket, path: str) -> None:
    sock.close()
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def received(sock: socket.socket) -> list[dict]:
    """The messages waiting on the socket."""
    out = []
    while True:
        try:
            data = sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return out
        try:
            out.append(json.loads(data))
        except ValueError:
            pass  # not ours: the path is private, but never let a stray datagram end the run


@dataclass
class Ranks:
    """What the child's messages said, per rank (a single run is rank 0 alone)."""

    world: int = 1
    pids: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)
    post: dict = field(default_factory=dict)
    periodic: dict = field(default_factory=dict)  # what the watch after the trace saw (steady.SpikeWatch)
    exited: dict = field(default_factory=dict)
    fetches: dict = field(default_factory=dict)  # (rank, pid) -> a process's latest batch-fetch totals
    errors: list = field(default_factory=list)  # in the order they came
    steps: int = 0  # rank 0's progress
    phase: str = "starting"
    total: int = 0  # the steps the capture takes, once steady state is reached (0: not yet)

    def take(self, msg: dict, progress) -> None:
        rank, ev = msg.get("rank", 0), msg.get("event")
        if ev == "hello":
            self.pids[rank] = msg["pid"]
            self.world = max(self.world, msg.get("world", 1))
        elif ev == "phase" and rank == 0:
            self.steps = max(self.steps, msg["step"])
            self.phase = msg["phase"]
            self.total = msg.get("total") or self.total
            if progress:
                progress(msg["phase"], msg["step"], msg["total"])
        elif ev == "done":
            self.done[rank] = msg
            if progress and rank == 0:
                progress("post", 0, 0)
        elif ev == "post":
            self.post[rank] = msg
        elif ev == "periodic":
            self.periodic[rank] = msg
        elif ev == "error":
            self.errors.append(msg)
        elif ev == "exited":
            self.exited[rank] = msg
        elif ev == "fetch":
            self.fetches[(rank, msg.get("pid"))] = msg

    def fetch_totals(self, rank: int = 0) -> dict | None:
        """The time a rank's DataLoaders took to make their batches: in its own process
        (num_workers=0) and in its workers, summed over the processes."""
        out = {}
        for (r, pid), t in self.fetches.items():
            if r != rank:
                continue
            who = "main" if pid == self.pids.get(rank) else "workers"
            s = out.setdefault(who, {"batches": 0, "wall_ms": 0.0, "cpu_ms": 0.0, "processes": 0})
            s["batches"] += t["batches"]
            s["wall_ms"] += 1000 * t["wall_s"]
            s["cpu_ms"] += 1000 * t["cpu_s"]
            s["processes"] += 1
        return out or None

    @property
    def traced(self) -> bool:
        """Every rank has written its trace."""
        return len(self.done) >= self.world and 0 in self.done
