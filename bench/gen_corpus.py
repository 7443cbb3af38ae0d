#!/usr/bin/env python3
"""Deterministic FHIR R4 corpus for the validation benchmark and the ajv differential check.

Writes NDJSON files into OUTDIR:
  valid.ndjson    N resources, ~85% ExplanationOfBenefit of 3-15 KB (CARIN Blue Button
                  2.0.0: professional, inpatient, outpatient, pharmacy), the rest Patient,
                  Coverage, Organization, Practitioner and Location; valid at every tier
                  (R4 schema, R4 StructureDefinitions, the CARIN profiles they declare).
  invalid.ndjson  the same resources with exactly one mutation each, drawn from the classes
                  the validator must get right (wrong primitive type, unknown element, bad
                  date, long id, bad code, array/object swaps, null, whitespace edge cases of
                  ECMA-262 regexes, missing/unknown resourceType, malformed JSON, ...). Some
                  mutations are valid under the schema on purpose (an array where an object
                  belongs, U+0085 in a string): the verdict to match is ajv's, not intent.

Usage: gen_corpus.py OUTDIR [--count N] [--seed S]
"""

import argparse
import copy
import json
import pathlib
import random

EOB_KINDS = {
    "professional": ("professional", "Professional", "C4BB-ExplanationOfBenefit-Professional-NonClinician"),
    "inpatient": ("institutional", "Institutional", "C4BB-ExplanationOfBenefit-Inpatient-Institutional"),
    "outpatient": ("institutional", "Institutional", "C4BB-ExplanationOfBenefit-Outpatient-Institutional"),
    "pharmacy": ("pharmacy", "Pharmacy", "C4BB-ExplanationOfBenefit-Pharmacy"),
}
CARIN = "http://hl7.org/fhir/us/carin-bb"
ADJUDICATION = [
    ("http://terminology.hl7.org/CodeSystem/adjudication", "submitted", "Submitted Amount"),
    ("http://terminology.hl7.org/CodeSystem/adjudication", "copay", "CoPay"),
    ("http://terminology.hl7.org/CodeSystem/adjudication", "eligible", "Eligible Amount"),
    ("http://terminology.hl7.org/CodeSystem/adjudication", "deductible", "Deductible"),
    ("http://terminology.hl7.org/CodeSystem/adjudication", "benefit", "Benefit Amount"),
    (f"{CARIN}/CodeSystem/C4BBAdjudication", "coinsurance", "Co-insurance"),
]
CPT = ["99213", "99214", "75710", "80053", "85025", "93000", "71046", "36415", "99284", "J1100"]
ICD = ["E11.9", "I10", "J45.909", "M54.5", "Z00.00", "R07.9", "K21.9", "F41.1", "N39.0", "E78.5"]
NDC = ["00093015001", "00591040510", "68180051301", "00378180110", "16729013117"]
GIVEN = ["John", "Maria", "Wei", "Aisha", "Carlos", "Olga", "Kenji", "Fatima", "Liam", "Noor"]
FAMILY = ["Allen", "Garcia", "Chen", "Okafor", "Novak", "Silva", "Tanaka", "Haddad", "Murphy"]
CITIES = [("Boston", "MA", "02114"), ("Pittsburgh", "PA", "15213"), ("Austin", "TX", "78701")]
# Every resource conforms to its CARIN Blue Button 2.0.0 profile and declares it with the
# version (what CARIN 2.0.0 requires), so `onramp validate` checks all three tiers in full.
CARIN_VERSION = "2.0.0"


def profile(name):
    return f"{CARIN}/StructureDefinition/{name}|{CARIN_VERSION}"


def meta(name, last_updated="2022-02-24T10:00:00Z"):
    return {"lastUpdated": last_updated, "profile": [profile(name)]}


def coding(system, code, display=None):
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system, code, display=None, text=None):
    cc = {"coding": [coding(system, code, display)]}
    if text:
        cc["text"] = text
    return cc


def money(rng, low=0, high=2000):
    cents = rng.randint(low * 100, high * 100)
    # Keep two decimals as written ("12.50"): FHIR decimals carry precision.
    return {"value": float(f"{cents / 100:.2f}"), "currency": "USD"}


def date(rng, year_from=2018, year_to=2023):
    return f"{rng.randint(year_from, year_to)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def status(discriminator, reason):
    """An adjudication that carries a status, not an amount (CARIN's discriminator slices)."""
    return {
        "category": concept(f"{CARIN}/CodeSystem/C4BBAdjudicationDiscriminator", discriminator),
        "reason": concept(f"{CARIN}/CodeSystem/C4BBPayerAdjudicationStatus", reason),
    }


def supporting(sequence, category, display, **value):
    info = {"sequence": sequence, "category": concept(f"{CARIN}/CodeSystem/C4BBSupportingInfoType", category, display)}
    info.update(value)
    return info


