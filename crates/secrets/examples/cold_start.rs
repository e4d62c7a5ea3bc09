//! Cold-start cost of Key Vault references: one fresh process resolving the settings given as
//! `NAME=VALUE` arguments, exactly as a process does at start (credential from the environment,
//! TLS connection, challenge, token, parallel reads). Prints `{"ms": …}`; `bench/secrets.sh`
//! runs it many times against the fake vault.

use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    let pairs: Vec<(String, String)> = std::env::args()
        .skip(1)
        .map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).expect("NAME=VALUE"))
        .collect();
    let settings = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match meschain_secrets::settings::resolve(settings, |n| std::env::var(n).ok()).await {
        Ok(secrets) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            println!("{{\"ms\":{ms:.2},\"secrets\":{}}}", secrets.settings().count());
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
