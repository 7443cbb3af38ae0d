#!/usr/bin/env node
// The peer onramp is measured against: ajv 8 validating FHIR R4 per definition, the way a
// careful Node user would (the resource's own definition, compiled once, no 146-way oneOf).
//
// Usage: node ajv-validate.js SCHEMA MODE FILE.ndjson
//   MODE bench-valid    validate every line, count the invalid ones (ajv defaults: fastest)
//   MODE bench-invalid  validate every line with allErrors, print every error's path
//                       (what `onramp validate` reports), count the invalid ones
//   MODE verdicts       print "LINE<TAB>valid|invalid" for every non-blank line
// Requires ajv@8 resolvable from NODE_PATH or the working directory.

"use strict";
const fs = require("fs");
const Ajv = require("ajv");

const [schemaPath, mode, file] = process.argv.slice(2);
const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
// ajv 8 reads draft-06's identifier as `$id`; the schema's `id` is the same URI.
schema.$id = schema.id;
delete schema.id;

const allErrors = mode === "bench-invalid";
const ajv = new Ajv({ strict: false, allErrors });
ajv.addMetaSchema(require("ajv/dist/refs/json-schema-draft-06.json"));
ajv.addSchema(schema);
const types = new Set(Object.keys(schema.discriminator.mapping));
const validators = new Map();
function validatorFor(type) {
  let v = validators.get(type);
  if (!v) {
    v = ajv.getSchema(`${schema.$id}#/definitions/${type}`);
    validators.set(type, v);
  }
  return v;
}

function check(resource) {
  if (resource === null || typeof resource !== "object" || Array.isArray(resource)) return null;
  const type = resource.resourceType;
  if (typeof type !== "string" || !types.has(type)) return null;
  const v = validatorFor(type);
  return v(resource) ? true : v.errors;
}

// Compile the corpus's types before the clock starts: `seconds` is ajv's steady state
// (read + parse + validate), never its schema compilation.
for (const type of ["ExplanationOfBenefit", "Patient", "Coverage", "Organization", "Practitioner", "Location"]) {
  validatorFor(type);
}
const started = process.hrtime.bigint();
const text = fs.readFileSync(file, "utf8");
const lines = text.split("\n");
const out = [];
let resources = 0;
let invalid = 0;
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  if (line.trim() === "") continue;
  resources++;
  let verdict;
  try {
    verdict = check(JSON.parse(line));
  } catch (e) {
    verdict = null;
  }
  const ok = verdict === true;
  if (!ok) invalid++;
  if (mode === "verdicts") out.push(`${i + 1}\t${ok ? "valid" : "invalid"}`);
  else if (mode === "bench-invalid" && Array.isArray(verdict)) {
    for (const e of verdict) out.push(`${i + 1}\t${e.instancePath}\t${e.message}`);
  }
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
if (out.length) process.stdout.write(out.join("\n") + "\n");
process.stderr.write(JSON.stringify({ resources, invalid, seconds }) + "\n");
