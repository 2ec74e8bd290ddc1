#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""iso_degrade: the redirected webcam on a poor link.  A relay between the
agent and QEMU (isodev.LinkShaper) plays the network: free, then limited
to half the camera's stream rate, free, cut for 10 s, free again, while the
guest captures 320x240 at 15 fps and checks every frame.

Checks: frames keep arriving while the link is limited (fewer, counted)
and again after the cut; every frame that arrives has the right size, and
at most BAD_FRAMES_MAX of them (at least one allowed) a wrong pattern
(pieces of two frames, see below); the guest logs no USB reset and no USB or
uvcvideo error; the agent keeps its one session (no reconnect) and its
resident memory grows by less than RSS_GROWTH_MAX_MIB over the run.
Printed, not asserted (the machine is shared, timings are noisy): frames
per phase, the longest gap between frames in each phase, and how long
after the link is restored the frame rate is back (bench/iso measures
them on a release build).
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linuxguest import LinuxGuest, harness  # noqa: E402
from harness import Agent, Fixture, free_port  # noqa: E402
import isodev  # noqa: E402

# (name, seconds, rate in bytes/s: None = free, 0 = cut)
PHASES = (("free", 3, None), ("limited", 8, isodev.QVGA_BYTES_S // 2),
          ("recovered", 5, None), ("cut", 10, 0), ("after-cut", 6, None))
RSS_GROWTH_MAX_MIB = 16
# usbredirhost drops single isochronous packets, not frames: when the drops
# take a frame's end and the next frame's start, uvcvideo may assemble a
# frame of the right size from two (it only flags short or overflowing
# ones).  A real camera on a lossy link shows the same glitch.
BAD_FRAMES_MAX = 0.05

GUEST_SCRIPT = isodev.GUEST_LIB + r"""
wait_for 60 test -c /dev/video0 || fail "no /dev/video0 within 60 s"
uvc_capture /dev/video0 320 240 @SECONDS@ || fail "uvc_capture failed"
result usb_errors "$(usb_errors)"
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], False

    def run(self):
        while not self.stop:
            try:
                self.samples.append((time.monotonic(), rss_kib(self.pid)))
            except OSError:
                return
            time.sleep(0.25)


def run_phases(link, t0):
    """Applies each phase at its time from t0 (the guest's stream start);
    returns [(name, start_s, end_s)]."""
    out, at = [], 0.0
    for name, secs, rate in PHASES:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        link.cut(rate == 0)
        link.set_rate(rate if rate else None)
        out.append((name, at, at + secs))
        at += secs
    time.sleep(max(0.0, t0 + at - time.monotonic()))
    link.cut(False)
    link.set_rate(None)
    return out


def phase_stats(per_s, start, end):
    counts = per_s[int(start):int(end)]
    return sum(counts), counts


def recovery_s(per_s, phases, name, full):
    """Seconds from the start of phase `name` to the first second with at
    least 80 % of `full` frames (None: not within the phase)."""
    start, end = next((int(p[1]), int(p[2])) for p in phases if p[0] == name)
    for i, c in enumerate(per_s[start:end]):
        if c >= 0.8 * full:
            return i
    return None


def longest_zero_run(counts):
    best = run = 0
    for c in counts:
        run = run + 1 if c == 0 else 0
        best = max(best, run)
    return best


def test(td):
    # ASan keeps freed blocks in quarantine (256 MiB by default): with a
    # packet allocated and freed per isochronous packet the agent's RSS
    # would measure the quarantine, not its buffers.  (QEMU and the fixture
    # are started with clean environments of their own.)
    os.environ["ASAN_OPTIONS"] = (harness.DEFAULT_ASAN_OPTIONS +
                                  ":quarantine_size_mb=1"
                                  ":thread_local_quarantine_size_kb=64")
    total = sum(p[1] for p in PHASES) + 2
    fx = Fixture(td).start()
    fx.add("webcam")
    qport = free_port()
    link = isodev.LinkShaper(qport).start()
    guest = LinuxGuest(td, GUEST_SCRIPT.replace("@SECONDS@", str(total)),
                       slots=[("server", qport)], modules=isodev.GUEST_MODULES,
                       files=isodev.guest_tools())
    guest.start()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{link.port}\n")
    agent.wait_log(r'1209:7c4a "Emulated Webcam" at 1-\d+: redirected (rw )?to',
                   timeout=30)
    guest.wait_serial(r"RESULT: video_streaming=1", timeout=90)
    t0 = time.monotonic()
    rss = RssSampler(agent.pid)
    rss.start()
    phases = run_phases(link, t0)
    res = guest.wait_done(timeout=120).require_ok()
    rss.stop = True
    per_s = [int(x) for x in res["video_per_s"].split(",") if x]

    assert res["video_bad_size"] == "0", res.tail()
    bad = int(res["video_bad_pattern"])
    assert bad <= max(1, int(res["video_frames"]) * BAD_FRAMES_MAX), \
        f"{bad} frames with a wrong pattern:\n{res.tail()}"
    report = []
    for name, start, end in phases:
        n, counts = phase_stats(per_s, start, end)
        report.append(f"{name} {n} frames ({','.join(map(str, counts))})")
        if name in ("limited", "after-cut"):
            assert n > 0, f"no frame while {name}: {per_s}"
    assert res["usb_errors"] == "0", f"guest logged USB errors:\n{res.tail()}"
    assert res["rig.usb_resets"] == "0", f"guest saw USB resets:\n{res.tail()}"
    assert link.sessions == 1, f"the agent reconnected ({link.sessions} sessions)"
    base = rss.samples[0][1]
    peak = max(k for _, k in rss.samples)
    assert peak - base < RSS_GROWTH_MAX_MIB * 1024, \
        f"agent RSS grew from {base} KiB to {peak} KiB"
    agent.stop()
    lim = next(p for p in phases if p[0] == "limited")
    full = phase_stats(per_s, 0, PHASES[0][1])[0] / PHASES[0][1]
    print("frames per phase: " + "; ".join(report))
    print(f"{res['video_frames']} frames, {res['video_missing_seq']} sequence "
          f"numbers missing, {res['video_error_frames']} error frames; longest "
          f"gap {res['video_max_gap_s']} s at {res['video_max_gap_at_s']} s "
          f"(cut at {phases[3][1]:.0f}-{phases[3][2]:.0f} s); longest second "
          f"without a frame while limited: "
          f"{longest_zero_run(per_s[int(lim[1]):int(lim[2])])} s")
    print(f"extra latency per second (s): {res['video_lag_per_s']}")
    print(f"full rate ({full:.1f} fps) again after the limit in "
          f"{recovery_s(per_s, phases, 'recovered', full)} s, after the cut in "
          f"{recovery_s(per_s, phases, 'after-cut', full)} s")
    print(f"agent RSS {base} KiB at start, peak {peak} KiB (ASan build); "
          f"relay forwarded {link.bytes_up >> 20} MiB toward QEMU")


harness.main(test)
