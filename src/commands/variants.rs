//! `kitteh variants`: inspect the resize queue, or run jobs again.

use super::Failure;
use crate::app::Services;
use crate::cli::VariantsAction;
use crate::config::Config;
use crate::service::sizes::Requeue;

pub(super) async fn variants(config: Config, action: VariantsAction) -> Result<(), Failure> {
    let services = Services::connect(config).await?;
    let sizes = services.sizes();
    match action {
        VariantsAction::Status => {
            for (state, n) in sizes.counts().await? {
                outln!("{:<8} {n}", state.as_str());
            }
        }
        VariantsAction::Rebuild {
            all,
            failed,
            token,
            now,
        } => {
            let which = match (all, failed, token.as_deref()) {
                (true, _, _) => Requeue::All,
                (_, true, _) => Requeue::Failed,
                (_, _, Some(token)) => Requeue::Token(token),
                _ => {
                    return Err(Failure::config(
                        "say what to rebuild: --all, --failed or a TOKEN",
                    ));
                }
            };
            let queued = sizes.requeue(which).await?;
            outln!("queued {queued} job(s)");
            if now && queued > 0 {
                let bar = super::progress_bar(queued as u64, "jobs");
                while sizes.work_once().await? {
                    bar.inc(1);
                }
                bar.finish();
                for (state, n) in sizes.counts().await? {
                    outln!("{:<8} {n}", state.as_str());
                }
            }
        }
    }
    Ok(())
}
