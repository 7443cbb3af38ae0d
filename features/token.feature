@token
Feature: Token
  The app exchanges the authorization code for a Bearer token at the token endpoint
  (client_id, client_secret, grant_type=authorization_code, code) and uses it.

  Scenario: The code is exchanged for a Bearer token that reads the member's data
    Given the member has authorized the app
    When the app exchanges the authorization code at the token endpoint
    Then the token endpoint answers with a token response
    And the token type is Bearer
    And expires_in is a number of seconds
    And the granted scope covers the scope the app asked for
    And the token response may not be cached
    And the access token reads the member's Patient resource
