//! The flags every subcommand shares for reaching a server: its access
//! token and, for `https://` servers with a self-signed certificate, the
//! certificate to trust.

use std::path::PathBuf;

use anyhow::Context;
use rt_tui::net::Endpoint;

use super::connect::normalize_url;

/// `--token` and `--ca-cert`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// The server's access token (rt-server --token-file / RT_TOKEN), sent as
    /// `Authorization: Bearer` on every request and WebSocket.
    #[arg(
        long,
        global = true,
        env = rt_tui::net::endpoint::TOKEN_ENV,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Trust this PEM certificate (a self-signed server's, or its CA's) for
    /// https:// and wss:// besides the system's roots.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

impl ServerArgs {
    /// The server at `url` (checked and normalised), with these settings.
    pub fn endpoint(&self, url: &str) -> anyhow::Result<Endpoint> {
        let base = normalize_url(url)?;
        let mut endpoint = Endpoint::new(base).with_token(self.token.clone());
        if let Some(path) = &self.ca_cert {
            endpoint = endpoint
                .with_ca_cert(path)
                .context("cannot use --ca-cert")?;
        }
        Ok(endpoint)
    }
}
