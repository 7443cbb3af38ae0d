#!/usr/bin/env python3
"""Benchmark `onramp validate` against ajv 8 in the same run, on the same corpus.

Steps (everything lands in a scratch folder, nothing in the repository):
  1. generate a deterministic corpus (bench/gen_corpus.py): N resources valid at every tier
     (R4 schema, R4 StructureDefinitions, the CARIN Blue Button 2.0.0 profiles they
     declare), mostly ExplanationOfBenefit of 3-15 KB, and the same N with one mutation each;
  2. install ajv@8 into the scratch folder with npm;
  3. build onramp in release mode;
  4. time ajv (the schema only) and onramp at each tier (--tier schema, structure, and the
     default, profile) end to end, alternating, RUNS times per corpus, and print medians
     and ratios. ajv's own steady-state time (read + parse + validate, schema compilation
     excluded) is reported too, as the strictest comparison;
  5. check that onramp's schema tier reaches ajv's verdict for every resource of both
     corpora, and count what each tier flags in the mutated one;
  6. measure onramp's peak memory on a 100,000-resource NDJSON file, at every tier.

Usage: python3 bench/validate.py [--count N] [--runs R] [--big N] [--workdir DIR]
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
SCHEMA = ROOT / "schemas" / "fhir.r4.schema.json"
ONRAMP = ROOT / "target" / "release" / "onramp"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, env=None):
    """Wall seconds, peak RSS (KiB) and stderr of one run; stdout is discarded."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, err, code


def median(values):
    return statistics.median(values)


TIERS = ("schema", "structure", "profile")


def onramp_invalid_lines(path, tier="schema"):
    out = subprocess.run([ONRAMP, "validate", "--tier", tier, "--format", "json", path], capture_output=True, check=False)
    document = json.loads(out.stdout)
    return {f["line"] for f in document["findings"]}


def ajv_invalid_lines(path, env):
    out = subprocess.run(
        ["node", ROOT / "bench" / "ajv-validate.js", SCHEMA, "verdicts", path],
        capture_output=True, check=True, env=env,
    )
    return {int(line.split("\t")[0]) for line in out.stdout.decode().splitlines() if line.endswith("invalid")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", type=int, default=100000, help="resources in the memory run (0 to skip)")
    parser.add_argument("--workdir")
    args = parser.parse_args()

    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="onramp-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    if not (corpus / "valid.ndjson").exists():
        sh([sys.executable, ROOT / "bench" / "gen_corpus.py", corpus, "--count", str(args.count)])
    node_modules = work / "node" / "node_modules"
    if not (node_modules / "ajv").exists():
        (work / "node").mkdir(exist_ok=True)
        sh(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", work / "node", "ajv@8"])
    env = dict(os.environ, NODE_PATH=str(node_modules))
    sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    ajv_version = json.loads((node_modules / "ajv" / "package.json").read_text())["version"]
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    cores = os.cpu_count()

    print(f"corpus: {args.count} resources per set in {corpus}; {args.runs} runs each, alternating")
    print(f"peer: ajv {ajv_version} on node {node_version}, per-definition validators; onramp on {cores} cores\n")
    rows = []
    for name, ajv_mode in (("valid", "bench-valid"), ("invalid", "bench-invalid")):
        path = corpus / f"{name}.ndjson"
        size = path.stat().st_size
        onramp_times = {tier: [] for tier in TIERS}
        ajv_times, ajv_steady = [], []
        for _ in range(args.runs):
            for tier in TIERS:
                wall, _, _, code = timed([ONRAMP, "validate", "--tier", tier, path])
                assert code in (0, 1), f"onramp exited {code}"
                onramp_times[tier].append(wall)
            wall, _, err, code = timed(["node", ROOT / "bench" / "ajv-validate.js", SCHEMA, ajv_mode, path], env=env)
            assert code == 0, err
            ajv_times.append(wall)
            ajv_steady.append(json.loads(err.strip().splitlines()[-1])["seconds"])
        o = {tier: median(times) for tier, times in onramp_times.items()}
        rows.append((name, size, o, median(ajv_times), median(ajv_steady)))

    print(f"{'corpus':8} {'MB':>6} {'ajv s':>7} {'ajv steady s':>13} | {'onramp tier':12} {'s':>7} {'res/s':>8} {'× ajv':>6} {'× steady':>9}")
    for name, size, o, a, s in rows:
        for tier in TIERS:
            head = f"{name:8} {size / 1e6:6.1f} {a:7.3f} {s:13.3f}" if tier == "schema" else " " * 37
            print(f"{head} | {tier:12} {o[tier]:7.3f} {args.count / o[tier]:8.0f} {a / o[tier]:6.2f} {s / o[tier]:9.2f}")
    print("(times are medians; ajv checks the schema only; × ajv = ajv wall / onramp wall; × steady = ajv "
          "steady-state / onramp wall, where onramp's wall includes its start-up and compilation; "
          "the profile tier is onramp's default and includes the other two)\n")

    disagreements = 0
    for name in ("valid", "invalid"):
        path = corpus / f"{name}.ndjson"
        ours, theirs = onramp_invalid_lines(path), ajv_invalid_lines(path, env)
        diff = sorted(ours ^ theirs)
        disagreements += len(diff)
        print(f"verdicts on {name}: onramp --tier schema {len(ours)} invalid, ajv {len(theirs)} invalid, {len(diff)} disagree"
              + (f" (lines {diff[:10]})" if diff else ""))
    path = corpus / "invalid.ndjson"
    flagged = {tier: len(onramp_invalid_lines(path, tier)) for tier in TIERS}
    print("mutated resources flagged, of " + str(args.count) + ": "
          + ", ".join(f"--tier {tier} {count}" for tier, count in flagged.items()))
    valid_findings = len(onramp_invalid_lines(corpus / "valid.ndjson", "profile"))
    print(f"findings on the valid corpus at every tier: {valid_findings}")
    disagreements += valid_findings
    fixtures = subprocess.run(
        ["node", ROOT / "bench" / "ajv-fixtures.js", SCHEMA, ROOT / "tests" / "fixtures" / "validate" / "cases.json"],
        capture_output=True, text=True, env=env,
    )
    print(f"fixtures: {fixtures.stdout.strip().splitlines()[-1]}")

    if args.big:
        big = work / "big"
        if not (big / "valid.ndjson").exists():
            sh([sys.executable, ROOT / "bench" / "gen_corpus.py", big, "--count", str(args.big), "--valid-only"])
        path = big / "valid.ndjson"
        print(f"\nmemory: {args.big} resources ({path.stat().st_size / 1e6:.0f} MB NDJSON):")
        for tier in TIERS:
            wall, rss, _, code = timed([ONRAMP, "validate", "--tier", tier, path])
            print(f"  --tier {tier:9} peak RSS {rss / 1024:4.0f} MiB, {wall:6.2f} s ({args.big / wall:6.0f} resources/s), exit {code}")

    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if disagreements or fixtures.returncode else 0)


if __name__ == "__main__":
    main()
