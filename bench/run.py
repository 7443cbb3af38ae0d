#!/usr/bin/env python3
"""Benchmark `onramp run` against the embedded sandbox.

1. The default suite, warm, RUNS times: wall-clock median (target: under 3 s on 2 cores);
   with ffmpeg on PATH, each run is paired with one without it (PATH holding only chromium
   and chromedriver) and the ratio printed (goal: at most 1.10); then the Blue Button
   persona's suite (`--target sandbox:bluebutton`), the same way.
2. Runs that page through EOBS, 3x and 10x ExplanationOfBenefit (one member, 100 per page;
   10,000, 30,000 and 100,000 by default) with every resource validated: wall clock, the
   search's time and rate (goal: 8,000 EOB/s), onramp's own peak memory (VmHWM, polled from
   /proc, the sandbox included; goal: under 200 MB at 100,000), and where the time went:
   waiting for pages (of which the sandbox's own Server-Timing), parsing, and validating
   (both overlap the next page's fetch). With --baseline OTHER_ONRAMP, the 100,000-claim
   run of this build and of the other binary, alternating: medians side by side.

3. Four sandbox targets at once (`--target sandbox --target sandbox:bluebutton` twice,
   `--jobs 4`: four sandboxes, four browser sessions on one chromedriver, each a browser
   context of its own in one Chromium) against the
   default target alone, RUNS times each, alternating: the ratio of medians (goal: under
   2.0 on 2 cores) and onramp's peak memory for each; and against the same four run one
   after another (`--jobs 1`; goal: `--jobs 4` at most 0.55 of it).

4. The app under test: the example app's target (examples/app/target.toml: the sandbox, and
   the example app that onramp starts and drives) with every feature, against the same
   target with `--tags "not @app"`, RUNS times each, alternating: what the app scenario adds
   (median difference; goal: under 3 s).

5. The Provider Directory at scale: the `@directory` feature against a sandbox whose
   directory has PRACTITIONERS practitioners (10,000 by default: 50,000 PractitionerRoles,
   2,000 Locations, ...), against the same at a tenth of the size, RUNS times each: the
   time the read-all scenarios took (every resource read, validated in three tiers and
   Must-Support-checked; goal: under 15 s at 10,000), the whole feature's wall clock (its
   searches included, most of them the sandbox's own scans), and onramp's peak memory.

Needs chromium and chromedriver (apt-get install -y chromium chromium-driver).
Usage: python3 bench/run.py [--runs 5] [--eobs 10000] [--practitioners 10000]
                            [--only suite|claims|targets|app|directory] [--baseline PATH]
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ONRAMP = ROOT / "target" / "release" / "onramp"


def measure(args, cwd, env=None, binary=None):
    """Wall seconds, onramp's peak RSS in KiB, exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen([binary or ONRAMP, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    peak = 0
    status_path = f"/proc/{proc.pid}/status"
    while proc.poll() is None:
        try:
            with open(status_path) as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.01)
    return time.perf_counter() - started, peak, proc.returncode


def timing_of(resource):
    return resource.get("timing") or {"fetch_ms": 0, "parse_ms": 0, "check_ms": 0}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--eobs", type=int, default=10000)
    parser.add_argument("--practitioners", type=int, default=10000)
    parser.add_argument("--only", choices=["suite", "claims", "targets", "app", "directory"])
    parser.add_argument("--baseline", type=pathlib.Path,
                        help="another onramp binary (the previous release, built elsewhere): the claims "
                             "runs alternate with it, RUNS times each, and print both medians side by side")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="onramp-run-bench-"))
    measure(["run", "--out", str(work / "warmup")], work)  # warm caches, page in Chromium
    if args.only in (None, "suite"):
        suite(args, work)
    if args.only in (None, "claims"):
        claims(args, work)
    if args.only in (None, "targets"):
        targets(args, work)
    if args.only in (None, "app"):
        app(args, work)
    if args.only in (None, "directory"):
        directory(args, work)


