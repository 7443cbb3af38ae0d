@formulary
Feature: Drug Formulary (Da Vinci PDex US Drug Formulary)
  CMS-9115-F makes the plan's formulary part of what its members can reach (42 CFR
  422.119(b)(2)), as Da Vinci PDex US Drug Formulary 2.0.1 defines it: the payer's plans,
  their formularies, the formulary items and the drugs, with RxNorm codes. The target's
  [formulary] says where it is and whether it is read with a token of its own or the
  member's (a sandbox target has its sandbox's own, public); without one these scenarios
  are skipped. Every resource is validated in three tiers against its US Drug Formulary
  profile, with Must Support, and every reference between them resolves.

  Scenario Outline: The Drug Formulary's <type> resources are valid US Drug Formulary
    When the app reads every <type> of the Drug Formulary and follows every page
    Then every page is a searchset Bundle
    And the Bundle total matches the entries received
    And no resource appears twice
    And every <type> resource passes the R4 JSON Schema
    And every <type> resource conforms to the R4 StructureDefinitions
    And every <type> resource conforms to its US Drug Formulary profiles
    And the <type> resources carry every must-support element of their profiles
    And every reference between the returned resources resolves

    # ${formulary.types} becomes one row per type the US Drug Formulary's CapabilityStatement names.
    Examples:
      | type                 |
      | ${formulary.types}   |

  Scenario Outline: A Drug Formulary <type> reads by id
    When the app reads a <type> of the Drug Formulary by its id
    Then the read answers 200 with that resource

    Examples:
      | type                 |
      | ${formulary.types}   |

  Scenario Outline: The Drug Formulary's <type> searched by <search> finds what it should, and only that
    When the app searches the Drug Formulary's <type> by <search> with a value from its data
    Then the search finds the resource the value came from
    And every match satisfies the search

    Examples:
      | type                   | search |
      | ${formulary.searches}  |        |

  Scenario Outline: The Drug Formulary's <type> with _include=<include> brings what the matches reference
    When the app searches the Drug Formulary's <type> with _include=<include>
    Then every included resource is marked as included
    And the included resources are those the matches reference

    Examples:
      | type                  | include |
      | ${formulary.includes} |         |
