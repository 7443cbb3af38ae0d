@access-control
Feature: Access control
  The payer refuses what it must refuse. These scenarios send requests a real app would
  not; where a target cannot take them, skip them with --tags "not @access-control".

  Scenario: A read without an access token is refused
    When the app reads Patient without an access token
    Then the FHIR server refuses it with 401, 403 or 404
    And the refusal is a 401 with a WWW-Authenticate challenge

  Scenario: A used authorization code cannot be used again
    Given the member authorizes the app once more
    When the app exchanges that code
    And the app exchanges the same code again
    Then the second exchange is refused with invalid_grant

  @pkce
  Scenario: A code is not exchanged without its PKCE verifier
    Given the member authorizes the app once more with PKCE
    When the app exchanges that code without the code_verifier
    Then the exchange is refused

  Scenario: An unregistered redirect URI is not redirected to
    When the app asks for authorization with the redirect URI "https://unregistered.onramp.invalid/callback"
    Then the authorization server does not send the browser there
