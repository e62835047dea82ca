//! `kitteh keys`, `kitteh reports`, `kitteh images` and `kitteh ban`: what
//! an operator of a public instance does from the command line.

use chrono::Utc;
use serde_json::json;

use super::Failure;
use crate::app::Services;
use crate::cli::{BanAction, ImagesAction, KeysAction, ReportsAction};
use crate::config::{ByteUnit, Config, parse_duration};
use crate::names::token_from_path;
use crate::service::Error;
use crate::service::images::Listing;
use crate::service::moderation::{self, parse_net};
use crate::views::human_bytes;

fn json_out(value: &serde_json::Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn when(at: Option<chrono::DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

pub(super) async fn keys(config: Config, action: KeysAction) -> Result<(), Failure> {
    let services = Services::build(config).await?;
    let moderation = services.moderation();
    match action {
        KeysAction::Create {
            name,
            quota,
            admin,
            uploads_per_minute,
        } => {
            let quota = match quota {
                Some(text) => Some(text.trim().parse::<ByteUnit>().map_err(|_| {
                    Failure::config(format!(
                        "--quota: {text:?} is not a size such as 500MiB or 2GB"
                    ))
                })?),
                None => None,
            };
            let key = moderation
                .create_key(&name, quota.map(|q| q.as_u64()), admin, uploads_per_minute)
                .await
                .map_err(|e| match e {
                    Error::BadForm(m) => Failure::config(m),
                    other => other.into(),
                })?;
            eprintln!(
                "created the {}key {name:?}; it is shown only this once:",
                if admin { "admin " } else { "" }
            );
            outln!("{key}");
        }
        KeysAction::List { json } => {
            let keys = moderation.list_keys().await?;
            if json {
                json_out(&json!(keys));
                return Ok(());
            }
            outln!(
                "{:<20} {:<16} {:<16} {:>8} {:>10} {:>10}  NOTES",
                "NAME",
                "CREATED",
                "LAST USED",
                "UPLOADS",
                "BYTES",
                "QUOTA"
            );
            for k in keys {
                let mut notes = Vec::new();
                if k.admin {
                    notes.push("admin".to_string());
                }
                if let Some(n) = k.uploads_per_minute {
                    notes.push(format!("{n}/min"));
                }
                if let Some(at) = k.revoked_at {
                    notes.push(format!("revoked {}", when(Some(at))));
                }
                outln!(
                    "{:<20} {:<16} {:<16} {:>8} {:>10} {:>10}  {}",
                    k.name,
                    when(Some(k.created_at)),
                    when(k.last_used_at),
                    k.uploads,
                    k.bytes,
                    k.quota_bytes.map_or_else(|| "-".into(), |q| q.to_string()),
                    notes.join(", ")
                );
            }
        }
        KeysAction::Revoke { name } => {
            if !moderation.revoke_key(&name).await? {
                return Err(Failure::runtime(format!(
                    "no key called {name:?} that is not revoked already"
                )));
            }
            outln!("revoked {name:?}");
        }
    }
    Ok(())
}

pub(super) async fn reports(config: Config, action: ReportsAction) -> Result<(), Failure> {
    let services = Services::build(config).await?;
    let moderation = services.moderation();
    match action {
        ReportsAction::List { json, all } => {
            let reports = moderation.reports(all).await?;
            if json {
                json_out(&json!(reports));
                return Ok(());
            }
            outln!(
                "{:>5}  {:<16} {:<20} {:<32} DETAILS",
                "ID",
                "CREATED",
                "REASON",
                "TOKEN"
            );
            for r in reports {
                let details: String = r.details.replace('\n', " ").chars().take(60).collect();
                let state = r.resolution.map(|s| format!(" [{s}]")).unwrap_or_default();
                outln!(
                    "{:>5}  {:<16} {:<20} {:<32} {details}{state}",
                    r.id,
                    when(Some(r.created_at)),
                    r.reason,
                    r.token
                );
            }
        }
        ReportsAction::Resolve {
            id,
            delete,
            dismiss: _,
            block,
        } => {
            let report = moderation.report_by_id(id).await.map_err(not_found)?;
            if report.resolved_at.is_some() {
                return Err(Failure::runtime(format!(
                    "report {id} is resolved already ({})",
                    report.resolution.unwrap_or_default()
                )));
            }
            if delete {
                match moderation::take_down(services.images(), moderation, &report.token, block)
                    .await
                {
                    Ok(image) => outln!(
                        "deleted {}{}",
                        image.name,
                        if block {
                            " and blocked its picture"
                        } else {
                            ""
                        }
                    ),
                    // The image went meanwhile: the report is done with.
                    Err(Error::NotFound(_)) => {
                        moderation.resolve_report(id, "gone").await?;
                        outln!("the image was gone already; report {id} closed");
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                moderation.resolve_report(id, "dismissed").await?;
                outln!("dismissed report {id}");
            }
        }
    }
    Ok(())
}

fn not_found(e: Error) -> Failure {
    match e {
        Error::NotFound(what) => Failure::runtime(format!("no {what}")),
        other => other.into(),
    }
}

pub(super) async fn images(config: Config, action: ImagesAction) -> Result<(), Failure> {
    let services = Services::build(config).await?;
    let moderation = services.moderation();
    let images = services.images();
    match action {
        ImagesAction::List {
            since,
            ip,
            key,
            reported,
            json,
        } => {
            let mut filter = Listing::default();
            if let Some(since) = since {
                let d = parse_duration(&since)
                    .map_err(|e| Failure::config(format!("--since: {e}")))?
                    .ok_or_else(|| Failure::config("--since: give a duration such as 7d"))?;
                filter.since = Some(Utc::now() - chrono::Duration::from_std(d).unwrap_or_default());
            }
            if let Some(ip) = ip {
                filter.net =
                    Some(parse_net(&ip).map_err(|e| Failure::config(format!("--ip: {e}")))?);
            }
            if let Some(name) = key {
                filter.key_id =
                    Some(moderation.key_id(&name).await?.ok_or_else(|| {
                        Failure::config(format!("--key: no key called {name:?}"))
                    })?);
            }
            let reports = moderation.reports(false).await?;
            if reported {
                filter.tokens = Some(reports.iter().map(|r| r.token.clone()).collect());
            }
            let keys = moderation.key_names().await?;
            let listed = images.listing(&filter).await?;
            let open = |token: &str| reports.iter().filter(|r| r.token == token).count();
            if json {
                let rows: Vec<serde_json::Value> = listed
                    .iter()
                    .map(|l| {
                        json!({
                            "name": l.image.name,
                            "token": l.image.token,
                            "created_at": l.image.created_at.to_rfc3339(),
                            "expires_at": l.image.expires_at.map(|t| t.to_rfc3339()),
                            "bytes": l.image.bytes,
                            "sha256": l.image.sha256(),
                            "key": l.key_id.and_then(|id| keys.get(&id)),
                            "ip": l.uploader_ip,
                            "open_reports": open(&l.image.token),
                        })
                    })
                    .collect();
                json_out(&json!(rows));
                return Ok(());
            }
            outln!(
                "{:<44} {:<16} {:>10} {:<16} {:<39} {:<16} REPORTS",
                "NAME",
                "CREATED",
                "BYTES",
                "KEY",
                "ADDRESS",
                "EXPIRES"
            );
            for l in &listed {
                outln!(
                    "{:<44} {:<16} {:>10} {:<16} {:<39} {:<16} {}",
                    l.image.name,
                    when(Some(l.image.created_at)),
                    human_bytes(l.image.bytes),
                    l.key_id
                        .and_then(|id| keys.get(&id).cloned())
                        .unwrap_or_else(|| "-".into()),
                    l.uploader_ip.as_deref().unwrap_or("-"),
                    when(l.image.expires_at),
                    open(&l.image.token)
                );
            }
        }
        ImagesAction::Delete { names, block } => {
            let mut missing = Vec::new();
            for name in &names {
                let Some(token) = token_from_path(name) else {
                    missing.push(name.clone());
                    continue;
                };
                match moderation::take_down(images, moderation, &token, block).await {
                    Ok(image) => outln!(
                        "deleted {}{}",
                        image.name,
                        if block { " (blocked)" } else { "" }
                    ),
                    Err(Error::NotFound(_)) => missing.push(name.clone()),
                    Err(e) => return Err(e.into()),
                }
            }
            if !missing.is_empty() {
                return Err(Failure::runtime(format!(
                    "no image called {}",
                    missing.join(", ")
                )));
            }
        }
    }
    Ok(())
}

pub(super) async fn ban(config: Config, action: BanAction) -> Result<(), Failure> {
    let services = Services::build(config).await?;
    let moderation = services.moderation();
    match action {
        BanAction::Add {
            cidr,
            purge,
            yes,
            reason,
        } => {
            let net = parse_net(&cidr).map_err(|e| Failure::config(e.to_string()))?;
            if purge && !yes {
                let found = services
                    .images()
                    .listing(&Listing {
                        net: Some(net),
                        ..Listing::default()
                    })
                    .await?;
                return Err(Failure::runtime(format!(
                    "--purge would delete {} image(s) uploaded from {net}; nothing was done. \
                     Run again with --yes to ban and delete them",
                    found.len()
                )));
            }
            moderation.ban(&net.to_string(), &reason).await?;
            outln!("banned {net}");
            if purge {
                let removed = moderation::purge(services.images(), moderation, net).await?;
                outln!("deleted {} image(s) uploaded from {net}", removed.len());
            }
        }
        BanAction::List { json } => {
            let bans = moderation.bans().await?;
            if json {
                json_out(&json!(bans));
                return Ok(());
            }
            outln!("{:<43} {:<16} REASON", "CIDR", "SINCE");
            for b in bans {
                outln!(
                    "{:<43} {:<16} {}",
                    b.cidr,
                    when(Some(b.created_at)),
                    b.reason
                );
            }
        }
        BanAction::Remove { cidr } => {
            let net = parse_net(&cidr).map_err(|e| Failure::config(e.to_string()))?;
            if !moderation.unban(&net.to_string()).await? {
                return Err(Failure::runtime(format!("{net} is not banned")));
            }
            outln!("lifted the ban on {net}");
        }
    }
    Ok(())
}
