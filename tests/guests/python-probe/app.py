"""A Python scorer for the sandbox tests: reports the environment, files,
network, clocks and randomness it can see, each as a score. Parameters:
`{"port": N}` is a loopback port to try to connect to."""

import encodings.idna  # noqa: F401 (socket calls need it; nothing can be imported at run time)
import json
import os
import random
import socket
import time

import wit_world
from componentize_py_types import Err
from wit_world.exports import scorer
from wit_world.imports import types

PATHS = ["/", ".", "/etc/passwd", "/etc/hostname", "app.py", "/proc/self/environ"]


def attempt(action, errors: list) -> int:
    """1 if `action` succeeds; 0 if it raises, noting the exception in `errors`."""
    try:
        action()
        return 1
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
        return 0


def result(name: str, value: float, detail=None) -> scorer.ScoreResult:
    return scorer.ScoreResult(name=name, group=None, value=float(value), sample_size=1, detail=detail)


def connect(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        sock.connect(("127.0.0.1", port))


class Scorer(wit_world.exports.Scorer):
    def describe(self) -> scorer.ScorerInfo:
        return scorer.ScorerInfo(
            name="python-probe",
            version="0.1.0",
            description="Test guest: reports what a Python scorer can see.",
            parameters_schema="{}",
            metrics=[],
            needs_rows=False,
        )

    def score(self, input, rows):
        try:
            port = int(json.loads(input.parameters or "{}").get("port", 9))
        except (ValueError, AttributeError) as error:
            raise Err(types.PluginError_Config(f"parameters: {error}"))
        fs_errors, net_errors = [], []
        files = sum(attempt(lambda p=p: open(p, "rb").read(1), fs_errors) for p in PATHS)
        files += sum(attempt(lambda p=p: os.listdir(p), fs_errors) for p in ["/", "."])
        network = attempt(lambda: connect(port), net_errors)
        lookups = attempt(lambda: socket.getaddrinfo("localhost", port), net_errors)
        return [
            result("env_vars", len(os.environ), json.dumps(sorted(os.environ))),
            result("fs_successes", files, json.dumps(fs_errors)),
            result("net_successes", network + lookups, json.dumps(net_errors)),
            result("wall_clock_s", time.time()),
            result("monotonic_s", time.monotonic()),
            result("random", random.random()),
            result("urandom", int.from_bytes(os.urandom(4), "little")),
        ]
