#!/usr/bin/env python3
"""End-to-end test of `earshot wyoming` with a client that speaks the Wyoming
protocol byte for byte (standard library only): a JSON header line, then
data_length bytes of JSON data, then payload_length bytes of payload.

Usage: wyoming_client.py EARSHOT CLIP [--daemon]
With --daemon the server is `earshot daemon` with a [wyoming] section (and
no audio source) instead of `earshot wyoming`, and only describe and a
streamed clip are checked.
Starts the server on 127.0.0.1 with a port of its choosing, checks
describe/info, detections against `earshot file` for several chunk sizes and
sample formats, the detect filter, not-detected, malformed and oversize
events, a client vanishing mid-payload, a stalled client, 50 clients at
once, and that a normal client is served afterwards. Every wait is bounded.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave

TIMEOUT_S = 20  # any single read; the whole clip is analysed in well under 1 s
CLIENT_TIMEOUT_MS = 1500  # the server's stall limit, short for the test


class Peer:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.buf = b""

    def send(self, type_, data=None, payload=b""):
        header = {"type": type_, "version": "1.5.4"}
        body = b""
        if data:
            body = json.dumps(data).encode()
            header["data_length"] = len(body)
        if payload:
            header["payload_length"] = len(payload)
        self.sock.sendall(json.dumps(header).encode() + b"\n" + body + payload)

    def _fill(self):
        more = self.sock.recv(65536)
        if not more:
            raise EOFError("server closed the connection")
        self.buf += more

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self):
        """One event as (type, data, payload)."""
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        header = json.loads(line)
        data = dict(header.get("data") or {})
        if header.get("data_length"):
            data.update(json.loads(self._take(header["data_length"])))
        payload = self._take(header.get("payload_length") or 0)
        return header["type"], data, payload

    def until_pong(self):
        """Every event up to the answer to a ping: the server handles a
        client's events in order, so this is everything the stream caused."""
        self.send("ping")
        events = []
        while True:
            ev = self.read()
            if ev[0] == "pong":
                return events
            events.append(ev)

    def closed_by_server(self):
        try:
            while True:
                self._fill()
        except (EOFError, ConnectionResetError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class DaemonChecked(Exception):
    """The daemon's (shorter) list of checks is done."""


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what)


def stream(peer, pcm, rate, width, channels, chunk_bytes, names=None):
    peer.send("detect", {"names": names})
    fmt = {"rate": rate, "width": width, "channels": channels}
    peer.send("audio-start", dict(fmt, timestamp=0))
    for i in range(0, len(pcm), chunk_bytes):
        peer.send("audio-chunk", dict(fmt, timestamp=None), pcm[i : i + chunk_bytes])
    peer.send("audio-stop", {"timestamp": None})
    return peer.until_pong()


def detections(events):
    return [(d["name"], d["timestamp"]) for t, d, _ in events if t == "detection"]


