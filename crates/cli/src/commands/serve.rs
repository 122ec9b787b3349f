//! `codeclab serve`: the dashboard alone (no workers), until Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use codeclab_lab::Lab;
use codeclab_web::{AdminToken, WebConfig};

use super::run::{LabArgs, runtime};

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value_t = codeclab_web::DEFAULT_BIND)]
    pub bind: SocketAddr,
}

/// The dashboard's settings for `bind`: the admin token is made (and shown once) at the first
/// start.
pub async fn dashboard_config(lab: &Lab, bind: SocketAddr) -> anyhow::Result<WebConfig> {
    let (token, created) = AdminToken::ensure(&lab.store)
        .await
        .context("preparing the admin token")?;
    if let Some(secret) = created {
        eprintln!("admin token: {secret} (shown once, stored hashed)");
    }
    eprintln!("dashboard: http://{bind}");
    Ok(WebConfig {
        bind,
        admin_token: token,
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let lab = args.lab.open().await?;
        let config = dashboard_config(&lab, args.bind).await?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop.send(true);
            }
        });
        codeclab_web::serve(Arc::new(lab), config, shutdown)
            .await
            .context("serving the dashboard")
    })
}
