@carin-search
Feature: CARIN searches
  A CARIN Blue Button 2.0.0 server answers the reads, searches and _includes its
  CapabilityStatement requires (SHALL). Each search is tried with a value taken from the
  member's own data: it must find the resource the value came from, every match must
  satisfy the parameter (FHIR R4 Search), and what an _include brings must be marked as
  included and be what the matches reference.

  Scenario Outline: The member's <type> reads by id
    When the app reads one of the member's <type> resources by its id
    Then the read answers 200 with that resource

    Examples:
      | type                  |
      | ${resources.required} |

  Scenario Outline: <type> searched by <search> finds what it should, and only that
    When the app searches <type> by <search> with a value from the member's data
    Then the search finds the resource the value came from
    And every match satisfies the search

    Examples:
      | type                 | search                |
      | ExplanationOfBenefit | _id                   |
      | ExplanationOfBenefit | patient               |
      | ExplanationOfBenefit | _lastUpdated gt       |
      | ExplanationOfBenefit | _lastUpdated lt       |
      | ExplanationOfBenefit | type                  |
      | ExplanationOfBenefit | identifier            |
      | ExplanationOfBenefit | service-date          |
      | ExplanationOfBenefit | service-start-date    |
      | ExplanationOfBenefit | billable-period-start |
      | Coverage             | _id                   |

  Scenario Outline: _include=<include> brings what the matches reference
    When the app searches with _include=<include>
    Then every included resource is marked as included
    And the included resources are those the matches reference

    Examples:
      | include                         |
      | ExplanationOfBenefit:patient    |
      | ExplanationOfBenefit:provider   |
      | ExplanationOfBenefit:care-team  |
      | ExplanationOfBenefit:coverage   |
      | ExplanationOfBenefit:insurer    |
      | ExplanationOfBenefit:payee      |
      | ExplanationOfBenefit:*          |
      | Coverage:payor                  |