def main():
    earshot, clip = sys.argv[1], sys.argv[2]
    expected_events = [
        json.loads(l)
        for l in subprocess.run(
            [earshot, "file", clip], check=True, capture_output=True, text=True, timeout=120
        ).stdout.splitlines()
    ]
    expected = [(e["keyword"], round(e["time"] * 1000)) for e in expected_events if e["type"] == "keyword"]
    speech = [(round(e["start"] * 1000), round(e["end"] * 1000)) for e in expected_events if e["type"] == "speech"]
    check(len(expected) >= 1, f"earshot file finds keywords in the clip: {expected}")
    with wave.open(clip) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())

    daemon = "--daemon" in sys.argv[3:]
    tmp = tempfile.TemporaryDirectory()
    if daemon:
        conf = os.path.join(tmp.name, "earshot.conf")
        with open(conf, "w") as f:
            f.write(f"[events]\nsocket = {tmp.name}/events.sock\nstdout = no\n"
                    f"[wyoming]\nuri = tcp://127.0.0.1:0\nclient_timeout_ms = {CLIENT_TIMEOUT_MS}\n")
        command = [earshot, "daemon", "--config", conf]
    else:
        command = [earshot, "wyoming", "--uri", "tcp://127.0.0.1:0",
                   "--client-timeout-ms", str(CLIENT_TIMEOUT_MS)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    log = []
    port_found = threading.Event()
    port = [0]

    def read_log():
        for line in server.stderr:
            log.append(line)
            m = re.search(r"listening on tcp://127\.0\.0\.1:\d+ \(port (\d+)\)", line) or \
                re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", line)
            if m:
                port[0] = int(m.group(1))
                port_found.set()

    threading.Thread(target=read_log, daemon=True).start()
    try:
        check(port_found.wait(60), "the server logs the port it listens on")
        port = port[0]

        p = Peer(port)
        p.send("describe")
        t, info, _ = p.read()
        wake = info["wake"][0]
        names = [m["name"] for m in wake["models"]]
        check(t == "info" and wake["name"] == "earshot" and wake["installed"] is True,
              "describe is answered with info naming earshot")
        check(all(k in names for k, _ in expected), f"info lists the clip's keywords among {len(names)}")
        check(all(m["languages"] == ["en"] and m["attribution"]["name"] and "version" in m
                  for m in wake["models"]), "every wake model has languages, attribution, version")
        p.close()

        # The same detections whatever the chunking, and the VAD's segments.
        for chunk in (1024,) if daemon else (160, 1024, 4410, 1 << 20):
            p = Peer(port)
            evs = stream(p, pcm, rate, 2, 1, chunk)
            check(detections(evs) == expected, f"chunks of {chunk} bytes: detections {detections(evs)}")
            started = [d["timestamp"] for t, d, _ in evs if t == "voice-started"]
            stopped = [d["timestamp"] for t, d, _ in evs if t == "voice-stopped"]
            check(started == [s for s, _ in speech] and stopped == [e for _, e in speech],
                  f"chunks of {chunk} bytes: voice-started/-stopped at the speech segments")
            check(not any(t == "not-detected" for t, _, _ in evs), "no not-detected after a detection")
            p.close()

        if daemon:
            check(server.poll() is None, "the daemon is still up")
            raise DaemonChecked

        # 24-bit stereo at the same rate carries the same samples: same answer.
        samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
        pcm24 = b"".join(struct.pack("<i", s << 8)[:3] * 2 for s in samples)
        p = Peer(port)
        evs = stream(p, pcm24, rate, 3, 2, 3000)  # 500 frames of 6 bytes
        check(detections(evs) == expected, "24-bit stereo gives the same detections")
        # A second stream on the same connection starts afresh.
        evs = stream(p, pcm, rate, 2, 1, 999, names=[expected[-1][0].upper()])
        check(detections(evs) == [expected[-1]], "detect names filter (case-insensitive), second stream")
        evs = stream(p, bytes(rate * 2), rate, 2, 1, 3200)
        check([t for t, _, _ in evs] == ["not-detected"], "a second of silence gives not-detected")
        p.close()

        # Bad clients: each gets an error event (or just the close) and is dropped.
        bad = [
            (b"this is not json\n", "malformed header line"),
            (b'{"data": {}}\n', "header without type"),
            (b'{"type":"audio-chunk","data_length":100000000}\n', "oversize data_length"),
            (b'{"type":"audio-chunk","payload_length":1000000000}\n', "oversize payload_length"),
            (b'{"type":"audio-start","data_length":5}\n[1,2]', "data that is not an object"),
            (b'{"type":"audio-start","data":{"rate":16000,"width":9,"channels":1}}\n', "bad width"),
            (b"{" * 100000, "header line longer than the limit"),
        ]
        for raw, what in bad:
            p = Peer(port)
            p.sock.sendall(raw)
            try:
                t, d, _ = p.read()
                check(t == "error" and d.get("text"), f"{what}: error event ({d.get('text')})")
            except EOFError:
                check(False, f"{what}: an error event before the close")
            check(p.closed_by_server(), f"{what}: the server closes the connection")
            p.close()

        p = Peer(port)
        fmt = {"rate": rate, "width": 2, "channels": 1}
        p.send("audio-start", fmt)
        head = json.dumps(dict(type="audio-chunk", data=fmt, payload_length=10000)).encode()
        p.sock.sendall(head + b"\n" + pcm[:500])
        p.close()  # vanishes in the middle of the payload

        p = Peer(port)
        p.sock.sendall(b'{"type":"desc')  # and stalls
        t0 = time.monotonic()
        check(p.closed_by_server(), "a stalled client is dropped")
        check(time.monotonic() - t0 < CLIENT_TIMEOUT_MS / 1000 + 5, "within the client timeout")
        p.close()

        # 50 clients at once, each with a short stream, then gone.
        results = [None] * 50
        short = pcm[: rate * 2]

        def one(i):
            try:
                q = Peer(port)
                q.send("describe")
                ok = q.read()[0] == "info"
                evs = stream(q, short, rate, 2, 1, 640)
                q.close()
                results[i] = ok and all(t in ("voice-started", "voice-stopped", "not-detected", "detection")
                                        for t, _, _ in evs)
            except Exception as e:  # reported below
                results[i] = repr(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(TIMEOUT_S * 3)
        check(results == [True] * 50, f"50 concurrent clients served: {[r for r in results if r is not True][:3]}")

        # 50 more that connect and leave without a word.
        for _ in range(50):
            Peer(port).close()

        p = Peer(port)
        evs = stream(p, pcm, rate, 2, 1, 1024)
        check(detections(evs) == expected, "after all that, a normal client still gets its detections")
        p.close()
        check(server.poll() is None, "the server is still up")
    except DaemonChecked:
        pass
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            rc = "killed"
    time.sleep(0.2)
    text = "".join(log)
    sys.stdout.write(text)
    check(rc == 0, f"SIGTERM stops the server with status 0 (got {rc})")
    if daemon:
        return
    check(text.count("dropped:") >= len(bad) + 2, "every dropped client is logged")
    check("disconnected with" in text and "stalled" in text, "the log says why")


if __name__ == "__main__":
    main()
