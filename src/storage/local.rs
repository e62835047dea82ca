//! The local-folder backend. Files appear atomically (temp file, fsync,
//! rename into place, directory fsync) so a reader never sees half a file
//! and a committed row never points at a file a power cut lost.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::{
    ByteStream, CHUNK, Entry, EntryStream, Store, check_name, parse_trashed, probe_name,
    trashed_name,
};

/// Prefix of files being written; never served, swept like orphans.
const TEMP_PREFIX: &str = ".tmp-";

/// The trash: a folder inside the uploads folder, so that moving a file
/// there is a rename on the same file system.
const TRASH: &str = ".trash";

/// Entries read at a time when the folder is listed.
const LIST_BATCH: usize = 1000;

/// Which installation the folder belongs to.
const MARKER: &str = ".kitteh-installation";

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

    /// Reads the folder on a thread of its own, a thousand entries at a
    /// time, into `tx`: the receiver holds a batch or two, whatever the
    /// folder holds.
    fn list_into(&self, tx: tokio::sync::mpsc::Sender<io::Result<Vec<Entry>>>) {
        let send = |batch: io::Result<Vec<Entry>>| tx.blocking_send(batch).is_ok();
        let entries = match fs::read_dir(self.root.as_path()) {
            Ok(entries) => entries,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        let mut batch = Vec::with_capacity(LIST_BATCH);
        for entry in entries {
            let listed = entry.and_then(|entry| {
                let meta = entry.metadata()?;
                Ok((entry.file_name().into_string().ok(), meta))
            });
            match listed {
                Ok((Some(name), meta)) if meta.is_file() && name != MARKER => batch.push(Entry {
                    name,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                }),
                Ok(_) => {}
                Err(e) => {
                    send(Err(e));
                    return;
                }
            }
            if batch.len() == LIST_BATCH && !send(Ok(std::mem::take(&mut batch))) {
                return;
            }
        }
        if !batch.is_empty() {
            send(Ok(batch));
        }
    }

    fn trash_dir(&self) -> PathBuf {
        self.root.join(TRASH)
    }

    fn trash_blocking(&self, name: &str) -> io::Result<()> {
        let from = self.path_of(name)?;
        let dir = self.trash_dir();
        fs::create_dir_all(&dir)?;
        fs::rename(
            &from,
            dir.join(trashed_name(name, std::time::SystemTime::now())),
        )?;
        sync_dir(&self.root)?;
        sync_dir(&dir)
    }

    fn trash_entries(&self) -> io::Result<Vec<(String, Entry)>> {
        let entries = match fs::read_dir(self.trash_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            let meta = entry.metadata()?;
            if let (true, Some((name, at))) = (meta.is_file(), parse_trashed(&file)) {
                out.push((
                    file,
                    Entry {
                        name,
                        size: meta.len(),
                        modified: Some(at),
                    },
                ));
            }
        }
        Ok(out)
    }

    fn restore_blocking(&self, name: &str) -> io::Result<()> {
        let target = self.path_of(name)?;
        let newest = self
            .trash_entries()?
            .into_iter()
            .filter(|(_, e)| e.name == name)
            .max_by_key(|(_, e)| e.modified);
        let Some((file, _)) = newest else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} is not in the trash"),
            ));
        };
        fs::rename(self.trash_dir().join(file), target)?;
        sync_dir(&self.root)
    }

    fn empty_trash_blocking(&self, cutoff: std::time::SystemTime) -> io::Result<usize> {
        let mut removed = 0;
        for (file, entry) in self.trash_entries()? {
            if entry.modified.is_some_and(|at| at < cutoff) {
                fs::remove_file(self.trash_dir().join(file))?;
                removed += 1;
            }
        }
        Ok(removed)
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

    async fn get_stream(&self, name: &str, range: Option<(u64, u64)>) -> io::Result<ByteStream> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path_of(name)?;
        let mut file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        let (first, last) = range.unwrap_or((0, len.saturating_sub(1)));
        file.seek(io::SeekFrom::Start(first)).await?;
        let left = (last + 1)
            .saturating_sub(first)
            .min(len.saturating_sub(first));
        let chunks = futures_util::stream::try_unfold(
            (file.take(left), left),
            |(mut file, left)| async move {
                if left == 0 {
                    return Ok(None);
                }
                let mut chunk = bytes::BytesMut::with_capacity(CHUNK.min(left as usize));
                let n = file.read_buf(&mut chunk).await?;
                if n == 0 {
                    // The file shrank under us: what was promised cannot be sent.
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ended early",
                    ));
                }
                Ok(Some((chunk.freeze(), (file, left - n as u64))))
            },
        );
        Ok(Box::pin(chunks))
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

    fn list_stream(&self) -> EntryStream {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.list_into(tx));
        Box::pin(
            futures_util::stream::unfold(rx, |mut rx| async move {
                let batch = rx.recv().await?;
                Some((batch, rx))
            })
            .flat_map(|batch| match batch {
                Ok(entries) => {
                    futures_util::stream::iter(entries.into_iter().map(Ok).collect::<Vec<_>>())
                }
                Err(e) => futures_util::stream::iter(vec![Err(e)]),
            }),
        )
    }

    async fn trash(&self, name: &str) -> io::Result<()> {
        let name = name.to_string();
        self.blocking(move |s| s.trash_blocking(&name)).await
    }

    async fn list_trash(&self) -> io::Result<Vec<Entry>> {
        self.blocking(|s| Ok(s.trash_entries()?.into_iter().map(|(_, e)| e).collect()))
            .await
    }

    async fn restore(&self, name: &str) -> io::Result<()> {
        let name = name.to_string();
        self.blocking(move |s| s.restore_blocking(&name)).await
    }

    async fn empty_trash(&self, cutoff: std::time::SystemTime) -> io::Result<usize> {
        self.blocking(move |s| s.empty_trash_blocking(cutoff)).await
    }

    async fn read_marker(&self) -> io::Result<Option<String>> {
        self.blocking(|s| match fs::read_to_string(s.root.join(MARKER)) {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn write_marker(&self, id: &str) -> io::Result<()> {
        let id = id.to_string();
        self.blocking(move |s| {
            let staged = s.stage(id.as_bytes())?;
            fs::rename(&staged.path, s.root.join(MARKER))?;
            sync_dir(&s.root)
        })
        .await
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
    async fn trashed_files_leave_the_listing_come_back_on_restore_and_go_for_good_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store
            .put("a.png", Bytes::from_static(b"a"), "image/png")
            .await
            .unwrap();
        store.trash("a.png").await.unwrap();
        assert!(store.list().await.unwrap().is_empty());
        let trashed = store.list_trash().await.unwrap();
        assert_eq!(trashed.len(), 1);
        assert_eq!(trashed[0].name, "a.png");
        store.restore("a.png").await.unwrap();
        assert_eq!(store.get("a.png").await.unwrap().as_ref(), b"a");
        assert!(store.list_trash().await.unwrap().is_empty());

        store.trash("a.png").await.unwrap();
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        assert_eq!(store.empty_trash(past).await.unwrap(), 0, "too young");
        let future = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(store.empty_trash(future).await.unwrap(), 1);
        assert!(store.list_trash().await.unwrap().is_empty());
        assert!(store.restore("a.png").await.is_err());
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
