//! The real storage and clock: [`DiskStorage`] writes WAL segments through monoio's
//! io_uring files (epoll fallback: synchronous calls) and does everything else with
//! `std::fs` in the shard's thread; [`SystemClock`] reads the system's clocks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Clock, DirEntry, Metadata, ReadAt, Storage, WalFile};

/// The local file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskStorage;

impl Storage for DiskStorage {
    type WalFile = monoio::fs::File;

    async fn create_wal_file(&self, path: &Path) -> io::Result<monoio::fs::File> {
        monoio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        Ok(Box::new(File::open(path)?))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            out.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                // Follows a symlink, so a block linked into place is still read.
                is_dir: entry.path().is_dir(),
            });
        }
        Ok(out)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let m = fs::symlink_metadata(path)?;
        Ok(Metadata {
            len: m.len(),
            is_dir: m.is_dir(),
        })
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        if path.is_dir() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut p = path;
        while fs::symlink_metadata(p).is_err() {
            missing.push(p);
            match p.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                _ => break,
            }
        }
        for dir in missing.into_iter().rev() {
            match fs::create_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            let parent = match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            self.sync_dir(parent)?;
        }
        if path.is_dir() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", path.display()),
            ))
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn write_file_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    fn available_bytes(&self, path: &Path) -> io::Result<u64> {
        let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
        Ok(st.blocks_available().saturating_mul(st.fragment_size()))
    }
}

impl WalFile for monoio::fs::File {
    async fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> io::Result<()> {
        let (res, _buf) = monoio::fs::File::write_all_at(self, buf, offset).await;
        res
    }

    async fn sync_data(&self) -> io::Result<()> {
        monoio::fs::File::sync_data(self).await
    }

    async fn close(self) -> io::Result<()> {
        monoio::fs::File::close(self).await
    }
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }

    fn file_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// The system's wall clock and monotonic clock, and random ULIDs.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }

    fn ulid(&self) -> ulid::Ulid {
        ulid::Ulid::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_storage_does_what_the_trait_says() {
        let d = tempfile::tempdir().unwrap();
        let s = DiskStorage;
        let deep = d.path().join("a/b/c");
        s.create_dir_all(&deep).unwrap();
        s.create_dir_all(&deep).unwrap();
        assert!(s.metadata(&deep).unwrap().is_dir);
        let f = deep.join("f");
        s.write_file_synced(&f, b"hello").unwrap();
        s.write_file_synced(&f, b"hi").unwrap();
        assert_eq!(s.read(&f).unwrap(), b"hi");
        s.truncate(&f, 1).unwrap();
        let r = s.open_read(&f).unwrap();
        assert_eq!(r.file_len().unwrap(), 1);
        let mut one = [0u8; 1];
        r.read_exact_at(&mut one, 0).unwrap();
        assert_eq!(&one, b"h");
        assert!(r.read_exact_at(&mut [0u8; 2], 0).is_err());
        s.rename(&f, &deep.join("g")).unwrap();
        let names: Vec<_> = s
            .read_dir(&deep)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["g"]);
        s.sync_dir(&deep).unwrap();
        s.remove_file(&deep.join("g")).unwrap();
        s.remove_dir_all(&d.path().join("a")).unwrap();
        assert!(s.metadata(&deep).is_err());

        let seg = d.path().join("seg");
        crate::storage::block_on(async {
            let w = s.create_wal_file(&seg).await.unwrap();
            WalFile::write_all_at(&w, b"abc".to_vec(), 0).await.unwrap();
            WalFile::sync_data(&w).await.unwrap();
            WalFile::close(w).await.unwrap();
            assert!(s.create_wal_file(&seg).await.is_err(), "create_new");
        });
        assert_eq!(s.read(&seg).unwrap(), b"abc");
    }

    #[test]
    fn system_clock_reads_the_time() {
        let c = SystemClock::new();
        assert!(c.now_ms() > 1_600_000_000_000);
        assert!(c.ulid().timestamp_ms() > 1_600_000_000_000);
        let a = c.monotonic();
        assert!(c.monotonic() >= a);
    }
}
