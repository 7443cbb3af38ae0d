//! A FHIR NPM package (`.tgz`, as HL7 publishes IGs) read into memory: its name, version and
//! canonical base, and the conformance resources the profile tier derives its rules from
//! (StructureDefinitions with snapshots, ValueSets, CodeSystems, the CapabilityStatements).
//!
//! Only the files at the top of `package/` are read (examples, XML and other folders are
//! skipped unread), each as the typed subset onramp uses. A package is outside input: a
//! broken archive, a file that is not JSON, a file or a whole package over its size cap is
//! an error naming the package and the file, never a panic.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

/// The most one file of a package may hold, uncompressed.
const MAX_FILE: u64 = 64 << 20;
/// The most a whole package may hold, uncompressed.
const MAX_PACKAGE: u64 = 512 << 20;

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {what}")]
pub struct PackageError {
    /// The package's file (or the shipped package's name).
    pub origin: String,
    pub what: String,
}

/// One FHIR package's conformance resources.
#[derive(Debug, Default)]
pub struct Package {
    /// `hl7.fhir.us.core`.
    pub name: String,
    pub version: String,
    /// `http://hl7.org/fhir/us/core`, when `package.json` says.
    pub canonical: Option<String>,
    /// Package name → version, as `package.json` lists them.
    pub dependencies: BTreeMap<String, String>,
    /// Where it was read from, for messages.
    pub origin: String,
    pub structure_definitions: Vec<StructureDefinition>,
    pub value_sets: Vec<ValueSet>,
    pub code_systems: Vec<CodeSystem>,
    pub capability_statements: Vec<CapabilityStatement>,
    pub search_parameters: Vec<SearchParameter>,
}

impl Package {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Read a package file (`.tgz`).
    pub fn read_file(path: &Path) -> Result<Self, PackageError> {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| PackageError {
            origin: origin.clone(),
            what: format!("cannot be read ({e}); give the path of a FHIR package .tgz"),
        })?;
        Self::read(std::io::BufReader::new(file), origin)
    }

    /// Read a package from its gzipped tar bytes.
    pub fn read(reader: impl Read, origin: String) -> Result<Self, PackageError> {
        let fail = |what: String| PackageError {
            origin: origin.clone(),
            what,
        };
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
        let entries = archive.entries().map_err(|e| fail(not_a_package(&e)))?;
        let mut package = Package {
            origin: origin.clone(),
            ..Package::default()
        };
        let mut manifest = None;
        let mut total = 0u64;
        for entry in entries {
            let mut entry = entry.map_err(|e| fail(not_a_package(&e)))?;
            let path = entry.path().map_err(|e| fail(not_a_package(&e)))?;
            let Some(name) = top_level_json(&path) else {
                continue;
            };
            let size = entry.header().size().unwrap_or(u64::MAX);
            if size > MAX_FILE {
                return Err(fail(format!(
                    "package/{name} holds {size} bytes, over the {} MB a package file may; \
                     is this a FHIR package?",
                    MAX_FILE >> 20
                )));
            }
            total += size;
            if total > MAX_PACKAGE {
                return Err(fail(format!(
                    "the package's JSON files hold over {} MB; is this a FHIR package?",
                    MAX_PACKAGE >> 20
                )));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(MAX_FILE)
                .read_to_end(&mut bytes)
                .map_err(|e| fail(not_a_package(&e)))?;
            if name == "package.json" {
                manifest = Some(
                    serde_json::from_slice::<Manifest>(&bytes)
                        .map_err(|e| fail(format!("package/package.json: {e}")))?,
                );
            } else if name != ".index.json" {
                package
                    .add(&bytes)
                    .map_err(|e| fail(format!("package/{name}: {e}")))?;
            }
        }
        let Some(manifest) = manifest else {
            return Err(fail(
                "has no package/package.json: it is not a FHIR NPM package (an IG's \
                 package.tgz, as the IG publishes it)"
                    .into(),
            ));
        };
        package.name = manifest.name;
        package.version = manifest.version;
        package.canonical = manifest.canonical;
        package.dependencies = manifest.dependencies;
        Ok(package)
    }

    /// One JSON file: kept when it is a conformance resource onramp uses.
    fn add(&mut self, bytes: &[u8]) -> Result<(), serde_json::Error> {
        let header: Header = serde_json::from_slice(bytes)?;
        match header.resource_type.as_deref() {
            Some("StructureDefinition") => self
                .structure_definitions
                .push(serde_json::from_slice(bytes)?),
            Some("ValueSet") => self.value_sets.push(serde_json::from_slice(bytes)?),
            Some("CodeSystem") => self.code_systems.push(serde_json::from_slice(bytes)?),
            Some("CapabilityStatement") => self
                .capability_statements
                .push(serde_json::from_slice(bytes)?),
            Some("SearchParameter") => self.search_parameters.push(serde_json::from_slice(bytes)?),
            _ => {}
        }
        Ok(())
    }
}