def eob(rng, index, patient_id):
    kind = rng.choice(list(EOB_KINDS))
    claim_type, claim_display, profile_name = EOB_KINDS[kind]
    start = date(rng)
    items = []
    for seq in range(1, rng.randint(2, 14) + 1):
        item = {
            "sequence": seq,
            "productOrService": concept(
                "http://hl7.org/fhir/sid/ndc" if kind == "pharmacy" else "http://www.ama-assn.org/go/cpt",
                rng.choice(NDC if kind == "pharmacy" else CPT),
            ),
            "servicedDate": start,
            "adjudication": [
                {
                    "category": concept(system, code, display, text=f"{display} for the line item."),
                    "amount": money(rng, 0, 900),
                }
                for system, code, display in rng.sample(ADJUDICATION, rng.randint(2, 5))
            ],
        }
        if kind == "professional":
            item["locationCodeableConcept"] = concept(
                "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
                rng.choice(["11", "21", "22", "23"]),
            )
            item["diagnosisSequence"] = [1]
            item["adjudication"].append(status("benefitpaymentstatus", "innetwork"))
        elif kind in ("inpatient", "outpatient"):
            item["revenue"] = concept("https://www.nubc.org/CodeSystem/RevenueCodes", rng.choice(["0300", "0450", "0636"]))
            item["diagnosisSequence"] = [1]
        else:
            item["quantity"] = {"value": rng.randint(1, 90)}
        items.append(item)
    info = [supporting(1, "clmrecvddate", "Claim Received Date", timingDate=start)]
    if kind == "pharmacy":
        info += [
            supporting(2, "dayssupply", "Days Supply", valueQuantity={"value": rng.choice([30, 60, 90])}),
            supporting(3, "dawcode", "DAW Code", code=concept("http://terminology.hl7.org/CodeSystem/NCPDPDispensedAsWrittenOrProductSelectionCode", "0")),
            supporting(4, "refillnum", "Refill Number", valueQuantity={"value": rng.randint(0, 3)}),
            supporting(5, "refillsauthorized", "Refills Authorized", valueQuantity={"value": 3}),
        ]
    if kind == "inpatient":
        info.append(supporting(2, "admissionperiod", "Admission Period", timingPeriod={"start": start, "end": start}))
    header = [status("billingnetworkstatus", "innetwork")]
    if kind != "professional":
        header.append(status("benefitpaymentstatus", "innetwork"))
    resource = {
        "resourceType": "ExplanationOfBenefit",
        "id": f"eob-{index}",
        "meta": meta(profile_name, f"{start}T10:{rng.randint(10, 59)}:00-05:00"),
        "identifier": [
            {
                "type": concept(f"{CARIN}/CodeSystem/C4BBIdentifierType", "uc", "Unique Claim ID"),
                "system": "https://demo-health-plan.example/fhir/EOBIdentifier",
                "value": f"CLM{index:08d}",
            }
        ],
        "status": "active",
        "type": concept("http://terminology.hl7.org/CodeSystem/claim-type", claim_type, text=claim_display),
        "use": "claim",
        "patient": {"reference": f"Patient/{patient_id}"},
        "billablePeriod": {"start": start, "end": start},
        "created": f"{start}T00:00:00-05:00",
        "insurer": {"reference": "Organization/payer-1", "display": "Demo Health Plan"},
        "provider": {"reference": f"Organization/provider-{rng.randint(1, 20)}"},
        "outcome": "complete",
        "supportingInfo": info,
        "insurance": [{"focal": True, "coverage": {"reference": f"Coverage/cov-{patient_id}"}}],
        "item": items,
        "adjudication": header,
        "total": [
            {"category": concept(system, code, display), "amount": money(rng, 0, 5000)}
            for system, code, display in ADJUDICATION[:3]
        ],
        "payment": {"type": concept(f"{CARIN}/CodeSystem/C4BBPayerAdjudicationStatus", "paid"), "date": start, "amount": money(rng)},
    }
    if kind in ("inpatient", "outpatient"):
        resource["subType"] = concept(f"{CARIN}/CodeSystem/C4BBInstitutionalClaimSubType", kind)
    if kind != "pharmacy":
        role = "rendering" if kind == "professional" else "attending"
        resource["careTeam"] = [
            {
                "sequence": 1,
                "provider": {"reference": f"Practitioner/pr-{rng.randint(1, 50)}"},
                "role": concept(f"{CARIN}/CodeSystem/C4BBClaimCareTeamRole", role),
            }
        ]
        other = "secondary" if kind == "professional" else "other"
        resource["diagnosis"] = [
            {
                "sequence": seq,
                "diagnosisCodeableConcept": concept("http://hl7.org/fhir/sid/icd-10-cm", code),
                "type": [
                    concept("http://terminology.hl7.org/CodeSystem/ex-diagnosistype", "principal")
                    if seq == 1
                    else concept(f"{CARIN}/CodeSystem/C4BBClaimDiagnosisType", other)
                ],
            }
            for seq, code in enumerate(rng.sample(ICD, rng.randint(1, 4)), start=1)
        ]
    return resource


