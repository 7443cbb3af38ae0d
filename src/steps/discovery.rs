//! Steps of discovery: the SMART configuration and the CapabilityStatement, judged by
//! [`crate::payer::discovery`].

use cucumber::gherkin::Step;
use cucumber::{then, when};

use super::world::OnrampWorld;
use crate::infra::words::listed;
use crate::payer::discovery;
use crate::run::StepFailure;
use crate::run::verdict;

fn problems(head: &str, result: Result<(), Vec<String>>) -> Result<(), StepFailure> {
    result.map_err(|problems| StepFailure::conformance(listed(head, &problems)))
}

#[when("the app reads the SMART configuration")]
async fn reads_smart(world: &mut OnrampWorld) {
    verdict(
        async {
            world.ctx()?.smart_configuration().await?;
            Ok(())
        }
        .await,
    );
}

#[then(
    "the SMART configuration is JSON with the endpoints and capabilities SMART App Launch 2.0 requires"
)]
async fn smart_fields(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        problems(
            "the SMART configuration lacks what SMART App Launch 2.0 (Conformance) requires:",
            discovery::smart_required_fields(ctx.smart_configuration().await?),
        )
    }
    .await;
    world.judge(step, result);
}

#[then("it offers the authorization code grant with PKCE S256 and not plain")]
async fn smart_pkce(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        problems(
            "the SMART configuration does not offer what SMART App Launch 2.0 requires:",
            discovery::smart_pkce(ctx.smart_configuration().await?),
        )
    }
    .await;
    world.judge(step, result);
}

#[then("it names the OpenID Connect issuer and keys when it offers sso-openid-connect")]
async fn smart_openid(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let smart = ctx.smart_configuration().await?;
        problems(
            "the SMART configuration offers sso-openid-connect but (SMART App Launch 2.0, Conformance):",
            discovery::smart_openid_fields(smart),
        )?;
        match discovery::smart_issuer_without_openid(smart) {
            Some(warning) => Err(StepFailure::warning(warning)),
            None => Ok(()),
        }
    }
    .await;
    world.judge(step, result);
}

#[then("it offers the SMART capabilities the CARIN IG asks for")]
async fn smart_carin(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        match discovery::smart_missing_carin_capabilities(ctx.smart_configuration().await?) {
            Err(problem) => Err(StepFailure::blocked(problem.to_string())),
            Ok(missing) if missing.is_empty() => Ok(()),
            Ok(missing) => Err(StepFailure::warning(format!(
                "the SMART capabilities lack {} (CARIN BB 2.0.0, Authorization: a payer supports standalone launch of confidential apps, OpenID Connect, offline access and patient context)",
                missing.join(", ")
            ))),
        }
    }
    .await;
    world.judge(step, result);
}

#[when("the app reads the CapabilityStatement")]
async fn reads_metadata(world: &mut OnrampWorld) {
    verdict(
        async {
            world.ctx()?.capability_statement().await?;
            Ok(())
        }
        .await,
    );
}

#[then("the CapabilityStatement is an R4 CapabilityStatement in JSON")]
async fn metadata_r4(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        problems(
            "the server's /metadata is not what FHIR R4 (capabilities interaction) defines:",
            discovery::capability_statement(ctx.capability_statement().await?).map(|_| ()),
        )
    }
    .await;
    world.judge(step, result);
}

#[then("its OAuth endpoints are the SMART configuration's")]
async fn metadata_oauth(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let capability = capability(&ctx).await?;
        discovery::oauth_uris_agree(&capability, ctx.smart_configuration().await?)
    }
    .await;
    world.judge(step, result);
}

#[then("it lists what the CARIN IG requires of every required type")]
async fn metadata_carin(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let capability = capability(&ctx).await?;
        let missing = discovery::capability_missing(&capability, &ctx.target.required_resources);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StepFailure::conformance(listed(
                "the CapabilityStatement lacks what the CARIN BB 2.0.0 CapabilityStatement makes a SHALL:",
                &missing,
            )))
        }
    }
    .await;
    world.judge(step, result);
}

#[then("it instantiates the CARIN CapabilityStatement")]
async fn metadata_instantiates(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let capability = capability(&ctx).await?;
        let names_carin = capability
            .instantiates
            .iter()
            .any(|url| url.split('|').next() == Some(discovery::CARIN_CAPABILITY));
        if names_carin {
            Ok(())
        } else {
            Err(StepFailure::warning(format!(
                "instantiates does not name {} (CARIN BB 2.0.0 asks servers to declare that they implement it)",
                discovery::CARIN_CAPABILITY
            )))
        }
    }
    .await;
    world.judge(step, result);
}

/// The server's CapabilityStatement; a check of it is blocked when there is none.
async fn capability(
    ctx: &crate::run::context::RunContext,
) -> Result<discovery::ServerCapability, StepFailure> {
    ctx.server_capability()
        .await
        .ok_or_else(|| StepFailure::blocked("there is no CapabilityStatement to read"))
}
