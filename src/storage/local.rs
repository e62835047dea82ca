//! The local-folder backend. Files appear atomically (temp file, fsync,
//! rename into place, directory fsync) so a reader never sees half a file
//! and a committed row never points at a file a power cut lost.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{Entry, Store, check_name, probe_name};

/// Prefix of files being written; never served, swept like orphans.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: Arc<PathBuf>,
}

/// Bytes written and synced to a temp file, not yet visible under a name.
#[derive(Debug)]
struct Staged {
    path: PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Whatever happened, the temp name must not outlive the write.
        let _ = fs::remove_file(&self.path);
    }
}

impl LocalStore {
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(Self {
            root: Arc::new(root.to_path_buf()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a stored file; leftovers of interrupted writes may be
    /// named too, so that a sweep can remove them.
    fn path_of(&self, name: &str) -> io::Result<PathBuf> {
        match name.strip_prefix(TEMP_PREFIX) {
            Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()) => {}
            _ => check_name(name)?,
        }
        Ok(self.root.join(name))
    }

    /// Writes `bytes` to a fresh temp file in the folder and syncs it.
    fn stage(&self, bytes: &[u8]) -> io::Result<Staged> {
        let path = self
            .root
            .join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let staged = Staged { path };
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&staged.path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(staged)
    }

    fn put_blocking(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let target = self.path_of(name)?;
        let staged = self.stage(bytes)?;
        fs::rename(&staged.path, &target)?;
        sync_dir(&self.root)
    }

    fn delete_blocking(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path_of(name)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list_blocking(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(self.root.as_path())? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let meta = entry.metadata()?;
            if meta.is_file() {
                entries.push(Entry {
                    name,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
        Ok(entries)
    }

    /// Runs filesystem work on the blocking pool, off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(LocalStore) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(this))
            .await
            .map_err(io::Error::other)?
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }

    async fn put(&self, name: &str, bytes: Bytes, _content_type: &str) -> io::Result<()> {
        let name = name.to_string();
        self.blocking(move |s| s.put_blocking(&name, &bytes)).await
    }

    async fn get(&self, name: &str) -> io::Result<Bytes> {
        let path = self.path_of(name)?;
        // One blocking read of the whole file, not a stream of small chunks
        // each handed to the blocking pool.
        self.blocking(move |_| fs::read(path).map(Bytes::from))
            .await
    }

    async fn head(&self, name: &str) -> io::Result<Option<u64>> {
        let path = self.path_of(name)?;
        self.blocking(move |_| match fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn delete(&self, name: &str) -> io::Result<()> {
        let name = name.to_string();
        self.blocking(move |s| s.delete_blocking(&name)).await
    }

    async fn list(&self) -> io::Result<Vec<Entry>> {
        self.blocking(|s| s.list_blocking()).await
    }

    async fn check_writable(&self) -> io::Result<()> {
        self.blocking(|s| {
            let name = probe_name();
            s.put_blocking(&name, b"kitteh readiness probe")?;
            let back = fs::read(s.path_of(&name)?);
            s.delete_blocking(&name)?;
            if back? != b"kitteh readiness probe" {
                return Err(io::Error::other("the probe file read back differently"));
            }
            Ok(())
        })
        .await
    }
}

/// Makes a new directory entry durable (a power cut must not lose a file
/// whose row was committed).
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_replaces_atomically_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store
            .put("a.png", Bytes::from_static(b"first"), "image/png")
            .await
            .unwrap();
        store
            .put("a.png", Bytes::from_static(b"second"), "image/png")
            .await
            .unwrap();
        assert_eq!(store.get("a.png").await.unwrap().as_ref(), b"second");
        assert_eq!(store.head("a.png").await.unwrap(), Some(6));
        assert_eq!(store.head("b.png").await.unwrap(), None);
        let names: Vec<_> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec!["a.png".to_string()]);
        store.check_writable().await.unwrap();
        assert_eq!(store.list().await.unwrap().len(), 1, "the probe is removed");
    }

    #[tokio::test]
    async fn missing_objects_are_not_found_and_deleting_them_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let err = store.get("gone.png").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        store.delete("gone.png").await.unwrap();
    }

    #[tokio::test]
    async fn temp_leftovers_are_listed_and_removable_but_other_dot_names_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        fs::write(dir.path().join(".tmp-00ff"), b"t").unwrap();
        assert!(
            store
                .list()
                .await
                .unwrap()
                .iter()
                .any(|e| e.name == ".tmp-00ff")
        );
        store.delete(".tmp-00ff").await.unwrap();
        assert!(!dir.path().join(".tmp-00ff").exists());
        assert!(store.delete(".hidden").await.is_err());
        assert!(store.get("../etc/passwd").await.is_err());
    }
}
