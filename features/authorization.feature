@authorization
Feature: Authorization
  A member connects the app to their health plan in the payer's demo environment: the app
  sends them to the plan's sign-in page, they confirm their identity, and the plan sends
  them back to the app's redirect URI with an authorization code (valid for 5 minutes, once).

  # The scenario tagged @sign-in is the one place that says how a member signs in: every
  # scenario that needs a code (the token, the reads, a second sign-in) replays its steps.
  # For another payer's login, change the steps here, nowhere else. The step language:
  #   the app starts an authorization request
  #   the member opens the authorization URL
  #   the member clicks "TEXT"                      (a link or button by its text)
  #   the member fills in "LABEL" with "VALUE"      (or end with ":" and give a table)
  #   the member chooses "OPTION" [for "FIELD"]     (radio button, checkbox or select option)
  #   the member checks "LABEL" / unchecks "LABEL"
  #   the member waits for "TEXT"
  #   the member submits the form
  # Fields are found by their label, else their placeholder, accessible name or name.
  # ${member.NAME} is the target's [member] NAME.
  @sign-in
  Scenario: The member confirms their identity and the app receives a code
    Given the app starts an authorization request
    When the member opens the authorization URL in the browser
    And the member clicks "Click here to confirm identity"
    And the member fills in the identity form:
      | First Name     | ${member.first_name} |
      | Last Name      | ${member.last_name}  |
      | Birthdate      | ${member.birth_date} |
      | Plan Member ID | ${member.member_id}  |
      | Zip Code       | ${member.zip}        |
    And the member clicks "Verify identity"
    Then the browser is sent back to the app's redirect URI
    And the redirect carries an authorization code
    And the redirect carries the state the app sent
