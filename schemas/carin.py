#!/usr/bin/env python3
"""Derive what onramp needs from the CARIN Blue Button IG 2.0.0 package.

The source is the HL7 FHIR package hl7.fhir.us.carin-bb 2.0.0 (CC0), a .tgz whose sha256 is
pinned below. The script refuses any other file, then writes schemas/carin-bb/capability.json:
per resource type of the IG's CapabilityStatement (c4bb), the expectation (SHALL, SHOULD,
MAY) of each interaction and search parameter and the _include values, and, per search
parameter the IG defines, its type, FHIRPath expression, targets and comparators. The output
is written deterministically; its sha256 is printed (record it in schemas/README.md and
tests/schema.rs when it changes).

Usage: python3 schemas/carin.py [--package PATH] [--check]
  --package PATH  the .tgz (default: ../shared/reference/hl7.fhir.us.carin-bb-2.0.0.tgz
                  beside the repository)
  --check         derive into memory and fail unless it equals the committed file
"""

import argparse
import hashlib
import json
import pathlib
import sys
import tarfile

PACKAGE_SHA256 = "59d148ab444125c8eea53c6197de08c8f1781aaaa55a03858640db4a5f8a819b"
ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = ROOT.parent / "shared" / "reference" / "hl7.fhir.us.carin-bb-2.0.0.tgz"
TARGET = ROOT / "schemas" / "carin-bb" / "capability.json"
EXPECTATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"


def expectation(element):
    for extension in element.get("extension", []):
        if extension.get("url") == EXPECTATION:
            return extension.get("valueCode")
    return None


def derive(package_bytes):
    import io

    members = {}
    with tarfile.open(fileobj=io.BytesIO(package_bytes), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            if name.startswith("package/") and name.endswith(".json") and "/" not in name[8:]:
                members[name[8:]] = json.load(archive.extractfile(member))
    capability = members["CapabilityStatement-c4bb.json"]
    resources = {}
    for rest in capability["rest"]:
        for resource in rest.get("resource", []):
            resources[resource["type"]] = {
                "interactions": {i["code"]: expectation(i) for i in resource.get("interaction", [])},
                "searchParams": {p["name"]: expectation(p) for p in resource.get("searchParam", [])},
                "includes": resource.get("searchInclude", []),
            }
    parameters = {}
    for name, document in sorted(members.items()):
        if document.get("resourceType") != "SearchParameter":
            continue
        for base in document.get("base", []):
            parameters.setdefault(base, {})[document["code"]] = {
                "type": document["type"],
                "expression": document.get("expression"),
                "target": document.get("target", []),
                "comparator": document.get("comparator", []),
            }
    derived = {
        "source": "hl7.fhir.us.carin-bb 2.0.0, CapabilityStatement-c4bb.json and SearchParameter-*.json",
        "url": capability["url"],
        "version": capability["version"],
        "resources": resources,
        "searchParameters": parameters,
    }
    return (json.dumps(derived, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", type=pathlib.Path, default=DEFAULT_PACKAGE)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    data = args.package.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != PACKAGE_SHA256:
        sys.exit(f"{args.package} has sha256 {digest}, not the pinned {PACKAGE_SHA256}")
    derived = derive(data)
    if args.check:
        if TARGET.read_bytes() != derived:
            sys.exit(f"{TARGET} differs from what the package derives; run schemas/carin.py")
        print(f"{TARGET.name} is up to date")
        return
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(derived)
    print(f"wrote {TARGET} (sha256 {hashlib.sha256(derived).hexdigest()})")


if __name__ == "__main__":
    main()