/// The example resources of a package (`package/example/*.json`), each as JSON.
pub fn examples(reader: impl Read, origin: &str) -> Result<Vec<serde_json::Value>, PackageError> {
    let fail = |what: String| PackageError {
        origin: origin.to_owned(),
        what,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut out = Vec::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| fail(not_a_package(&e)))? {
        let mut entry = entry.map_err(|e| fail(not_a_package(&e)))?;
        let path = entry.path().map_err(|e| fail(not_a_package(&e)))?;
        let Some(name) = path
            .to_str()
            .and_then(|p| p.strip_prefix("package/example/"))
            .filter(|n| n.ends_with(".json") && !n.contains('/') && !n.starts_with('.'))
            .map(str::to_owned)
        else {
            continue;
        };
        total += entry.header().size().unwrap_or(u64::MAX);
        if total > MAX_PACKAGE {
            return Err(fail("the examples hold too much to read".into()));
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_FILE)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(not_a_package(&e)))?;
        out.push(
            serde_json::from_slice(&bytes)
                .map_err(|e| fail(format!("package/example/{name}: {e}")))?,
        );
    }
    Ok(out)
}

fn not_a_package(error: &std::io::Error) -> String {
    format!("is not a readable gzipped tar ({error}); give a FHIR package .tgz")
}

/// `package/NAME.json` → `NAME.json`; anything deeper or not JSON → `None`.
fn top_level_json(path: &Path) -> Option<String> {
    let mut parts = path.components();
    let first = parts.next()?.as_os_str().to_str()?;
    let second = parts.next()?.as_os_str().to_str()?;
    if first != "package" || parts.next().is_some() || !second.ends_with(".json") {
        return None;
    }
    Some(second.to_owned())
}

#[derive(Deserialize)]
struct Manifest {
    name: String,
    version: String,
    #[serde(default)]
    canonical: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(default)]
    resource_type: Option<String>,
}

// ---- the typed subset of the conformance resources --------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureDefinition {
    pub url: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub name: String,
    /// `resource`, `complex-type`, `primitive-type`, `logical`.
    pub kind: String,
    /// The type it constrains.
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub derivation: Option<String>,
    #[serde(default)]
    pub base_definition: Option<String>,
    #[serde(default)]
    pub snapshot: Option<Snapshot>,
}

#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub element: Vec<ElementDefinition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementDefinition {
    #[serde(default)]
    pub id: String,
    pub path: String,
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<String>,
    #[serde(default)]
    pub base: Option<ElementBase>,
    #[serde(default, rename = "type")]
    pub types: Vec<ElementType>,
    #[serde(default)]
    pub binding: Option<Binding>,
    #[serde(default)]
    pub constraint: Vec<ElementConstraint>,
    #[serde(default)]
    pub slicing: Option<ElementSlicing>,
    #[serde(default)]
    pub must_support: bool,
    #[serde(default)]
    pub extension: Vec<TypeExtension>,
    /// `pattern[x]` and `fixed[x]`, by JSON name; everything else of the element is dropped.
    #[serde(flatten, deserialize_with = "values_only")]
    pub values: BTreeMap<String, serde_json::Value>,
}

/// Keep only the `pattern…` and `fixed…` members of what `flatten` hands over.
fn values_only<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, serde_json::Value>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, serde_json::Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an ElementDefinition")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if key.starts_with("pattern") || key.starts_with("fixed") {
                    out.insert(key, map.next_value()?);
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor)
}

