#!/usr/bin/env node
// Re-checks tests/fixtures/validate/cases.json against ajv 8: every case's expected verdict
// (`ajv_valid` where onramp deliberately differs, `valid` otherwise) must be ajv's.
// Usage: node ajv-fixtures.js SCHEMA CASES.json   (ajv@8 resolvable via NODE_PATH)
"use strict";
const fs = require("fs");
const Ajv = require("ajv");

const [schemaPath, casesPath] = process.argv.slice(2);
const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
schema.$id = schema.id;
delete schema.id;
const ajv = new Ajv({ strict: false });
ajv.addMetaSchema(require("ajv/dist/refs/json-schema-draft-06.json"));
// The whole schema, root oneOf included: the verdict of the official schema as published.
const validate = ajv.compile(schema);

const { cases } = JSON.parse(fs.readFileSync(casesPath, "utf8"));
let mismatches = 0;
for (const c of cases) {
  let verdict;
  try {
    verdict = validate(JSON.parse(c.document.replace(/^\uFEFF/, "")));
  } catch (e) {
    verdict = false;
  }
  const expected = c.ajv_valid ?? c.valid;
  if (verdict !== expected) {
    mismatches++;
    console.log(`MISMATCH ${c.name}: ajv says ${verdict ? "valid" : "invalid"}`);
  }
}
console.log(`${cases.length} fixtures, ${mismatches} disagree with ajv 8`);
process.exit(mismatches ? 1 : 0);
