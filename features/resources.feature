@resources
Feature: Required resources
  Every type the target requires (its [resources] required; the payer guide's minimum is
  ExplanationOfBenefit, Coverage, Organization, Patient, Practitioner and Location) is
  served for the authenticated member as FHIR R4 (4.0.1) searchset Bundles paged with next
  links.

  Scenario Outline: The member's <type> resources are valid FHIR R4 and theirs alone
    Given the app holds the member's access token
    When the app searches for <type> and follows every page
    Then every page is a searchset Bundle
    And the Bundle total matches the entries received
    And no resource appears twice
    And every <type> resource is valid FHIR R4
    And every <type> resource belongs to the member
    And every reference between the returned resources resolves

    # ${resources.required} becomes one row per type the target requires.
    Examples:
      | type                  |
      | ${resources.required} |