def patient(rng, index):
    city, state, zip_code = rng.choice(CITIES)
    return {
        "resourceType": "Patient",
        "id": f"pat-{index}",
        "meta": meta("C4BB-Patient"),
        "identifier": [{
            "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MB", "Member Number"),
            "system": "https://demo-health-plan.example/member-id",
            "value": f"{100000000000 + index}",
        }],
        "active": True,
        "name": [{"use": "official", "family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
        "telecom": [{"system": "phone", "value": f"555-01{index % 100:02d}", "use": "home"}],
        "gender": rng.choice(["male", "female", "other", "unknown"]),
        "birthDate": date(rng, 1930, 2005),
        "address": [{"line": [f"{rng.randint(1, 999)} Main St"], "city": city, "state": state, "postalCode": zip_code}],
    }


def coverage(rng, index):
    return {
        "resourceType": "Coverage",
        "id": f"cov-{index}",
        "meta": meta("C4BB-Coverage"),
        "status": "active",
        "type": concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "HIP", "health insurance plan policy"),
        "subscriberId": f"{100000000000 + index}",
        "beneficiary": {"reference": f"Patient/pat-{index}"},
        "relationship": concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self"),
        "period": {"start": "2020-01-01", "end": "2024-12-31"},
        "payor": [{"reference": "Organization/payer-1"}],
        "class": [{"type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"), "value": "GOLD-PPO", "name": "Gold PPO"}],
    }


def npi(value):
    return {
        "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "NPI"),
        "system": "http://hl7.org/fhir/sid/us-npi",
        "value": value,
    }


def organization(rng, index):
    city, state, zip_code = rng.choice(CITIES)
    return {
        "resourceType": "Organization",
        "id": f"provider-{index}",
        "meta": meta("C4BB-Organization"),
        "identifier": [npi(f"{1000000000 + index * 7}")],
        "active": True,
        "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")],
        "name": f"{rng.choice(FAMILY)} Medical Group",
        "address": [{"line": [f"{rng.randint(1, 999)} Hospital Rd"], "city": city, "state": state, "postalCode": zip_code}],
    }


def practitioner(rng, index):
    return {
        "resourceType": "Practitioner",
        "id": f"pr-{index}",
        "meta": meta("C4BB-Practitioner"),
        "identifier": [npi(f"{1500000000 + index * 3}")],
        "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)], "prefix": ["Dr."]}],
    }


def location(rng, index):
    city, state, zip_code = rng.choice(CITIES)
    return {
        "resourceType": "Location",
        "id": f"loc-{index}",
        "status": "active",
        "name": f"{city} Clinic {index}",
        "address": {"line": [f"{rng.randint(1, 999)} Elm St"], "city": city, "state": state, "postalCode": zip_code},
        "managingOrganization": {"reference": f"Organization/provider-{index}"},
    }


def resource(rng, index):
    roll = rng.random()
    patient_id = f"pat-{index % 997}"
    if roll < 0.85:
        return eob(rng, index, patient_id)
    return rng.choice([patient, coverage, organization, practitioner, location])(rng, index)


# ---- mutations: each returns the mutated resource (or raw text for malformed JSON) ----

