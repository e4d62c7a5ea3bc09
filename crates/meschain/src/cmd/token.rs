//! `meschain token`: mint a development login token from the local identity settings.

use std::path::PathBuf;

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
    println!("{}", dev_token::mint(&settings, &args.user, &args.roles, meschain_model::clock::now_secs())?);
    Ok(())
}
