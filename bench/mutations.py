#!/usr/bin/env python3
"""How many single-rule breaks of real CARIN data each tier of `onramp validate` catches.

Takes the 32 examples of the CARIN Blue Button 2.0.0 IG package (valid at every tier), and
writes copies that each break exactly one rule, of the classes the R4 StructureDefinitions
and the C4BB profiles state and HL7's JSON Schema does not: a 1..1 element left out, a code
outside its required value set, an array or a string where one object belongs, an empty
object or array, two variants of a choice, a day that does not exist, a fraction in an
integer, a reference to the wrong type, an extension with only a url, a Period that ends
before it starts, a member named twice; and, against the profiles, an element the profile
requires, a pattern value changed, a required slice gone, a code outside an IG value set.
Then it runs `onramp validate --tier T --format json` for each tier and prints, per class,
how many copies each tier flags (and how many ajv 8 would: the schema tier's verdicts are
ajv's). Nothing is written to the repository; the package is read from where it is.

Usage: python3 bench/mutations.py [--package PATH] [--workdir DIR]
"""

import argparse
import collections
import copy
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
ONRAMP = ROOT / "target" / "release" / "onramp"
DEFAULT_PACKAGE = ROOT.parent / "shared" / "reference" / "hl7.fhir.us.carin-bb-2.0.0.tgz"
TIERS = ("schema", "structure", "profile")

# Per resource type: 1..1 in R4 (a primitive the schema cannot require), elements the C4BB
# profiles require that R4 does not, and an element with a required R4 binding.
R4_REQUIRED = {
    "ExplanationOfBenefit": ["status", "use", "outcome", "created"],
    "Coverage": ["status"],
}
PROFILE_REQUIRED = {
    "ExplanationOfBenefit": ["billablePeriod", "identifier"],
    "Coverage": ["subscriberId", "relationship"],
    "Patient": ["gender", "name"],
    "Organization": ["name", "active"],
    "Practitioner": ["name"],
}
R4_CODES = {"ExplanationOfBenefit": "status", "Coverage": "status", "Patient": "gender", "Practitioner": "gender"}
SINGLE_COMPLEX = {
    "ExplanationOfBenefit": ["patient", "type", "billablePeriod", "insurer", "provider"],
    "Coverage": ["beneficiary", "relationship", "period"],
    "Patient": ["maritalStatus"],
    "Organization": [],
    "Practitioner": [],
    "RelatedPerson": ["patient"],
}
REFERENCES = {
    "ExplanationOfBenefit": ("patient", "Organization/x"),
    "Coverage": ("beneficiary", "Organization/x"),
    "RelatedPerson": ("patient", "Practitioner/x"),
}


