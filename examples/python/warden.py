"""The Python client of `warden serve`, over the C library (include/warden.h) through ctypes.

Build the library once (no other build step):

    cc -O2 -shared -fPIC -DWARDEN_IMPLEMENTATION -x c include/warden.h -o libwarden.so

then:

    import warden
    c = warden.Client("warden.sock", library="./libwarden.so")
    v = c.check("acme", "planner-1", "fs.read", "/data/acme/q3.csv")
    print(v.decision, v.reason, v.allowed)

Fail closed: when the server is gone, or a request does not fit, or no verdict comes in time,
the verdict is a deny (`shutting_down`, `content_too_large`, `timeout`) with `from_server`
False; it never allows. Run as a script: `python3 warden.py SOCKET TENANT AGENT TOOL RESOURCE`
prints the verdict, `... --bench N` the round trip's p50 and p99.
"""

import ctypes
import os
import sys
import time

OP_CHECK = 3
OP_SCAN_CONTENT = 2
# `arg` of OP_CHECK and OP_SCAN_CONTENT: where the content comes from (warden.h's
# WARDEN_ORIGIN_*): written to the agent, data it read (a tool's result, a page, a document), or
# a person's chat message
ORIGIN_PROMPT = 0
ORIGIN_DATA = 1
ORIGIN_USER = 2


class _Request(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_uint8),
        ("arg", ctypes.c_uint16),
        ("classification", ctypes.c_uint8),
        ("priority", ctypes.c_uint8),
        ("timestamp_ms", ctypes.c_uint64),
        ("nonce", ctypes.c_uint64),
        ("tenant", ctypes.c_char_p), ("tenant_len", ctypes.c_size_t),
        ("agent", ctypes.c_char_p), ("agent_len", ctypes.c_size_t),
        ("credential", ctypes.c_char_p), ("credential_len", ctypes.c_size_t),
        ("tool", ctypes.c_char_p), ("tool_len", ctypes.c_size_t),
        ("action", ctypes.c_char_p), ("action_len", ctypes.c_size_t),
        ("resource", ctypes.c_char_p), ("resource_len", ctypes.c_size_t),
        ("content", ctypes.c_char_p), ("content_len", ctypes.c_size_t),
    ]


class _Verdict(ctypes.Structure):
    _fields_ = [
        ("decision", ctypes.c_uint8),
        ("threat_level", ctypes.c_uint8),
        ("classification", ctypes.c_uint8),
        ("cache_hit", ctypes.c_uint8),
        ("reason", ctypes.c_uint16),
        ("reason_arg", ctypes.c_uint16),
        ("indicators", ctypes.c_uint32),
        ("rule", ctypes.c_uint32),
        ("latency_ns", ctypes.c_uint32),
        ("core", ctypes.c_uint16),
        ("audit_required", ctypes.c_uint8),
        ("trust_pct", ctypes.c_uint8),
        ("memory_bytes", ctypes.c_uint64),
        ("file_bytes", ctypes.c_uint64),
        ("cpu_time_ms", ctypes.c_uint32),
        ("operations", ctypes.c_uint32),
        ("redactions", ctypes.c_uint32),
        ("pad1", ctypes.c_uint8 * 12),
    ]


class Verdict:
    """A verdict: `decision` ("allow", "allow_with", "deny"), `reason` (a name such as
    "tenant_isolation", "none" when allowed), `allowed`, the obligations, and `from_server`
    (False when the client decided the deny itself)."""

    def __init__(self, lib, v, from_server):
        self.decision = lib.warden_decision_name(v.decision).decode()
        self.reason = lib.warden_reason_name(v.reason).decode()
        self.reason_arg = v.reason_arg
        self.allowed = v.decision != 1
        self.cache_hit = bool(v.cache_hit)
        self.threat_level = v.threat_level
        self.audit_required = bool(v.audit_required)
        self.memory_bytes = v.memory_bytes
        self.file_bytes = v.file_bytes
        self.cpu_time_ms = v.cpu_time_ms
        self.operations = v.operations
        self.redactions = v.redactions
        self.latency_ns = v.latency_ns
        # the agent's trust score the request was judged at, 0.0-1.0 (None: not consulted)
        self.trust = None if v.trust_pct == 255 else v.trust_pct / 100
        self.from_server = from_server

    def __repr__(self):
        return f"Verdict({self.decision}, {self.reason})"


