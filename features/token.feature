@token
Feature: Token
  The app exchanges the authorization code for a Bearer token at the token endpoint
  (RFC 6749 §4.1.3) and uses it. The answer is judged member by member (RFC 6749 §5.1,
  SMART App Launch 2.0 "Obtain access token").

  Scenario: The code is exchanged for a Bearer token that reads the member's data
    Given the member has authorized the app
    When the app exchanges the authorization code at the token endpoint
    Then the token endpoint answers with a token response
    And the token type is Bearer
    And expires_in is a number of seconds
    And the token response names the granted scope
    And the token response names the member's Patient when launch/patient was granted
    And the token response may not be cached
    And the token response also says Pragma: no-cache
    And the access token reads the member's Patient resource