#[derive(Debug, Deserialize)]
pub struct ElementBase {
    pub path: String,
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementType {
    pub code: String,
    #[serde(default)]
    pub profile: Vec<String>,
    #[serde(default)]
    pub target_profile: Vec<String>,
    #[serde(default)]
    pub extension: Vec<TypeExtension>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeExtension {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub value_url: Option<String>,
    #[serde(default)]
    pub value_boolean: Option<bool>,
}

impl ElementDefinition {
    /// Whether an extension with `url` says true on the element.
    pub fn flagged(&self, url: &str) -> bool {
        self.extension
            .iter()
            .any(|e| e.url == url && e.value_boolean == Some(true))
    }
}

impl ElementType {
    /// Whether an extension with `url` says true on this type.
    pub fn flagged(&self, url: &str) -> bool {
        self.extension
            .iter()
            .any(|e| e.url == url && e.value_boolean == Some(true))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    #[serde(default)]
    pub strength: String,
    #[serde(default)]
    pub value_set: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ElementConstraint {
    pub key: String,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default)]
    pub human: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ElementSlicing {
    #[serde(default)]
    pub discriminator: Vec<Discriminator>,
    #[serde(default)]
    pub rules: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Discriminator {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Deserialize)]
pub struct ValueSet {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub compose: Option<Compose>,
}

#[derive(Debug, Deserialize)]
pub struct Compose {
    #[serde(default)]
    pub include: Vec<ComposeSet>,
    #[serde(default)]
    pub exclude: Vec<ComposeSet>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComposeSet {
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub concept: Option<Vec<Concept>>,
    #[serde(default)]
    pub filter: Option<Vec<Filter>>,
    #[serde(default)]
    pub value_set: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Concept {
    pub code: String,
    #[serde(default)]
    pub concept: Vec<Concept>,
}

#[derive(Debug, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub property: String,
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeSystem {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub hierarchy_meaning: Option<String>,
    #[serde(default)]
    pub concept: Vec<Concept>,
    #[serde(default)]
    pub property: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct CapabilityStatement {
    #[serde(default)]
    pub rest: Vec<CapabilityRest>,
}

#[derive(Debug, Deserialize)]
pub struct CapabilityRest {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub resource: Vec<CapabilityResource>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityResource {
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub supported_profile: Vec<String>,
    #[serde(default)]
    pub search_param: Vec<CapabilitySearchParam>,
    /// `_include` values (`Type:parameter`; some IGs write the parameter alone).
    #[serde(default)]
    pub search_include: Vec<String>,
    /// `_revinclude` values (`Type:parameter` of the type that references this one).
    #[serde(default)]
    pub search_rev_include: Vec<String>,
    /// US Core's `search-parameter-combination`s, among others.
    #[serde(default)]
    pub extension: Vec<Extension>,
}

#[derive(Debug, Deserialize)]
pub struct CapabilitySearchParam {
    pub name: String,
    #[serde(default)]
    pub extension: Vec<Extension>,
}

/// An extension, as far as a CapabilityStatement's expectations need it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub value_code: Option<String>,
    #[serde(default)]
    pub value_string: Option<String>,
    #[serde(default)]
    pub extension: Vec<Extension>,
}

/// The capability expectation extension's URL.
const EXPECTATION: &str = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation";
/// The search-parameter-combination extension's URL.
const COMBINATION: &str =
    "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination";

impl CapabilityResource {
    /// The searches it makes SHALL: each single parameter so marked, and each combination
    /// so marked (its `required` parameters), in the statement's order.
    pub fn shall_searches(&self) -> Vec<Vec<String>> {
        let shall = |extensions: &[Extension]| {
            extensions
                .iter()
                .any(|e| e.url == EXPECTATION && e.value_code.as_deref() == Some("SHALL"))
        };
        let mut out: Vec<Vec<String>> = self
            .search_param
            .iter()
            .filter(|p| shall(&p.extension))
            .map(|p| vec![p.name.clone()])
            .collect();
        for combination in self.extension.iter().filter(|e| e.url == COMBINATION) {
            if !shall(&combination.extension) {
                continue;
            }
            let required: Vec<String> = combination
                .extension
                .iter()
                .filter(|e| e.url == "required")
                .filter_map(|e| e.value_string.clone())
                .collect();
            if !required.is_empty() && !out.contains(&required) {
                out.push(required);
            }
        }
        out
    }
}

/// A SearchParameter: what a search code of some types means.
#[derive(Debug, Deserialize)]
pub struct SearchParameter {
    pub code: String,
    #[serde(default)]
    pub base: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub expression: Option<String>,
    /// The types a reference parameter points at.
    #[serde(default)]
    pub target: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn reads_the_top_level_conformance_resources_only() {
        let bytes = tgz(&[
            (
                "package/package.json",
                br#"{"name":"x.y","version":"1.0.0","canonical":"http://x/y"}"#,
            ),
            (
                "package/ValueSet-a.json",
                br#"{"resourceType":"ValueSet","url":"http://x/y/ValueSet/a"}"#,
            ),
            (
                "package/example/Patient-p.json",
                br#"{"resourceType":"ValueSet","url":"skipped"}"#,
            ),
            ("package/Patient-p.json", br#"{"resourceType":"Patient"}"#),
        ]);
        let package = Package::read(&bytes[..], "t.tgz".into()).unwrap();
        assert_eq!(package.id(), "x.y@1.0.0");
        assert_eq!(package.canonical.as_deref(), Some("http://x/y"));
        assert_eq!(package.value_sets.len(), 1);
    }

    #[test]
    fn names_the_file_that_is_wrong() {
        let bytes = tgz(&[
            ("package/package.json", br#"{"name":"x","version":"1"}"#),
            ("package/ValueSet-a.json", b"{not json"),
        ]);
        let error = Package::read(&bytes[..], "t.tgz".into()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("t.tgz: package/ValueSet-a.json:"),
            "{error}"
        );
        let error = Package::read(&b"not a tar"[..], "t.tgz".into()).unwrap_err();
        assert!(error.to_string().contains("gzipped tar"), "{error}");
        let bytes = tgz(&[("package/ValueSet-a.json", br#"{"resourceType":"ValueSet"}"#)]);
        let error = Package::read(&bytes[..], "t.tgz".into()).unwrap_err();
        assert!(error.to_string().contains("package.json"), "{error}");
    }
}
