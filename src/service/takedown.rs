//! What operators do about a picture or an address: take a picture down
//! (and block its bytes), or purge everything an address uploaded. It
//! drives `Images` (the deleting) and `Moderation` (the blocklist and the
//! reports), which know nothing of each other.

use std::sync::Arc;

use ipnet::IpNet;

use crate::service::error::{Error, Result};
use crate::service::images::{Images, Listing, MAX_PAGE, TOMBSTONE_BLOCKED};
use crate::service::model::ImageInfo;
use crate::service::moderation::Moderation;

pub struct Takedowns {
    images: Arc<Images>,
    moderation: Arc<Moderation>,
}

impl Takedowns {
    pub fn new(images: Arc<Images>, moderation: Arc<Moderation>) -> Self {
        Self { images, moderation }
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
