@smart @refresh
Feature: Refresh, introspection and revocation
  With offline_access the app keeps its access without the member: it exchanges the refresh
  token for a new access token, with the scope it had or a narrower one (RFC 6749 §6; SMART
  App Launch 2.0, "Refresh access token"). A token can be introspected (RFC 7662) and
  revoked (RFC 7009) where the server advertises those endpoints. The checks are skipped when
  the target does not ask for offline_access. This feature runs last, and revocation before
  the rotated-out refresh token: a server may end the whole grant on either.

  Scenario: A refresh token the server never issued is refused
    When the app refreshes with a refresh token the server never issued
    Then the unknown refresh token is refused with invalid_grant

  Scenario: The access token is refreshed, as it was and narrower
    Given the member's grant holds a refresh token
    When the app refreshes the access token
    Then the refresh gives an access token that reads the member's Patient
    And the refreshed token holds no scope the member did not grant
    When the app refreshes the access token with a scope that leaves out Coverage
    Then the narrower token holds no scope the app did not ask for
    And the narrower token reads the member's Patient

  @negative
  Scenario: A fresh access token is introspected, then revoked
    Given the member's grant holds a refresh token
    When the app refreshes the access token
    Then introspection says the access token is active, with its scopes
    When the app revokes the access token
    Then introspection says the revoked access token is inactive
    And the revoked access token reads nothing

  Scenario: A refresh token the server replaced is refused
    Given the member's grant holds a refresh token
    When the app refreshes the access token
    And the app refreshes with the refresh token it used before
    Then the rotated-out refresh token is refused