def dates(node, path=()):
    """Pointers to every date-like string (YYYY-MM-DD...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from dates(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from dates(value, path + (i,))
    elif isinstance(node, str) and len(node) >= 10 and node[4] == "-" and node[7] == "-" and node[:4].isdigit():
        yield path


def set_at(doc, path, value):
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def mutations(resource):
    """(class, mutated resource or raw text) for every rule class that applies."""
    kind = resource["resourceType"]
    out = []

    def add(klass, change):
        doc = copy.deepcopy(resource)
        if change(doc) is not False:
            out.append((klass, doc))

    for name in R4_REQUIRED.get(kind, []):
        if name in resource:
            add("R4: a 1..1 element left out", lambda d, n=name: d.pop(n))
    if R4_CODES.get(kind) in resource:
        add("R4: a code outside its required value set", lambda d: d.__setitem__(R4_CODES[kind], "bogus"))
    for name in SINGLE_COMPLEX.get(kind, []):
        if isinstance(resource.get(name), dict):
            add("R4: an array where one object belongs", lambda d, n=name: d.__setitem__(n, [d[n]]))
            add("R4: a string where an object belongs", lambda d, n=name: d.__setitem__(n, "text"))
    add("R4: an empty object", lambda d: d.__setitem__("meta", {}) if "meta" not in d else d["meta"].__setitem__("tag", [{}]))
    if isinstance(resource.get("identifier"), list):
        add("R4: an empty array", lambda d: d.__setitem__("identifier", []))
    if kind == "ExplanationOfBenefit" and resource.get("item"):
        first = resource["item"][0]
        if "servicedDate" in first:
            add("R4: two variants of a choice", lambda d: d["item"][0].__setitem__("servicedPeriod", {"start": d["item"][0]["servicedDate"]}))
        add("R4: a fraction in a positiveInt", lambda d: d["item"][0].__setitem__("sequence", 1.5))
    date_paths = list(dates(resource))
    if date_paths:
        add("R4: a day that does not exist", lambda d: set_at(d, date_paths[0], "2021-02-30" + (d_tail(d, date_paths[0]))))
    if kind in REFERENCES and isinstance(resource.get(REFERENCES[kind][0]), dict):
        element, wrong = REFERENCES[kind]
        add("R4: a reference to the wrong type", lambda d: d[element].__setitem__("reference", wrong))
    add("R4: an extension with only a url", lambda d: d.setdefault("extension", []).append({"url": "http://example.org/x"}))
    add("R4: a Period that ends before it starts", lambda d: period(d))
    out.append(("R4: a member named twice", json.dumps(resource).replace('"resourceType": ', '"id": "twice", "id": "again", "resourceType": ', 1)))
    for name in PROFILE_REQUIRED.get(kind, []):
        if name in resource:
            add("C4BB: an element the profile requires left out", lambda d, n=name: d.pop(n))
    if kind == "ExplanationOfBenefit":
        add("C4BB: a pattern value changed (use)", lambda d: d.__setitem__("use", "preauthorization"))
        add("C4BB: the required uniqueclaimid slice gone",
            lambda d: [i["type"]["coding"][0].__setitem__("code", "payerid") for i in d.get("identifier", []) if "type" in i] or False)
        if any("careTeam" in resource for _ in [0]):
            add("C4BB: a code outside an IG value set (careTeam.role)",
                lambda d: d["careTeam"][0]["role"]["coding"][0].__setitem__("code", "nobody"))
    if kind == "Coverage":
        add("C4BB: two payors where the profile allows one", lambda d: d.__setitem__("payor", d["payor"] * 2))
    return out


def d_tail(doc, path):
    node = doc
    for step in path:
        node = node[step]
    return node[10:]


def period(doc):
    for name in ("billablePeriod", "period"):
        if isinstance(doc.get(name), dict):
            doc[name] = {"start": "2022-03-01", "end": "2022-01-01"}
            return True
    return False


def flagged(directory, tier):
    out = subprocess.run([ONRAMP, "validate", "--tier", tier, "--format", "json", directory],
                         capture_output=True, check=False)
    document = json.loads(out.stdout)
    return {pathlib.Path(f["file"]).name for f in document["findings"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", type=pathlib.Path, default=DEFAULT_PACKAGE)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if not args.package.is_file():
        sys.exit(f"no CARIN package at {args.package}")
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="onramp-mutations-"))
    broken = work / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    classes = {}
    with tarfile.open(args.package) as archive:
        examples = [m for m in archive.getmembers() if m.name.startswith("package/example/") and m.name.endswith(".json")]
        for member in sorted(examples, key=lambda m: m.name):
            resource = json.load(archive.extractfile(member))
            for number, (klass, doc) in enumerate(mutations(resource)):
                name = f"{pathlib.Path(member.name).stem}-{number:02d}.json"
                text = doc if isinstance(doc, str) else json.dumps(doc)
                (broken / name).write_text(text)
                classes[name] = klass
    counts = {tier: flagged(broken, tier) for tier in TIERS}
    table = collections.OrderedDict()
    for name, klass in sorted(classes.items(), key=lambda kv: kv[1]):
        row = table.setdefault(klass, {"copies": 0, **{t: 0 for t in TIERS}})
        row["copies"] += 1
        for tier in TIERS:
            row[tier] += name in counts[tier]
    print(f"{len(classes)} single-rule copies of the {len(examples)} CARIN IG examples in {broken}\n")
    print(f"{'class':58} {'copies':>6} {'schema':>7} {'+struct':>8} {'+profile':>9}")
    for klass, row in table.items():
        print(f"{klass:58} {row['copies']:6} {row['schema']:7} {row['structure']:8} {row['profile']:9}")
    total = {t: sum(r[t] for r in table.values()) for t in TIERS}
    print(f"{'all':58} {len(classes):6} {total['schema']:7} {total['structure']:8} {total['profile']:9}")
    print("(a copy counts as flagged when the tier reports anything in it; the schema tier is ajv 8's verdict)")


if __name__ == "__main__":
    main()
