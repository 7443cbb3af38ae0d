@smart @discovery
Feature: Discovery
  Before anyone signs in, an app learns from the server how to authorize and what the FHIR
  API offers: the SMART configuration (SMART App Launch 2.0.0, "Conformance") and the
  CapabilityStatement, which the CARIN Blue Button IG 2.0.0 describes.

  Scenario: The SMART configuration says how to authorize
    When the app reads the SMART configuration
    Then the SMART configuration is JSON with the endpoints and capabilities SMART App Launch 2.0 requires
    And it offers the authorization code grant with PKCE S256 and not plain
    And it names the OpenID Connect issuer and keys when it offers sso-openid-connect
    And it offers the SMART capabilities the CARIN IG asks for

  Scenario: The CapabilityStatement describes the FHIR API
    When the app reads the CapabilityStatement
    Then the CapabilityStatement is an R4 CapabilityStatement in JSON
    And its OAuth endpoints are the SMART configuration's
    And it lists what the CARIN IG requires of every required type
    And it instantiates the CARIN CapabilityStatement
