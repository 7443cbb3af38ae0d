@app
Feature: Your app connects to the health plan and shows the member's data
  For production access the payer asks for a screen recording of your app connecting to its
  demo environment and showing the member's data in your app's UI. onramp plays the member
  in your app (the target's [app]): it opens the app, starts connecting it, signs in to the
  health plan with the target's @sign-in steps wherever the app sends it, and checks that the
  app comes back and shows the member's own name and claims, as the payer holds them. The
  app does its own OAuth: onramp needs none of its credentials. These pages make
  recording-app (MP4, or an animated PNG without ffmpeg). A failure here is the app's, never
  the payer's (kind "app"). A target without [app] skips this feature.

  # ${app.connect} is the target's [app] connect: the text of the link or button that starts
  # connecting to the health plan. Add steps of the sign-in language (clicks, fills in,
  # chooses, waits for) for whatever else your app asks before or after the sign-in. An app
  # that shows clinical data rather than claims: "the app shows one of the member's
  # MedicationRequest resources" (any type; the words of their codes, or their dates).
  Scenario: The member connects the app and sees their data
    Given the member opens the app
    When the member clicks "${app.connect}"
    And the member signs in to the health plan
    Then the browser is back in the app
    And the app shows the member's name
    And the app shows one of the member's claims
