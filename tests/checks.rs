//! Every check can fail: for each `Then` step of the shipped features, a sandbox fault
//! that breaks exactly that rule, and a run in which exactly that step fails, as a
//! conformance failure, with a message that says why. A `Then` step without a case here
//! fails `every_then_step_has_a_case`.

mod common;

use common::run::Run;

/// A target, tags and faults under which `step` (as the features write it; `<type>` stands
/// for any type) is the one step that fails, saying `says`.
struct Case {
    /// A SHOULD: the step warns instead of failing.
    warns: bool,
    step: &'static str,
    target: &'static str,
    tags: &'static str,
    faults: &'static [&'static str],
    says: &'static str,
}

fn breaks(case: Case) {
    let mut args = vec!["--target", case.target, "--tags", case.tags];
    for fault in case.faults {
        args.extend(["--sandbox-fault", fault]);
    }
    let run = Run::new(&args);
    let failed = run.failed_steps();
    let matches = |text: &str| match case.step.split_once("<type>") {
        Some((before, after)) => text.starts_with(before) && text.ends_with(after),
        None => text == case.step,
    };
    // The step fails, and nothing else does (a step of a Scenario Outline may fail in
    // several of its rows: it is one check).
    assert!(
        !failed.is_empty() && failed.iter().all(|f| matches(&f.step)),
        "with {:?}, exactly `{}` should fail; failed: {failed:#?}\n{}",
        case.faults,
        case.step,
        run.stdout()
    );
    for only in &failed {
        assert_eq!(only.failure, "conformance", "{only:#?}");
        assert!(only.error.contains(case.says), "{only:#?}");
        assert_eq!(
            only.status,
            if case.warns { "warning" } else { "failed" },
            "{only:#?}"
        );
    }
    assert_eq!(
        run.code(),
        if case.warns { 0 } else { 1 },
        "{}",
        run.stdout()
    );
}

macro_rules! cases {
    ($($name:ident: $($warns:ident)? $step:literal, $target:expr, $tags:literal, [$($fault:literal),*], $says:literal;)*) => {
        /// The `Then` steps the cases break.
        const BROKEN: &[&str] = &[$($step),*];
        $(
            #[test]
            fn $name() {
                breaks(Case {
                    warns: stringify!($($warns)?) == "warns",
                    step: $step,
                    target: $target,
                    tags: $tags,
                    faults: &[$($fault),*],
                    says: $says,
                });
            }
        )*
    };
}

