@resources
Feature: Required resources
  Every type the target requires (its [resources] required; the payer guide's minimum is
  ExplanationOfBenefit, Coverage, Organization, Patient, Practitioner and Location) is
  served for the authenticated member as FHIR R4 (4.0.1) searchset Bundles paged with next
  links. Each resource is validated in three tiers as it arrives: HL7's R4 JSON Schema, the
  R4 StructureDefinitions (cardinality, value sets, references, invariants), and the
  profiles it declares or the target applies to its type ([validation]: CARIN Blue Button
  2.0.0 by default, US Core and any IG loaded). Every must-support element of each profile
  appears in at least one resource, as Inferno counts it: a warning when one never does,
  unless the target says [validation] must_support = "fail".

  Scenario Outline: The member's <type> resources are valid FHIR R4 and theirs alone
    Given the app holds the member's access token
    When the app searches for <type> and follows every page
    Then every page is a searchset Bundle
    And the Bundle total matches the entries received
    And no resource appears twice
    And every <type> resource passes the R4 JSON Schema
    And every <type> resource conforms to the R4 StructureDefinitions
    And every <type> resource conforms to its CARIN Blue Button profiles
    And the <type> resources carry every must-support element of their profiles
    And every <type> resource belongs to the member
    And every reference between the returned resources resolves

    # ${resources.required} becomes one row per type the target requires.
    Examples:
      | type                  |
      | ${resources.required} |
