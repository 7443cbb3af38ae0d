@authorization
Feature: Authorization
  A Medicare enrollee connects the app to CMS Blue Button 2.0: the app sends them to the
  authorization server, they log in with their Medicare.gov account, allow the app to read
  their data, and the server sends them back to the app's redirect URI with a code.

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
  # ${member.NAME} is the target's [member] NAME (the sandbox's synthetic enrollees are
  # BBUser00000 to BBUser29999, passwords PW00000! to PW29999!).
  @sign-in
  Scenario: The enrollee logs in, allows access, and the app receives a code
    Given the app starts an authorization request
    When the member opens the authorization URL in the browser
    And the member fills in the login form:
      | Username | ${member.username} |
      | Password | ${member.password} |
    And the member clicks "Log in"
    And the member chooses "Share healthcare data and personal information"
    And the member clicks "Allow"
    Then the browser is sent back to the app's redirect URI
    And the redirect carries an authorization code
    And the redirect carries the state the app sent