def _load(path):
    lib = ctypes.CDLL(path)
    lib.warden_connect.argtypes = [
        ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
    lib.warden_connect.restype = ctypes.c_int
    lib.warden_validate.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(_Request), ctypes.POINTER(_Verdict)]
    lib.warden_validate.restype = ctypes.c_int
    lib.warden_close.argtypes = [ctypes.c_void_p]
    lib.warden_close_inherited.argtypes = [ctypes.c_void_p]
    lib.warden_set_timeout_ms.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.warden_reason_name.argtypes = [ctypes.c_uint16]
    lib.warden_reason_name.restype = ctypes.c_char_p
    lib.warden_decision_name.argtypes = [ctypes.c_uint8]
    lib.warden_decision_name.restype = ctypes.c_char_p
    return lib


class Client:
    """A connection to `warden serve`. Thread-safe (the C library takes a slot per call)."""

    def __init__(self, socket_path, library=None):
        library = library or os.environ.get("WARDEN_LIBRARY", "./libwarden.so")
        self._lib = _load(library)
        self._path = socket_path
        self._c = ctypes.c_void_p()
        self._connect()

    def _connect(self):
        c = ctypes.c_void_p()
        err = ctypes.create_string_buffer(512)
        if self._lib.warden_connect(self._path.encode(), ctypes.byref(c), err, 512) != 0:
            raise ConnectionError(err.value.decode(errors="replace"))
        self._c = c

    def validate(self, tenant, agent, tool="", resource="", content=b"", kind=OP_CHECK,
                 credential=b"", action="", classification=0, priority=2,
                 timestamp_ms=0, nonce=0, arg=0):
        """`kind` and `arg` as warden.h's WARDEN_OP_* (2 scan_content and 3 check: arg the
        content's origin, ORIGIN_PROMPT, ORIGIN_DATA or ORIGIN_USER; 4 crypto: arg 0 encrypt,
        1 decrypt, 2 sign, 3 verify; 6 custom: arg the validator's id)."""
        if not self._c:
            raise ValueError("the client is closed")
        t, a, to, ac, r = (s.encode() for s in (tenant, agent, tool, action, resource))
        req = _Request(kind, arg, classification, priority, timestamp_ms, nonce,
                       t, len(t), a, len(a), credential, len(credential), to, len(to),
                       ac, len(ac), r, len(r), content, len(content))
        v = _Verdict()
        rc = self._lib.warden_validate(self._c, ctypes.byref(req), ctypes.byref(v))
        if rc == -2:
            # connected before a fork (this is the child): let go of the parent's, and make a
            # connection of its own, once
            self._lib.warden_close_inherited(self._c)
            self._c = ctypes.c_void_p()
            self._connect()
            rc = self._lib.warden_validate(self._c, ctypes.byref(req), ctypes.byref(v))
        return Verdict(self._lib, v, rc == 0)

    def check(self, tenant, agent, tool, resource):
        return self.validate(tenant, agent, tool, resource)

    def scan(self, tenant, agent, content, origin=ORIGIN_PROMPT):
        """Scans `content` (bytes) for threats; `origin=ORIGIN_DATA` for what an agent read,
        `origin=ORIGIN_USER` for a person's chat message."""
        return self.validate(tenant, agent, content=content, kind=OP_SCAN_CONTENT, arg=origin)

    def close(self):
        if self._c:
            self._lib.warden_close(self._c)
            self._c = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv):
    if len(argv) < 6:
        print(f"usage: {argv[0]} SOCKET TENANT AGENT TOOL RESOURCE [--bench N]", file=sys.stderr)
        return 2
    try:
        c = Client(argv[1])
    except ConnectionError as e:
        print(e, file=sys.stderr)
        return 2
    if len(argv) == 8 and argv[6] == "--bench":
        n = int(argv[7])
        times = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            c.check(*argv[2:6])
            times.append(time.perf_counter_ns() - t0)
        times.sort()
        print(f'{{"n": {n}, "p50_ns": {times[n // 2]}, "p99_ns": {times[n * 99 // 100]}}}')
        return 0
    v = c.check(*argv[2:6])
    print(v.decision, v.reason)
    return 0 if v.allowed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
