@clinical
Feature: Clinical data (US Core)
  CMS-9115-F's Patient Access API serves clinical data as well as claims: the USCDI, as US
  Core profiles it (6.1.0, the version 45 CFR 170.215 names from 2026; a target that says
  [validation] igs = ["hl7.fhir.us.core@3.1.1"] is held to 3.1.1). Each clinical type the
  payer's CapabilityStatement lists (or every one the target lists under [resources]
  clinical) is read for the member with a search US Core's CapabilityStatement makes SHALL,
  every page, and validated in three tiers against the US Core profiles of its type, with
  Must Support. Each SHALL search is then tried with values from the member's own data.

  Scenario Outline: The member's <type> resources are valid US Core and theirs alone
    Given the app holds the member's access token
    When the app searches for the member's <type> as US Core requires and follows every page
    Then every page is a searchset Bundle
    And the Bundle total matches the entries received
    And no resource appears twice
    And every <type> resource passes the R4 JSON Schema
    And every <type> resource conforms to the R4 StructureDefinitions
    And every <type> resource conforms to its US Core profiles
    And the <type> resources carry every must-support element of their profiles
    And every <type> resource belongs to the member

    # ${resources.clinical} becomes one row per clinical type.
    Examples:
      | type                  |
      | ${resources.clinical} |

  Scenario Outline: <type> searched by <search> finds what it should, and only that
    When the app searches <type> by <search> with values from the member's data
    Then the search finds the resource the values came from
    And every match satisfies the search

    # ${clinical.searches} becomes one row per SHALL search of each clinical type.
    Examples:
      | type                 | search |
      | ${clinical.searches} |        |
