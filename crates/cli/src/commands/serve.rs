//! `codeclab serve`: the dashboard alone (no workers), until Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
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

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let lab = args.lab.open().await?;
        let (token, created) = AdminToken::ensure(&lab.store)
            .await
            .context("preparing the admin token")?;
        if let Some(secret) = created {
            eprintln!("admin token: {secret} (shown once, stored hashed)");
        }
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop.send(true);
            }
        });
        eprintln!("dashboard: http://{}", args.bind);
        codeclab_web::serve(
            Arc::new(lab),
            WebConfig {
                bind: args.bind,
                admin_token: token,
            },
            shutdown,
        )
        .await
        .context("serving the dashboard")
    })
}
