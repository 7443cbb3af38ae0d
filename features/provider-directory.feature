@directory
Feature: Provider Directory (Da Vinci PDex Plan-Net)
  CMS-9115-F asks a payer for a publicly accessible Provider Directory API (42 CFR
  422.120), as Da Vinci PDex Plan-Net 1.1.0 defines it. Its CapabilityStatement says what a
  server SHALL serve: each type read by id and searched, its search parameters, _include,
  _revinclude and chained searches. The target's [directory] says where the directory is
  (a sandbox target has its sandbox's own); without one these scenarios are skipped.
  Every resource is validated in three tiers against its Plan-Net profile, with Must
  Support, and every reference between them resolves on the same server.

  Scenario: The Provider Directory is public and holds no member's data
    When the app asks the Provider Directory for its data and for patient data without a token
    Then the Provider Directory answers without a token
    And the Provider Directory serves no patient data without a token

  Scenario Outline: The Provider Directory's <type> resources are valid Plan-Net
    When the app reads every <type> of the Provider Directory and follows every page
    Then every page is a searchset Bundle
    And the Bundle total matches the entries received
    And no resource appears twice
    And every <type> resource passes the R4 JSON Schema
    And every <type> resource conforms to the R4 StructureDefinitions
    And every <type> resource conforms to its Plan-Net profiles
    And the <type> resources carry every must-support element of their profiles
    And every reference between the returned resources resolves

    # ${directory.types} becomes one row per type Plan-Net's CapabilityStatement names.
    Examples:
      | type                 |
      | ${directory.types}   |

  Scenario Outline: A Provider Directory <type> reads by id
    When the app reads a <type> of the Provider Directory by its id
    Then the read answers 200 with that resource

    Examples:
      | type                 |
      | ${directory.types}   |

  Scenario Outline: The Provider Directory's <type> searched by <search> finds what it should, and only that
    When the app searches the Provider Directory's <type> by <search> with a value from its data
    Then the search finds the resource the value came from
    And every match satisfies the search

    # ${directory.searches} becomes one row per SHALL search parameter of each type.
    Examples:
      | type                   | search |
      | ${directory.searches}  |        |

  Scenario Outline: The Provider Directory's <type> chained by <chain> finds what it should, and only that
    When the app searches the Provider Directory's <type> by the chain <chain> with a value from its data
    Then the search finds the resource the value came from
    And every match satisfies the chained search

    # Chains Plan-Net's SearchParameters allow (their `chain`), as Inferno's Plan-Net kit
    # tries them; add the ones your directory's users rely on.
    Examples:
      | type                    | chain                            |
      | PractitionerRole        | location.address-city            |
      | PractitionerRole        | practitioner.name                |
      | PractitionerRole        | network.name                     |
      | HealthcareService       | location.address-state           |
      | OrganizationAffiliation | participating-organization.name  |
      | InsurancePlan           | administered-by.name             |

  Scenario Outline: The Provider Directory's <type> with _include=<include> brings what the matches reference
    When the app searches the Provider Directory's <type> with _include=<include>
    Then every included resource is marked as included
    And the included resources are those the matches reference

    Examples:
      | type                  | include |
      | ${directory.includes} |         |

  Scenario Outline: The Provider Directory's <type> with _revinclude=<include> brings what references the matches
    When the app searches the Provider Directory's <type> with _revinclude=<include>
    Then every included resource is marked as included
    And the resources that reference the matches are included

    Examples:
      | type                     | include |
      | ${directory.revincludes} |         |