cases! {
    a_smart_configuration_without_a_token_endpoint:
        "the SMART configuration is JSON with the endpoints and capabilities SMART App Launch 2.0 requires", "sandbox", "@discovery",
        ["smart-field:-token_endpoint"], "token_endpoint is missing";
    pkce_plain_offered:
        "it offers the authorization code grant with PKCE S256 and not plain", "sandbox", "@discovery",
        ["smart-field:code_challenge_methods_supported=[\"S256\",\"plain\"]"], "includes plain";
    openid_without_keys:
        "it names the OpenID Connect issuer and keys when it offers sso-openid-connect", "sandbox", "@discovery",
        ["smart-field:-jwks_uri"], "jwks_uri is missing";
    capabilities_short_of_carin:
        warns "it offers the SMART capabilities the CARIN IG asks for", "sandbox", "@discovery",
        ["smart-field:capabilities=[\"launch-standalone\",\"client-confidential-symmetric\",\"sso-openid-connect\",\"context-standalone-patient\",\"permission-patient\"]"], "permission-offline";
    a_capability_statement_for_stu3:
        "the CapabilityStatement is an R4 CapabilityStatement in JSON", "sandbox", "@discovery",
        ["metadata-field:fhirVersion=\"3.0.2\""], "not R4";
    oauth_uris_elsewhere:
        "its OAuth endpoints are the SMART configuration's", "sandbox", "@discovery",
        ["metadata-oauth-mismatch"], "disagree on where to authorize";
    a_carin_search_parameter_not_listed:
        "it lists what the CARIN IG requires of every required type", "sandbox", "@discovery",
        ["metadata-drop:ExplanationOfBenefit.type"], "lacks the search parameter type";
    no_carin_in_instantiates:
        warns "it instantiates the CARIN CapabilityStatement", "sandbox", "@discovery",
        ["metadata-field:-instantiates"], "instantiates does not name";
    no_id_token:
        "the token response carries an id_token", "sandbox", "@openid",
        ["id-token:missing"], "has no id_token";
    an_id_token_with_a_bad_signature:
        "the id_token is signed with RS256 by a key of the server's JSON Web Key Set", "sandbox", "@openid",
        ["id-token:bad-signature"], "does not verify";
    an_unsigned_id_token:
        "the id_token is signed with RS256 by a key of the server's JSON Web Key Set", "sandbox", "@openid",
        ["id-token:unsigned"], "id_token";
    an_id_token_by_an_unknown_key:
        "the id_token is signed with RS256 by a key of the server's JSON Web Key Set", "sandbox", "@openid",
        ["id-token:unknown-kid"], "no RSA key with the id_token's kid";
    an_id_token_for_another_app:
        "the id_token was issued by the server to the app", "sandbox", "@openid",
        ["id-token:wrong-audience"], "does not name the app's client_id";
    an_id_token_from_another_issuer:
        "the id_token was issued by the server to the app", "sandbox", "@openid",
        ["id-token:wrong-issuer"], "not the server's issuer";
    an_expired_id_token:
        "the id_token is current", "sandbox", "@openid",
        ["id-token:expired"], "has passed";
    an_id_token_without_a_subject:
        "the id_token names its subject", "sandbox", "@openid",
        ["id-token:no-subject"], "there is no sub";
    a_fhir_user_of_another_member:
        "the id_token's fhirUser is a resource the access token reads", "sandbox", "@openid",
        ["id-token:foreign-fhir-user"], "answered 404";
    redirect_to_another_path:
        "the browser is sent back to the app's redirect URI", "sandbox", "@authorization",
        ["wrong-redirect"], "not to the registered redirect URI";
    redirect_without_a_code:
        "the redirect carries an authorization code", "sandbox", "@authorization",
        ["omit-code"], "carries no code parameter";
    redirect_with_another_state:
        "the redirect carries the state the app sent", "sandbox", "@authorization",
        ["wrong-state"], "differs from the one the app sent";
    redirect_with_another_state_at_the_bluebutton_persona:
        "the redirect carries the state the app sent", "sandbox:bluebutton", "@authorization",
        ["wrong-state"], "differs from the one the app sent";
    no_token_for_an_expired_code:
        "the token endpoint answers with a token response", "sandbox", "@token",
        ["expire-codes"], "invalid_grant";
    a_token_type_other_than_bearer:
        "the token type is Bearer", "sandbox", "@token",
        ["token-field:token_type=\"MAC\""], "not Bearer";
    expires_in_as_a_string:
        "expires_in is a number of seconds", "sandbox", "@token",
        ["token-field:expires_in=\"3600\""], "a string, not a JSON number";
    no_scope_in_the_token_response:
        "the token response names the granted scope", "sandbox", "@token",
        ["token-field:-scope"], "has no scope";
    no_patient_in_the_token_response:
        "the token response names the member's Patient when launch/patient was granted", "sandbox", "@token",
        ["token-field:-patient"], "has no patient";
    no_pragma_in_the_token_response:
        warns "the token response also says Pragma: no-cache", "sandbox", "@token",
        ["no-pragma"], "no Pragma: no-cache";
    a_cacheable_token_response:
        "the token response may not be cached", "sandbox", "@token",
        ["cacheable-token"], "max-age=3600";
    a_token_for_another_patient:
        "the access token reads the member's Patient resource", "sandbox", "@token",
        ["token-field:patient=\"m00001\""], "answered 404";
    a_token_patient_that_smuggles_a_query:
        "the access token reads the member's Patient resource", "sandbox", "@token",
        ["token-field:patient=\"john-allen?_format=json#x\""], "GET Patient/john-allen%3F_format=json%23x with the new access token answered 404";
    a_page_that_is_not_a_searchset:
        "every page is a searchset Bundle", "sandbox", "@resources",
        ["not-searchset:Location"], "not searchset";
    a_total_the_pages_do_not_reach:
        "the Bundle total matches the entries received", "sandbox", "@resources",
        ["drop-next-link:ExplanationOfBenefit"], "Bundle.total says 12 but 10";
    a_next_link_to_another_origin:
        "every page is a searchset Bundle", "sandbox", "@resources",
        ["foreign-next-link:ExplanationOfBenefit"], "leads away from the FHIR server's origin";
    a_resource_on_two_pages:
        "no resource appears twice", "sandbox", "@resources",
        ["duplicate:ExplanationOfBenefit"], "appears twice";
    a_resource_that_breaks_the_schema:
        "every <type> resource passes the R4 JSON Schema", "sandbox", "@resources",
        ["invalid-resource:Patient"], "Patient.meta.lastUpdated";
    a_resource_that_breaks_the_structure_definitions:
        "every <type> resource conforms to the R4 StructureDefinitions", "sandbox", "@resources",
        ["structure-violation:Coverage"], "February 2026 has 28 days [structure date]";
    a_resource_that_breaks_its_carin_profile:
        "every <type> resource conforms to its CARIN Blue Button profiles", "sandbox", "@resources",
        ["profile-violation:ExplanationOfBenefit"], "[profile invariant:EOB-";
    a_must_support_element_the_payer_never_sends:
        warns "the <type> resources carry every must-support element of their profiles", "sandbox", "@resources",
        ["must-support-missing:C4BB-Patient.deceasedBoolean"], "Patient.deceased[x]";
    another_members_resource:
        "every <type> resource belongs to the member", "sandbox", "@resources",
        ["foreign-patient:Organization"], "not referenced by the member's data";
    a_reference_to_nothing:
        "every reference between the returned resources resolves", "sandbox", "@resources",
        ["dangling-reference:ExplanationOfBenefit"], "Organization/gone";
    a_reference_to_no_contained_resource:
        "every <type> resource conforms to the R4 StructureDefinitions", "sandbox", "@resources",
        ["dangling-contained:Coverage"], "[structure invariant:ref-1]";
    a_resource_that_breaks_its_us_core_profile:
        "every <type> resource conforms to its US Core profiles", "sandbox", "@clinical",
        ["profile-violation:Condition"], "requires category (at least 1), found 0 [profile cardinality]";
    a_clinical_search_that_misses_its_own_values:
        "the search finds the resource the values came from", "sandbox", "@clinical",
        ["search-misses:Observation.code"], "found 0 matches, but not Observation/";
    a_clinical_search_that_ignores_a_parameter:
        "every match satisfies the search", "sandbox", "@clinical",
        ["search-ignores:Condition.category"], "matches that do not satisfy it";
    a_clinical_must_support_element_the_payer_never_sends:
        warns "the <type> resources carry every must-support element of their profiles", "sandbox", "@clinical",
        ["must-support-missing:us-core-goal.startDate"], "Goal.startDate";
    a_resource_that_does_not_read_by_id:
        "the read answers 200 with that resource", "sandbox", "@carin-search",
        ["no-read:Coverage"], "answered 404";
    a_search_that_misses_its_own_value:
        "the search finds the resource the value came from", "sandbox", "@carin-search",
        ["search-misses:ExplanationOfBenefit.identifier"], "found 0 matches, but not ExplanationOfBenefit/";
    a_search_that_ignores_its_parameter:
        "every match satisfies the search", "sandbox", "@carin-search",
        ["search-ignores:ExplanationOfBenefit.type"], "matches that do not satisfy it";
    an_include_marked_as_a_match:
        "every included resource is marked as included", "sandbox", "@carin-search",
        ["include-as-match:ExplanationOfBenefit"], "has search.mode match";
    an_include_left_out:
        "the included resources are those the matches reference", "sandbox", "@carin-search",
        ["include-missing:Coverage"], "is referenced by a match but was not included";
    a_read_without_a_token_answered:
        "the FHIR server refuses it with 401, 403 or 404", "sandbox", "@access-control",
        ["anonymous-read"], "readable by anyone";
    a_refusal_without_a_challenge:
        warns "the refusal is a 401 with a WWW-Authenticate challenge", "sandbox", "@access-control",
        ["no-challenge"], "no WWW-Authenticate header";
    a_refusal_with_403:
        warns "the refusal is a 401 with a WWW-Authenticate challenge", "sandbox", "@access-control",
        ["anonymous-status=403"], "the refusal is 403";
    a_code_the_server_never_issued_accepted:
        "the unknown code is refused with invalid_grant", "sandbox", "@access-control",
        ["accept-unknown-codes"], "issued tokens for the exchange of a code the server never issued";
    any_client_secret_accepted:
        "the wrong client secret is refused with invalid_client", "sandbox", "@access-control",
        ["accept-any-secret"], "issued tokens for the exchange with a wrong client secret";
    an_unknown_client_refused_for_the_wrong_reason:
        "the unknown client is refused with invalid_client", "sandbox", "@access-control",
        ["accept-unknown-client"], "refused with 400 with error \"invalid_grant\"";
    a_code_exchanged_without_its_verifier:
        "the missing code_verifier is refused", "sandbox", "@access-control",
        ["pkce-optional"], "issued tokens for the exchange without the code_verifier";
    a_code_exchanged_with_any_verifier:
        "the wrong code_verifier is refused with invalid_grant", "sandbox", "@access-control",
        ["pkce-any-verifier"], "issued tokens for the exchange with another code_verifier";
    a_code_exchanged_with_its_challenge:
        "the code_challenge as code_verifier is refused with invalid_grant", "sandbox", "@access-control",
        ["pkce-plain"], "issued tokens for the exchange with the code_challenge as code_verifier";
    a_code_spent_by_a_refused_attempt:
        warns "the code still works after the refused attempts", "sandbox", "@access-control",
        ["codes-die-on-error"], "spent the code on a refused attempt";
    a_code_that_works_twice:
        "the used code is refused with invalid_grant", "sandbox", "@access-control",
        ["reusable-codes"], "issued tokens for the second proper exchange";
    an_introspection_with_other_scopes:
        "introspection says the access token is active, with its scopes", "sandbox", "@refresh",
        ["introspection-field:scope=\"patient/*.read\""], "but the token response granted";
    a_revoked_token_still_active:
        "introspection says the revoked access token is inactive", "sandbox", "@refresh",
        ["introspection-always-active"], "says active: true";
    a_revoked_token_still_reads:
        "the revoked access token reads nothing", "sandbox", "@refresh",
        ["revoked-still-reads"], "answered 200";
    scopes_not_enforced:
        "the FHIR server refuses it with 401 or 403", "sandbox", "@access-control",
        ["ignore-scopes"], "does not enforce the token's scopes";
    an_unknown_refresh_token_accepted:
        "the unknown refresh token is refused with invalid_grant", "sandbox", "@refresh",
        ["refresh-accepts-any"], "gave tokens for a refresh token it never issued";
    a_refreshed_token_that_reads_nothing:
        "the refresh gives an access token that reads the member's Patient", "sandbox", "@refresh",
        ["refresh-unusable-token"], "answered 401";
    a_refresh_that_adds_a_scope:
        "the refreshed token holds no scope the member did not grant", "sandbox", "@refresh",
        ["refresh-adds-scope"], "user/*.read beyond what the member granted";
    a_narrower_refresh_that_widens:
        "the narrower token holds no scope the app did not ask for", "sandbox", "@refresh",
        ["refresh-widens-scope"], "beyond what the app asked for";
    a_narrower_refresh_that_reads_nothing:
        "the narrower token reads the member's Patient", "sandbox", "@refresh",
        ["refresh-narrows-too-far"], "answered 403";
    a_rotated_out_refresh_token_still_works:
        warns "the rotated-out refresh token is refused", "sandbox", "@refresh",
        ["refresh-keeps-old"], "still gave tokens";
    an_open_redirect:
        "the authorization server does not send the browser there", "sandbox", "@access-control",
        ["open-redirect"], "unregistered redirect URI";
    one_member_for_all:
        "each member is a different patient", "sandbox", "@isolation",
        ["sign-in-as-first"], "which is John Allen's";
    a_member_served_what_is_not_theirs:
        "every resource each member's token returns belongs to that member", "sandbox", "@isolation",
        ["foreign-patient:Organization"], "not referenced by the member's data";
    another_members_coverage_read_by_id:
        "no member's token reads another member's <type> by id", "sandbox", "@isolation",
        ["cross-member-leak:Coverage.read"], "with John Allen's Coverage/coverage-john-allen";
    another_members_coverage_by_id_search:
        "no member's token finds another member's <type> by _id", "sandbox:bluebutton", "@isolation",
        ["cross-member-leak:Coverage.id"], "served another member's Coverage";
    another_members_claims_by_patient_search:
        "no member's token finds another member's <type> by their Patient", "sandbox", "@isolation",
        ["cross-member-leak:ExplanationOfBenefit.patient"], "ExplanationOfBenefit?patient=Patient/";
    a_directory_that_asks_for_a_token:
        "the Provider Directory answers without a token", DIRECTORY_TOKEN, "@directory",
        ["directory-requires-token"], "answered 401";
    a_directory_that_serves_patients:
        "the Provider Directory serves no patient data without a token", "sandbox", "@directory",
        ["directory-serves-patients"], "GET Patient without a token returned Patient/";
    a_practitioner_role_against_plan_net:
        "every <type> resource conforms to its Plan-Net profiles", "sandbox", "@directory",
        ["profile-violation:PractitionerRole"], "plannet-PractitionerRole requires active";
    a_formulary_item_against_the_drug_formulary:
        "every <type> resource conforms to its US Drug Formulary profiles", "sandbox", "@formulary",
        ["profile-violation:Basic"], "usdf-FormularyItem requires extension";
    a_chain_ignored:
        "every match satisfies the chained search", "sandbox", "@directory",
        ["chain-ignored:location.address-city"], "whose location satisfies no address-city";
    a_revinclude_ignored:
        "the resources that reference the matches are included", "sandbox", "@directory",
        ["revinclude-missing:Practitioner"], "references a match through practitioner but was not included";
}