def directory(args, work):
    """The Provider Directory feature against a large directory and one a tenth its size."""
    results = {}
    for size in (args.practitioners // 10, args.practitioners):
        target = work / f"directory-{size}.toml"
        # 100 a page, so that 50,000 roles fit in the default page cap (1,000 pages).
        target.write_text(
            f"name = \"directory-{size}\"\n\n[sandbox]\ndirectory_size = {size}\n\n[resources]\npage_size = 100\n"
        )
        walls, peaks = [], []
        for i in range(args.runs):
            out = work / f"directory-{size}-{i}"
            wall, peak, code = measure(["run", "-q", "--target", str(target), "--tags", "@directory", "--out", str(out)], work)
            if code != 0:
                sys.exit(f"the directory of {size} exited {code}")
            walls.append(wall)
            peaks.append(peak)
        summary = json.loads((out / "latest" / "summary.json").read_text())
        read = [r for r in summary["resources"] if r.get("api") == "provider-directory"]
        reading = [s for s in summary["scenarios"] if "resources are valid Plan-Net" in s["name"]]
        results[size] = statistics.median(walls)
        print(f"directory of {size} practitioners ({args.runs} runs): median {statistics.median(walls):.2f} s "
              f"(min {min(walls):.2f}), onramp peak RSS {statistics.median(peaks) / 1024:.0f} MiB; "
              f"{sum(r['count'] for r in read)} resources read and validated "
              f"({', '.join(str(r['count']) + ' ' + r['type'] for r in read)}), the read-all scenarios "
              f"{sum(s['duration_ms'] for s in reading) / 1000:.2f} s, {len(summary['scenarios'])} scenarios")
    small, large = results[args.practitioners // 10], results[args.practitioners]
    print(f"the whole feature: ten times the directory takes {large / small:.2f} times as long; goal: the "
          f"read-all scenarios under 15 s at {args.practitioners} practitioners")


def app(args, work):
    """What driving the example app adds to a run on the sandbox."""
    target = str(ROOT / "examples" / "app" / "target.toml")
    with_app, without = [], []
    for i in range(args.runs):
        took, _, code = measure(["run", "-q", "--target", target, "--out", str(work / f"app{i}")], work)
        assert code == 0, f"the example app's run failed (exit {code})"
        with_app.append(took)
        took, _, code = measure(
            ["run", "-q", "--target", target, "--tags", "not @app", "--out", str(work / f"noapp{i}")], work
        )
        assert code == 0, f"the run without the app failed (exit {code})"
        without.append(took)
    a, b = statistics.median(with_app), statistics.median(without)
    print(f"app: with the app scenario {a:.2f} s, without {b:.2f} s (medians of {args.runs}): +{a - b:.2f} s (goal: under 3 s)")


def targets(args, work):
    """Four targets at once against one alone."""
    four = ["--target", "sandbox", "--target", "sandbox:bluebutton",
            "--target", "sandbox", "--target", "sandbox:bluebutton", "--jobs", "4"]
    one_walls, one_peaks, four_walls, four_peaks, serial_walls = [], [], [], [], []
    serial = [*four[:-1], "1"]
    for _ in range(args.runs):
        wall, _, code = measure(["run", *serial, "--out", str(work / "four-serial")], work)
        if code != 0:
            sys.exit(f"the four targets one after another exited {code}")
        serial_walls.append(wall)
        wall, peak, code = measure(["run", "--out", str(work / "one")], work)
        if code != 0:
            sys.exit(f"the single target exited {code}")
        one_walls.append(wall)
        one_peaks.append(peak)
        wall, peak, code = measure(["run", *four, "--out", str(work / "four")], work)
        if code != 0:
            sys.exit(f"the four targets exited {code}")
        four_walls.append(wall)
        four_peaks.append(peak)
    combined = json.loads((work / "four" / "latest" / "summary.json").read_text())
    scenarios = sum(t["scenarios"] for t in combined["targets"])
    ratio = statistics.median(four_walls) / statistics.median(one_walls)
    print(f"\none target (sandbox, {args.runs} runs): median {statistics.median(one_walls):.2f} s, "
          f"onramp peak RSS {statistics.median(one_peaks) / 1024:.0f} MiB")
    print(f"four targets, --jobs 4 ({scenarios} scenarios): median {statistics.median(four_walls):.2f} s "
          f"(min {min(four_walls):.2f}, max {max(four_walls):.2f}), onramp peak RSS "
          f"{statistics.median(four_peaks) / 1024:.0f} MiB; four / one = {ratio:.2f} (goal: under 2.0)")
    serial_ratio = statistics.median(four_walls) / statistics.median(serial_walls)
    print(f"the same four one after another (--jobs 1): median {statistics.median(serial_walls):.2f} s; "
          f"--jobs 4 / --jobs 1 = {serial_ratio:.2f} (goal: at most 0.55)")


def suite(args, work):
    """The default suite, with and without ffmpeg, and the Blue Button persona's."""

    # The same runs without ffmpeg on PATH (only chromium and chromedriver), to see what
    # the MP4 recording costs; runs alternate so that drift hits both alike.
    ffmpeg = shutil.which("ffmpeg")
    bare = work / "bin"
    bare.mkdir()
    for tool in ("chromium", "chromedriver"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    without_ffmpeg = {**os.environ, "PATH": str(bare)}

    walls, peaks, bare_walls = [], [], []
    for _ in range(args.runs):
        wall, peak, code = measure(["run", "--out", str(work / "default")], work)
        if code != 0:
            sys.exit(f"the default suite exited {code}")
        walls.append(wall)
        peaks.append(peak)
        if ffmpeg:
            wall, _, code = measure(["run", "--out", str(work / "no-ffmpeg")], work, without_ffmpeg)
            if code != 0:
                sys.exit(f"the default suite without ffmpeg exited {code}")
            bare_walls.append(wall)
    recording = next((work / "default" / "latest").glob("recording.*")).name
    print(f"default suite against the sandbox ({args.runs} warm runs, {recording}): median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f}); onramp peak RSS median {statistics.median(peaks) / 1024:.0f} MiB")
    if ffmpeg:
        ratio = statistics.median(walls) / statistics.median(bare_walls)
        print(f"  without ffmpeg on PATH (recording.png): median {statistics.median(bare_walls):.2f} s "
              f"(min {min(bare_walls):.2f}, max {max(bare_walls):.2f}); with ffmpeg / without = {ratio:.2f} (goal: at most 1.10)")
    else:
        print("  ffmpeg is not on PATH: install it (apt-get install -y ffmpeg) to compare the MP4 recording's cost")
    summary = json.loads((work / "default" / "latest" / "summary.json").read_text())
    slowest = sorted(summary["scenarios"], key=lambda s: -s["duration_ms"])[:3]
    print("  slowest scenarios: " + "; ".join(f"{s['name'][:50]} {s['duration_ms']} ms" for s in slowest))

    walls = []
    for _ in range(args.runs):
        wall, _, code = measure(["run", "--target", "sandbox:bluebutton", "--out", str(work / "bluebutton")], work)
        if code != 0:
            sys.exit(f"the Blue Button persona's suite exited {code}")
        walls.append(wall)
    print(f"the same against the Blue Button persona ({args.runs} warm runs): median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f})")



def claims(args, work):
    """Many claims: one member with EOBS (and 3x, 10x) ExplanationOfBenefit, 100 per page,
    every one validated; time should grow linearly and memory should not grow with them.
    With --baseline, then the largest of them RUNS times with each binary, alternating."""
    if args.baseline:
        compare_claims(args, work, args.eobs * 10)
    print("\nclaims | run wall | EOB search | EOB/s | onramp peak RSS | fetch (sandbox generate) | parse | validate+reduce")
    for eobs in (args.eobs, args.eobs * 3, args.eobs * 10):
        target = work / f"paging-{eobs}.toml"
        target.write_text(
            f"[sandbox]\nmembers = 1\neobs_per_member = {eobs}\n\n[resources]\npage_size = 100\n"
        )
        out = work / f"paging-{eobs}"
        wall, peak, code = measure(["run", "--target", str(target), "--tags", "@resources",
                                    "--recording", "none", "--out", str(out)], work)
        summary = json.loads((out / "latest" / "summary.json").read_text())
        eob = next(r for r in summary["resources"] if r["type"] == "ExplanationOfBenefit")
        pages = [e for e in summary["exchanges"] if e["context"].startswith("Search ExplanationOfBenefit")]
        # The search itself: from its first request to its last page checked (the run's
        # sign-in, in the same scenario, is not part of it).
        checked_ms = timing_of(eob)["check_ms"] / max(len(pages), 1)
        search_ms = (max(e["start_ms"] + e["duration_ms"] for e in pages) - min(e["start_ms"] for e in pages)
                     + checked_ms)
        generate = 0.0
        for exchange in pages:
            for name, value in exchange["response_headers"]:
                if name == "server-timing" and "dur=" in value:
                    generate += float(value.split("dur=")[1].split(";")[0])
        timing = timing_of(eob)
        if code != 0 or eob["count"] != eobs:
            sys.exit(f"the {eobs}-claim run exited {code} with {eob['count']} claims read")
        print(f"{eobs} | {wall:.2f} s | {search_ms / 1000:.2f} s | {eobs / (search_ms / 1000):,.0f} | "
              f"{peak / 1024:.0f} MiB | {timing.get('fetch_ms', 0) / 1000:.2f} s ({generate / 1000:.2f} s) | "
              f"{timing.get('parse_ms', 0) / 1000:.2f} s | {timing.get('check_ms', 0) / 1000:.2f} s")

def compare_claims(args, work, eobs):
    """The whole run of one member with EOBS claims, this build against --baseline, RUNS
    times each, alternating (a shared 2-core machine drifts: compare in one sitting)."""
    target = work / f"paging-{eobs}.toml"
    target.write_text(f"[sandbox]\nmembers = 1\neobs_per_member = {eobs}\n\n[resources]\npage_size = 100\n")
    runs = {"this build": ([], []), "baseline": ([], [])}
    for i in range(args.runs):
        for name, binary in (("baseline", args.baseline), ("this build", None)):
            out = work / f"compare-{name.replace(' ', '-')}-{i}"
            wall, peak, code = measure(["run", "--target", str(target), "--tags", "@resources", "--recording",
                                        "none", "--out", str(out)], work, binary=binary)
            if code != 0:
                sys.exit(f"{name}: the {eobs}-claim run exited {code}")
            runs[name][0].append(wall)
            runs[name][1].append(peak)
    print(f"\n{eobs} claims, the whole run, {args.runs} runs each, alternating:")
    for name, (walls, peaks) in runs.items():
        wall = statistics.median(walls)
        print(f"  {name}: median {wall:.2f} s (min {min(walls):.2f}, max {max(walls):.2f}), "
              f"{eobs / wall:,.0f} claims/s, onramp peak RSS median {statistics.median(peaks) / 1024:.0f} MiB")
    ratio = statistics.median(runs["this build"][0]) / statistics.median(runs["baseline"][0])
    print(f"  this build / baseline = {ratio:.2f}; goal: at least 8,000 claims/s for the whole run, under 200 MB")


if __name__ == "__main__":
    main()
