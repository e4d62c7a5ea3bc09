//! `meschain token`: mint a development login token from the local identity settings.

use std::path::PathBuf;

use anyhow::Context;
use meschain_functions_host::config::Settings;

use crate::dev_token;

/// Options of `meschain token`.
#[derive(clap::Args)]
pub struct Args {
    /// The user id (`sub` claim).
    #[arg(long)]
    pub user: String,
    /// A role (`roles` claim); repeat for several.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// App root holding local.settings.json (or local.settings.example.json).
    #[arg(long, default_value = ".")]
    pub app_root: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::load(&args.app_root)?;
    // The login secret may be a Key Vault reference: read it as the handler would.
    let values = &settings.values;
    let var = |n: &str| std::env::var(n).ok().or_else(|| values.get(n).cloned());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let secrets = rt
        .block_on(meschain_secrets::settings::resolve(values.iter().map(|(k, v)| (k.as_str(), v.as_str())), var))
        .context("Key Vault references in the settings")?;
    let now = meschain_model::clock::now_secs();
    println!("{}", dev_token::mint(&settings, &secrets, &args.user, &args.roles, now)?);
    Ok(())
}
