@smart @openid
Feature: OpenID Connect
  When the app asks for openid (and fhirUser), the token response carries an id_token that
  tells the app who signed in (SMART App Launch 2.0, "Scopes for requesting identity data";
  OpenID Connect Core 1.0). The checks are skipped when the target does not ask for openid.

  Scenario: The id_token is signed by the server and names the member
    Given the app holds the member's token response
    Then the token response carries an id_token
    And the id_token is signed with RS256 by a key of the server's JSON Web Key Set
    And the id_token was issued by the server to the app
    And the id_token is current
    And the id_token names its subject
    And the id_token's fhirUser is a resource the access token reads
