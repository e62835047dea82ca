//! Removing pictures, with the rules each way comes with: their owners
//! delete with the delete token (held to bans and to the limit on wrong
//! tokens) or with the key they were uploaded with (their own only);
//! operators take a picture down (and may block its bytes) or purge
//! everything an address uploaded. Drives `Images` (the deleting) and
//! `Moderation` (the rules, the blocklist, the reports), which know
//! nothing of each other.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::service::error::{Error, Result};
use crate::service::images::{Images, Listing, MAX_PAGE, TOMBSTONE_BLOCKED};
use crate::service::model::{ImageInfo, KeyInfo};
use crate::service::moderation::Moderation;

pub struct Removals {
    images: Arc<Images>,
    moderation: Arc<Moderation>,
}

impl Removals {
    pub fn new(images: Arc<Images>, moderation: Arc<Moderation>) -> Self {
        Self { images, moderation }
    }

    /// A delete with the delete token, from `addr`: refused when the
    /// address is banned or out of wrong guesses; a wrong token counts.
    pub async fn with_token(
        &self,
        addr: Option<IpAddr>,
        token: &str,
        delete_token: Option<&str>,
    ) -> Result<ImageInfo> {
        self.moderation.admit_delete(addr).await?;
        let deleted = self.images.delete(token, delete_token).await;
        if let Err(Error::WrongDeleteToken) = &deleted {
            self.moderation.wrong_delete(addr);
        }
        deleted
    }

    /// A delete by the key a picture was uploaded with: someone else's
    /// picture is as good as not there.
    pub async fn by_key(
        &self,
        addr: Option<IpAddr>,
        key: &KeyInfo,
        token: &str,
    ) -> Result<ImageInfo> {
        self.moderation.check_ban(addr).await?;
        let token = token.to_ascii_lowercase();
        let found = self
            .images
            .listing(&Listing {
                tokens: Some(vec![token.clone()]),
                ..Listing::default()
            })
            .await?;
        match found.items.first() {
            Some(l) if l.key_id == Some(key.id) => self.images.remove(&token, None).await,
            _ => Err(Error::NotFound(token)),
        }
    }

    /// Deletes an image for an operator, and with `block` puts its bytes
    /// on the blocklist first (so the same picture cannot come back) and
    /// leaves a tombstone (so its name answers 451). Open reports about it
    /// are resolved.
    pub async fn take_down(&self, token: &str, block: bool) -> Result<ImageInfo> {
        let (images, moderation) = (&self.images, &self.moderation);
        let image = images.get(token).await?;
        if !block {
            let removed = images.remove(&image.token, None).await?;
            moderation.resolve_reports(&image.token, "deleted").await?;
            return Ok(removed);
        }
        moderation
            .block(image.sha256(), &format!("blocked with {}", image.name))
            .await?;
        // Every name showing the same bytes goes with it.
        for copy in images.with_sha256(image.sha256()).await? {
            match images.remove(&copy.token, Some(TOMBSTONE_BLOCKED)).await {
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            moderation.resolve_reports(&copy.token, "blocked").await?;
        }
        Ok(image)
    }

    /// How many images still known to have come from `net` a purge would
    /// delete.
    pub async fn purge_count(&self, net: IpNet) -> Result<u64> {
        self.images.count_from(net).await
    }

    /// Deletes every image still known to have come from `net`, a page at
    /// a time; returns how many.
    pub async fn purge(&self, net: IpNet) -> Result<u64> {
        let mut removed = 0;
        let mut before = None;
        loop {
            let page = self
                .images
                .listing(&Listing {
                    net: Some(net),
                    before,
                    limit: Some(MAX_PAGE),
                    ..Listing::default()
                })
                .await?;
            for listed in &page.items {
                match self.take_down(&listed.image.token, false).await {
                    Ok(_) => removed += 1,
                    // Gone meanwhile (expired, deleted by its owner).
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next {
                Some(next) => before = Some(next),
                None => return Ok(removed),
            }
        }
    }
}
