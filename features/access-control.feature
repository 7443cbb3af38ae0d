@access-control @negative
Feature: Access control
  The payer refuses what it must refuse. These scenarios send requests a real app would
  not: no token, codes and clients the server never issued, wrong PKCE verifiers, a token
  whose scopes leave a type out. (A revoked token is tried in refresh.feature.) Where a target cannot take them, skip
  them with --tags "not @negative".

  Scenario: A read without an access token is refused
    When the app reads Patient without an access token
    Then the FHIR server refuses it with 401, 403 or 404
    And the refusal is a 401 with a WWW-Authenticate challenge

  Scenario: A code the server never issued is refused
    When the app exchanges a code the server never issued
    Then the unknown code is refused with invalid_grant

  # One sign-in, many attempts: each wrong attempt must be refused, and the code must still
  # work afterwards, so that each refusal is known to be for the reason tested. A wrong
  # attempt that gets tokens spends the code, and the attempts after it are skipped.
  Scenario: A code is exchanged only by its client, with its PKCE verifier, and only once
    Given the member authorizes the app once more with PKCE
    When the app exchanges that code with a wrong client secret
    Then the wrong client secret is refused with invalid_client
    When the app exchanges that code as a client the server never registered
    Then the unknown client is refused with invalid_client
    When the app exchanges that code without its code_verifier
    Then the missing code_verifier is refused
    When the app exchanges that code with another code_verifier
    Then the wrong code_verifier is refused with invalid_grant
    When the app exchanges that code with the code_challenge as its code_verifier
    Then the code_challenge as code_verifier is refused with invalid_grant
    When the app exchanges that code as it should
    Then the code still works after the refused attempts
    When the app exchanges that code again
    Then the used code is refused with invalid_grant

  Scenario: A token whose scopes leave out a type cannot read it
    Given the app holds a token whose scopes leave out Coverage
    When the app searches Coverage with that token
    Then the FHIR server refuses it with 401 or 403

  Scenario: An unregistered redirect URI is not redirected to
    When the app asks for authorization with the redirect URI "https://unregistered.onramp.invalid/callback"
    Then the authorization server does not send the browser there
