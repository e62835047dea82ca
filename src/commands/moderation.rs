//! `kitteh keys`, `kitteh reports`, `kitteh images` and `kitteh ban`: what
//! an operator of a public instance does from the command line.

use chrono::Utc;
use serde_json::json;

use super::Failure;
use crate::app::Services;
use crate::cli::Paging;
use crate::cli::{BanAction, ImagesAction, KeysAction, ReportsAction};
use crate::commands::listing::Out;
use crate::config::{ByteUnit, Config, parse_duration};
use crate::names::token_from_path;
use crate::service::Error;
use crate::service::images::Listing;
use crate::service::moderation::{Moderation, parse_net};
use crate::views::human_bytes;

fn when(at: Option<chrono::DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

pub(super) async fn keys(config: Config, action: KeysAction) -> Result<(), Failure> {
    let services = Services::connect(config).await?;
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
        KeysAction::List { json, paging } => keys_list(moderation, json, &paging).await?,
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
    let services = Services::connect(config).await?;
    let moderation = services.moderation();
    match action {
        ReportsAction::List { json, all, paging } => {
            reports_list(moderation, json, all, &paging).await?;
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
                match services.removals().take_down(&report.token, block).await {
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
    let services = Services::connect(config).await?;
    let moderation = services.moderation();
    match action {
        ImagesAction::List {
            since,
            ip,
            key,
            reported,
            json,
            paging,
        } => {
            let filter = listing_filter(moderation, since, ip, key, reported).await?;
            images_list(&services, filter, json, &paging).await?;
        }
        ImagesAction::Delete { names, block } => {
            let mut missing = Vec::new();
            for name in &names {
                let Some(token) = token_from_path(name) else {
                    missing.push(name.clone());
                    continue;
                };
                match services.removals().take_down(&token, block).await {
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
    let services = Services::connect(config).await?;
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
                let found = services.removals().purge_count(net).await?;
                return Err(Failure::runtime(format!(
                    "--purge would delete {found} image(s) uploaded from {net}; nothing was done. \
                     Run again with --yes to ban and delete them"
                )));
            }
            moderation.ban(&net.to_string(), &reason).await?;
            outln!("banned {net}");
            if purge {
                let removed = services.removals().purge(net).await?;
                outln!("deleted {removed} image(s) uploaded from {net}");
            }
        }
        BanAction::List { json, paging } => ban_list(moderation, json, &paging).await?,
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

async fn keys_list(moderation: &Moderation, json: bool, paging: &Paging) -> Result<(), Failure> {
    let limit = paging.page_size()?;
    let mut out = Out::new(
        json,
        format!(
            "{:<20} {:<16} {:<16} {:>8} {:>10} {:>10}  NOTES",
            "NAME", "CREATED", "LAST USED", "UPLOADS", "BYTES", "QUOTA"
        ),
    );
    let mut after = paging.cursor.clone();
    loop {
        let keys = moderation.list_keys(after.as_deref(), limit).await?;
        let full = keys.len() as u64 == limit;
        after = keys.last().map(|k| k.name.clone());
        for k in keys {
            out.row(|| key_line(&k), || json!(k));
        }
        if !(full && paging.all_pages) {
            out.end(after.filter(|_| full));
            return Ok(());
        }
    }
}

fn key_line(k: &crate::service::moderation::KeyListing) -> String {
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
    format!(
        "{:<20} {:<16} {:<16} {:>8} {:>10} {:>10}  {}",
        k.name,
        when(Some(k.created_at)),
        when(k.last_used_at),
        k.uploads,
        k.bytes,
        k.quota_bytes.map_or_else(|| "-".into(), |q| q.to_string()),
        notes.join(", ")
    )
}

async fn reports_list(
    moderation: &Moderation,
    json: bool,
    all: bool,
    paging: &Paging,
) -> Result<(), Failure> {
    let limit = paging.page_size()?;
    let mut out = Out::new(
        json,
        format!(
            "{:>5}  {:<16} {:<20} {:<32} DETAILS",
            "ID", "CREATED", "REASON", "TOKEN"
        ),
    );
    let mut after = paging.numeric_cursor()?;
    loop {
        let reports = moderation.reports(all, after, limit).await?;
        let full = reports.len() as u64 == limit;
        after = reports.last().map(|r| r.id);
        for r in reports {
            let line = || {
                let details: String = r.details.replace('\n', " ").chars().take(60).collect();
                let state = r
                    .resolution
                    .as_ref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default();
                format!(
                    "{:>5}  {:<16} {:<20} {:<32} {details}{state}",
                    r.id,
                    when(Some(r.created_at)),
                    r.reason,
                    r.token
                )
            };
            out.row(line, || json!(r));
        }
        if !(full && paging.all_pages) {
            out.end(after.filter(|_| full).map(|a| a.to_string()));
            return Ok(());
        }
    }
}

/// What `images list`'s flags pick.
async fn listing_filter(
    moderation: &Moderation,
    since: Option<String>,
    ip: Option<String>,
    key: Option<String>,
    reported: bool,
) -> Result<Listing, Failure> {
    let mut filter = Listing {
        reported,
        ..Listing::default()
    };
    if let Some(since) = since {
        let d = parse_duration(&since)
            .map_err(|e| Failure::config(format!("--since: {e}")))?
            .ok_or_else(|| Failure::config("--since: give a duration such as 7d"))?;
        filter.since = Some(Utc::now() - chrono::Duration::from_std(d).unwrap_or_default());
    }
    if let Some(ip) = ip {
        filter.net = Some(parse_net(&ip).map_err(|e| Failure::config(format!("--ip: {e}")))?);
    }
    if let Some(name) = key {
        filter.key_id = Some(
            moderation
                .key_id(&name)
                .await?
                .ok_or_else(|| Failure::config(format!("--key: no key called {name:?}")))?,
        );
    }
    Ok(filter)
}

async fn images_list(
    services: &Services,
    mut filter: Listing,
    json: bool,
    paging: &Paging,
) -> Result<(), Failure> {
    filter.limit = Some(paging.page_size()? as usize);
    filter.before = paging.numeric_cursor()?;
    let mut out = Out::new(
        json,
        format!(
            "{:<44} {:<16} {:>10} {:<16} {:<39} {:<16} REPORTS",
            "NAME", "CREATED", "BYTES", "KEY", "ADDRESS", "EXPIRES"
        ),
    );
    loop {
        let page = services.images().listing(&filter).await?;
        let ids: Vec<i64> = page.items.iter().filter_map(|l| l.key_id).collect();
        let keys = services.moderation().key_names(&ids).await?;
        let key_of =
            |l: &crate::service::images::Listed| l.key_id.and_then(|id| keys.get(&id).cloned());
        for l in &page.items {
            let line = || {
                format!(
                    "{:<44} {:<16} {:>10} {:<16} {:<39} {:<16} {}",
                    l.image.name,
                    when(Some(l.image.created_at)),
                    human_bytes(l.image.bytes),
                    key_of(l).unwrap_or_else(|| "-".into()),
                    l.uploader_ip.as_deref().unwrap_or("-"),
                    when(l.image.expires_at),
                    l.reports
                )
            };
            let value = || {
                json!({
                    "name": l.image.name,
                    "token": l.image.token,
                    "created_at": l.image.created_at.to_rfc3339(),
                    "expires_at": l.image.expires_at.map(|t| t.to_rfc3339()),
                    "bytes": l.image.bytes,
                    "sha256": l.image.sha256(),
                    "key": key_of(l),
                    "ip": l.uploader_ip,
                    "open_reports": l.reports,
                })
            };
            out.row(line, value);
        }
        match page.next {
            Some(next) if paging.all_pages => filter.before = Some(next),
            next => {
                out.end(next.map(|n| n.to_string()));
                return Ok(());
            }
        }
    }
}

async fn ban_list(moderation: &Moderation, json: bool, paging: &Paging) -> Result<(), Failure> {
    let limit = paging.page_size()?;
    let mut out = Out::new(json, format!("{:<43} {:<16} REASON", "CIDR", "SINCE"));
    let mut after = paging.cursor.clone();
    loop {
        let bans = moderation.bans(after.as_deref(), limit).await?;
        let full = bans.len() as u64 == limit;
        after = bans.last().map(|b| b.cidr.clone());
        for b in bans {
            out.row(
                || {
                    format!(
                        "{:<43} {:<16} {}",
                        b.cidr,
                        when(Some(b.created_at)),
                        b.reason
                    )
                },
                || json!(b),
            );
        }
        if !(full && paging.all_pages) {
            out.end(after.filter(|_| full));
            return Ok(());
        }
    }
}