def walk(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (key,), value
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield path + (i,), value
            yield from walk(value, path + (i,))


def pick(rng, res, predicate):
    found = [(p, v) for p, v in walk(res) if predicate(p, v)]
    return rng.choice(found) if found else None


def set_at(res, path, value):
    node = res
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def strings(p, v):
    return isinstance(v, str) and p[-1] not in ("resourceType",)


def m_wrong_type(rng, res):
    hit = pick(rng, res, strings)
    set_at(res, hit[0], rng.choice([42, True, 1.5]))
    return res


def m_number_as_string(rng, res):
    hit = pick(rng, res, lambda p, v: isinstance(v, (int, float)) and not isinstance(v, bool))
    if hit is None:
        return m_wrong_type(rng, res)
    set_at(res, hit[0], str(hit[1]))
    return res


def m_unknown_element(rng, res):
    hit = pick(rng, res, lambda p, v: isinstance(v, dict))
    target = hit[1] if hit else res
    target[rng.choice(["colour", "Status", "_extra", "notes", "valueX"])] = "x"
    return res


def m_bad_date(rng, res):
    hit = pick(rng, res, lambda p, v: isinstance(v, str) and p[-1] in ("birthDate", "servicedDate", "timingDate", "date", "start", "end", "created", "lastUpdated"))
    if hit is None:
        res["meta"] = {"lastUpdated": "2022-02-24"}  # an instant needs a time
        return res
    set_at(res, hit[0], rng.choice(["2020-13-01", "2020-02-30x", "20-01-01", "2020/01/01", "2020-01-01T25:00:00Z", "2020-01-01T10:00:00", "2020-01-01\n"]))
    return res


def m_long_id(rng, res):
    res["id"] = "x" * rng.choice([65, 100])
    return res


def m_bad_code(rng, res):
    for key in ("status", "use", "outcome", "gender"):
        if key in res:
            res[key] = rng.choice(["Active", "unknown-code", "", " active", "active "])
            return res
    res["status"] = "nope"
    return res


def m_array_as_object(rng, res):
    hit = pick(rng, res, lambda p, v: isinstance(v, list) and v)
    set_at(res, hit[0], hit[1][0])
    return res


def m_object_as_array(rng, res):
    # Valid under the schema: FHIR's JSON Schema never says `type: object`.
    hit = pick(rng, res, lambda p, v: isinstance(v, dict) and p and not isinstance(p[-1], int))
    if hit is None:
        return m_array_as_object(rng, res)
    set_at(res, hit[0], [hit[1]])
    return res


def m_null(rng, res):
    hit = pick(rng, res, lambda p, v: p and p[-1] != "resourceType")
    set_at(res, hit[0], None)
    return res


def m_whitespace(rng, res):
    hit = pick(rng, res, lambda p, v: isinstance(v, str) and p[-1] in ("code", "status", "value", "text", "display", "family", "name", "system", "reference"))
    if hit is None:
        return m_bad_code(rng, res)
    ch = rng.choice(["\ufeff", "\u0085", "\u00a0", "\u2028", "\u3000", "\u000b", "\u180e", "  ", "\n", "\t"])
    where = rng.choice(["start", "end", "middle"])
    text = hit[1] or "x"
    if where == "start":
        text = ch + text
    elif where == "end":
        text = text + ch
    else:
        text = text[:1] + ch + text[1:]
    set_at(res, hit[0], text)
    return res


def m_empty_string(rng, res):
    hit = pick(rng, res, strings)
    set_at(res, hit[0], rng.choice(["", " ", "\n"]))
    return res


def m_missing_type(rng, res):
    del res["resourceType"]
    return res


def m_unknown_type(rng, res):
    res["resourceType"] = rng.choice(["Patients", "explanationOfBenefit", "Claimx"])
    return res


def m_required(rng, res):
    if res["resourceType"] == "ExplanationOfBenefit" and res.get("item"):
        res["item"][0].pop("sequence", None)
        return res
    if res["resourceType"] == "Coverage":
        del res["beneficiary"]
        return res
    return m_unknown_element(rng, res)


def m_big_number(rng, res):
    # Well-formed JSON numbers beyond f64: valid wherever a number belongs.
    hit = pick(rng, res, lambda p, v: isinstance(v, (int, float)) and not isinstance(v, bool))
    if hit is None:
        return m_wrong_type(rng, res)
    set_at(res, hit[0], "__BIG__")
    return res


def m_malformed(rng, res):
    text = json.dumps(res, separators=(",", ":"), ensure_ascii=False)
    cut = rng.randint(1, len(text) - 2)
    choice = rng.choice(["truncate", "comma", "quote"])
    if choice == "truncate":
        return text[:cut]
    if choice == "comma":
        return text[:-1] + ",}"
    return text.replace('"', "'", 1)


MUTATIONS = [
    m_wrong_type, m_number_as_string, m_unknown_element, m_bad_date, m_long_id, m_bad_code,
    m_array_as_object, m_object_as_array, m_null, m_whitespace, m_empty_string,
    m_missing_type, m_unknown_type, m_required, m_big_number, m_malformed,
]


def dump(res):
    text = json.dumps(res, separators=(",", ":"), ensure_ascii=False)
    return text.replace('"__BIG__"', "1e400")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=9115)
    parser.add_argument("--valid-only", action="store_true")
    args = parser.parse_args()
    out = pathlib.Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    valid_bytes = 0
    with open(out / "valid.ndjson", "w", encoding="utf-8") as valid, \
            open(out / "invalid.ndjson", "w", encoding="utf-8") as invalid:
        for index in range(args.count):
            res = resource(rng, index)
            line = dump(res)
            valid_bytes += len(line.encode()) + 1
            valid.write(line + "\n")
            if args.valid_only:
                continue
            mutation = MUTATIONS[index % len(MUTATIONS)]
            mutated = mutation(rng, copy.deepcopy(res))
            invalid.write((mutated if isinstance(mutated, str) else dump(mutated)) + "\n")
    print(f"{args.count} resources, {valid_bytes / args.count / 1024:.1f} KiB on average, in {out}")


if __name__ == "__main__":
    main()
