//! `kitteh doctor`: every readiness check with what it found, in full,
//! for the operator at the console (the public `/readyz` names checks
//! only).

use super::Failure;
use crate::app::Services;
use crate::config::Config;

pub(super) async fn doctor(config: Config) -> Result<(), Failure> {
    let services = Services::connect(config).await?;
    // What `serve` does at startup, so the identity is known.
    if let Err(e) = services.installation().check().await {
        outln!("installation: cannot check: {}", e.chain());
    }
    let checks = services.health().readiness().await;
    let mut failed = 0;
    for check in &checks {
        let facts: Vec<String> = check
            .facts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let state = if check.ok { "ok  " } else { "FAIL" };
        if !check.ok {
            failed += 1;
        }
        if facts.is_empty() {
            outln!("{state} {}", check.name);
        } else {
            outln!("{state} {}: {}", check.name, facts.join("; "));
        }
    }
    if failed > 0 {
        return Err(Failure::runtime(format!("{failed} check(s) failed")));
    }
    Ok(())
}
