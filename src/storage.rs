//! Where image bytes live: a local folder. Files appear atomically (temp
//! file, fsync, link into place) so a reader never sees half a file, and a
//! name already taken is never overwritten.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Prefix of files being written; never served, swept at startup.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

/// Bytes written and synced to a temp file, not yet visible under a name.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Whatever happened, the temp name must not outlive the upload.
        let _ = fs::remove_file(&self.path);
    }
}

impl Storage {
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a stored file. Names come from tokens and detected
    /// formats only, never from a client, but are checked all the same.
    pub fn path_of(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing storage name {name:?}"),
            ));
        }
        Ok(self.root.join(name))
    }

    /// Writes `bytes` to a fresh temp file in the storage folder and syncs it.
    pub fn stage(&self, bytes: &[u8]) -> io::Result<Staged> {
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

    /// Gives the staged bytes their final name. Returns false, changing
    /// nothing, when that name is already taken: a hard link never replaces
    /// an existing file, unlike rename.
    pub fn publish(&self, staged: &Staged, name: &str) -> io::Result<bool> {
        let target = self.path_of(name)?;
        match fs::hard_link(&staged.path, &target) {
            Ok(()) => {
                sync_dir(&self.root)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the staged bytes a name, replacing any file of that name
    /// atomically: for derived files (variants) that a rebuild rewrites.
    pub fn replace(&self, staged: Staged, name: &str) -> io::Result<()> {
        let target = self.path_of(name)?;
        fs::rename(&staged.path, &target)?;
        sync_dir(&self.root)
    }

    /// Proves the folder accepts writes: creates, syncs and removes a file.
    pub fn check_writable(&self) -> io::Result<()> {
        drop(self.stage(b"kitteh readiness probe")?);
        Ok(())
    }

    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path_of(name)?)
    }

    /// Removes a stored file; one already gone is not an error.
    pub fn delete(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path_of(name)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes leftovers older than `min_age`: temp files from interrupted
    /// writes, and files no row refers to (a crash between deleting a row
    /// and its file). Young files are spared: an upload links its file just
    /// before inserting its row. Returns how many files were removed.
    pub fn sweep(&self, min_age: Duration, is_known: impl Fn(&str) -> bool) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age < min_age {
                continue;
            }
            if name.starts_with(TEMP_PREFIX) || !is_known(&name) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
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

    #[test]
    fn publish_never_overwrites_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let first = storage.stage(b"first").unwrap();
        assert!(storage.publish(&first, "a.png").unwrap());
        let second = storage.stage(b"second").unwrap();
        assert!(!storage.publish(&second, "a.png").unwrap());
        assert_eq!(storage.read("a.png").unwrap(), b"first");
    }

    #[test]
    fn staged_temp_files_disappear_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let staged = storage.stage(b"x").unwrap();
        assert!(storage.publish(&staged, "b.gif").unwrap());
        drop(staged);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["b.gif".to_string()]);
    }

    #[test]
    fn names_that_could_escape_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        for bad in ["../x", "a/b", ".hidden", "", "x\0y"] {
            assert!(storage.path_of(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sweep_removes_old_orphans_and_temp_files_but_keeps_known_files() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        fs::write(dir.path().join("known.png"), b"k").unwrap();
        fs::write(dir.path().join("orphan.png"), b"o").unwrap();
        fs::write(dir.path().join(".tmp-123"), b"t").unwrap();
        let removed = storage.sweep(Duration::ZERO, |n| n == "known.png").unwrap();
        assert_eq!(removed, 2);
        assert!(dir.path().join("known.png").exists());
        assert!(!dir.path().join("orphan.png").exists());
    }
}
