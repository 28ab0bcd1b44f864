//! Rust core helpers (the API a Rust application uses directly).

use pie::{Client, ClientConfig};

pub async fn connect(url: &str, quickack: bool) -> Result<Client, String> {
    let cfg = ClientConfig {
        tcp_quickack: quickack,
        ..ClientConfig::default()
    };
    let c = Client::connect_with(url, cfg)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    c.authenticate("bench", None)
        .await
        .map_err(|e| format!("authenticate: {e}"))?;
    Ok(c)
}
