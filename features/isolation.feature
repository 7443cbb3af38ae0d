@isolation
Feature: Isolation between members
  The worst privacy failure a Patient Access API can have is serving one member's data to
  another member's app. Every member the target lists (its [[members]]; the first is the
  run's own) signs in, one after another in the same browser, its cookies deleted between
  members. Each member's token must read that member's own data only; then each member's
  token asks for the other members' resources by id, by _id search and by a search naming
  their Patient, and every answer must be a refusal, a "not found" or a Bundle without their
  data (SMART App Launch 2.0: a patient/ scope reaches the patient in context only). A target
  that lists a single member skips these scenarios.

  Scenario: Every member signs in as themselves and reads their own data only
    Given every member the target lists has signed in
    When each member's token searches every required type
    Then each member is a different patient
    And every resource each member's token returns belongs to that member

  # Types outside the Patient compartment (Organization, Practitioner, Location) are
  # shared between members: their rows are skipped, saying so.
  Scenario Outline: No member's token reads another member's <type>
    Given every member the target lists has signed in
    When each member's token reads the other members' <type> by id
    Then no member's token reads another member's <type> by id
    When each member's token searches <type> by the other members' _id
    Then no member's token finds another member's <type> by _id
    When each member's token searches <type> by the other members' Patient
    Then no member's token finds another member's <type> by their Patient

    Examples:
      | type                  |
      | ${resources.required} |
