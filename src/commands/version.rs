//! `kitteh version`.

use crate::assets::Assets;
use crate::cli::VersionArgs;
use crate::db;

/// Build facts stamped by build.rs.
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub target: &'static str,
    pub rustc: &'static str,
    pub profile: &'static str,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("KITTEH_GIT_COMMIT"),
    target: env!("KITTEH_TARGET"),
    rustc: env!("KITTEH_RUSTC_VERSION"),
    profile: env!("KITTEH_PROFILE"),
};

pub(super) fn version(args: &VersionArgs) {
    let newest = db::newest_migration();
    let (asset_count, asset_bytes) = Assets::embedded().summary();
    if args.json {
        let value = serde_json::json!({
            "name": "kitteh",
            "version": BUILD.version,
            "commit": BUILD.commit,
            "target": BUILD.target,
            "rustc": BUILD.rustc,
            "profile": BUILD.profile,
            "allocator": crate::ALLOCATOR,
            "newest_migration": newest,
            "assets": { "count": asset_count, "bytes": asset_bytes },
        });
        outln!("{value}");
        return;
    }
    outln!("kitteh {}", BUILD.version);
    if args.verbose {
        outln!("commit:           {}", BUILD.commit);
        outln!("target:           {}", BUILD.target);
        outln!("rustc:            {}", BUILD.rustc);
        outln!("profile:          {}", BUILD.profile);
        outln!("allocator:        {}", crate::ALLOCATOR);
        outln!("newest migration: {newest}");
        outln!("embedded assets:  {asset_count} files, {asset_bytes} bytes");
    }
}
