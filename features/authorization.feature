@authorization
Feature: Authorization
  A member connects the app to their health plan in the payer's demo environment: the app
  sends them to the plan's sign-in page, they confirm their identity, and the plan sends
  them back to the app's redirect URI with an authorization code (valid for 5 minutes, once).

  Scenario: The member confirms their identity and the app receives a code
    Given the app starts an authorization request
    When the member opens the authorization URL in the browser
    And the member clicks "Click here to confirm identity"
    # The values come from the target's [member]; for the demo plan: John, Allen,
    # 10/19/1950, 123456789123, 02114.
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
    And the authorization request used PKCE if the target asks for it
