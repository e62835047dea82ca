//! Static assets: fingerprinted, pre-compressed and embedded at build time
//! (see build.rs), or read from `assets.dir` at startup so a site can be
//! restyled without a rebuild. Pages name assets only through
//! [`Assets::path`].

pub mod digest;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rust_embed::RustEmbed;

include!(concat!(env!("OUT_DIR"), "/asset_manifest.rs"));

#[derive(RustEmbed)]
#[folder = "$OUT_DIR/assets"]
struct Embedded;

/// One servable asset with its encodings.
#[derive(Debug, Clone)]
pub struct Asset {
    pub content_type: &'static str,
    pub etag: String,
    // Shared, so a response hands out the bytes without copying them.
    pub identity: Arc<[u8]>,
    pub gzip: Option<Arc<[u8]>>,
    pub brotli: Option<Arc<[u8]>>,
}

/// Every asset by served name, and logical name → served name.
#[derive(Debug, Clone, Default)]
pub struct Assets {
    by_name: HashMap<String, Asset>,
    manifest: HashMap<String, String>,
}

impl Assets {
    /// The assets compiled into this binary.
    pub fn embedded() -> Self {
        let mut assets = Self::default();
        for (logical, digested, etag, gzip, brotli) in MANIFEST {
            let Some(identity) = Embedded::get(digested) else {
                continue;
            };
            let compressed = |suffix: &str, present: bool| {
                present
                    .then(|| Embedded::get(&format!("{digested}.{suffix}")))
                    .flatten()
                    .map(|f| Arc::from(f.data.as_ref()))
            };
            assets.insert(
                logical,
                digested,
                Asset {
                    content_type: digest::content_type(digested),
                    etag: (*etag).to_string(),
                    identity: Arc::from(identity.data.as_ref()),
                    gzip: compressed("gz", *gzip),
                    brotli: compressed("br", *brotli),
                },
            );
        }
        assets
    }

    /// The assets in a folder, digested and compressed now, as build.rs
    /// does for the embedded ones.
    pub fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let mut assets = Self::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let d = digest::digest(&name, &std::fs::read(entry.path())?, None);
            let asset = Asset {
                content_type: digest::content_type(&d.digested),
                etag: d.etag,
                identity: Arc::from(d.identity),
                gzip: d.gzip.map(Arc::from),
                brotli: d.brotli.map(Arc::from),
            };
            assets.insert(&d.logical, &d.digested, asset);
        }
        Ok(assets)
    }

    fn insert(&mut self, logical: &str, digested: &str, asset: Asset) {
        self.manifest
            .insert(logical.to_string(), digested.to_string());
        self.by_name.insert(digested.to_string(), asset);
    }

    /// The URL path of a logical asset (`app.css` → `/assets/app-3f9a1c2b.css`).
    /// An asset missing from the manifest still gets a path, which will 404,
    /// rather than breaking the page.
    pub fn path(&self, logical: &str) -> String {
        match self.manifest.get(logical) {
            Some(digested) => format!("/assets/{digested}"),
            None => format!("/assets/{logical}"),
        }
    }

    pub fn get(&self, served_name: &str) -> Option<&Asset> {
        self.by_name.get(served_name)
    }

    /// How many assets there are and their total size, uncompressed.
    pub fn summary(&self) -> (usize, usize) {
        (
            self.by_name.len(),
            self.by_name.values().map(|a| a.identity.len()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_assets_have_digested_names_and_smaller_compressed_forms() {
        let assets = Assets::embedded();
        let css = assets.path("app.css");
        assert!(
            css.starts_with("/assets/app-") && css.ends_with(".css"),
            "{css}"
        );
        let asset = assets.get(css.trim_start_matches("/assets/")).unwrap();
        assert_eq!(asset.content_type, "text/css; charset=utf-8");
        let br = asset.brotli.as_ref().unwrap();
        assert!(br.len() < asset.identity.len());
        assert!(assets.get("favicon.ico").is_some());
        assert!(assets.get("robots.txt").is_some());
    }

    #[test]
    fn a_folder_of_assets_is_digested_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.css"), "body { color: red }").unwrap();
        let one = Assets::from_dir(dir.path()).unwrap().path("app.css");
        std::fs::write(dir.path().join("app.css"), "body { color: blue }").unwrap();
        let two = Assets::from_dir(dir.path()).unwrap().path("app.css");
        assert_ne!(one, two, "editing a file changes its name");
        assert_eq!(
            one,
            format!(
                "/assets/app-{}.css",
                &digest::digest("app.css", b"body { color: red }", None).etag[1..9]
            )
        );
    }
}