/// A sandbox target whose Provider Directory is read with a token of its own.
const DIRECTORY_TOKEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/targets/directory-token.toml"
);

/// The app's checks, each broken by a variant of the example app in `tests/app.rs` (the
/// app's fault, kind `app`, not the payer's).
const BROKEN_APP: &[&str] = &[
    "the browser is back in the app",
    "the app shows the member's name",
    "the app shows one of the member's claims",
];

#[test]
fn every_then_step_has_a_case() {
    let mut missing = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for sign_in in onramp::features::shipped::sign_ins() {
        for (name, text) in onramp::features::shipped::set(sign_in).expect("a shipped set") {
            let feature =
                cucumber::gherkin::Feature::parse(text, cucumber::gherkin::GherkinEnv::default())
                    .expect("parses");
            for scenario in &feature.scenarios {
                for step in &scenario.steps {
                    if step.ty != cucumber::gherkin::StepType::Then {
                        continue;
                    }
                    seen.insert(step.value.clone());
                    if !BROKEN.contains(&step.value.as_str())
                        && !BROKEN_APP.contains(&step.value.as_str())
                    {
                        missing.push(format!("{sign_in}/{name}: {}", step.value));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "Then steps no case makes fail: {missing:#?}"
    );
    let stale: Vec<&&str> = BROKEN
        .iter()
        .chain(BROKEN_APP)
        .filter(|s| !seen.contains(**s))
        .collect();
    assert!(stale.is_empty(), "cases of no shipped Then step: {stale:?}");
    assert_eq!(seen.len(), 76, "{seen:#?}");
}
