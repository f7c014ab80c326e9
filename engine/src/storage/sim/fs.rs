//! The simulated file system: its nodes with their live and durable images, what a
//! crash does to them, and [`Storage`] on top (see the module above for the model).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path};
use std::rc::Rc;

use super::{CrashModel, DirCrash, FaultOp, Faults, Rng, SimStats};
use crate::storage::{DirEntry, Metadata, ReadAt, Storage, WalFile};

/// An unsynced change to a file, replayed (or not) at a crash.
#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct FileNode {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
    /// The first failed write or sync of a WAL file: any later one is a retry, except
    /// an fdatasync after a write that failed with ENOSPC (the bytes before it are
    /// whole; syncing them is what a resume after a full disk must do first).
    failed: Option<String>,
    /// Whether that first failure was a write refused for want of space.
    failed_no_space: bool,
}

/// An unsynced directory operation.
#[derive(Clone, Debug)]
enum DirOp {
    Link(String, usize),
    Unlink(String),
    Rename(String, String),
}

#[derive(Clone, Debug, Default)]
struct DirNode {
    live: BTreeMap<String, usize>,
    durable: BTreeMap<String, usize>,
    log: Vec<DirOp>,
}

#[derive(Clone, Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
    Free,
}

const ROOT: usize = 0;

#[derive(Debug)]
struct Fs {
    nodes: Vec<Node>,
    /// Bumped by every crash; handles opened before it no longer work.
    epoch: u64,
    rng: Rng,
    faults: Faults,
    crash_model: CrashModel,
    stats: SimStats,
    /// Operations that always fail, see [`SimStorage::fail`].
    fail_rules: Vec<(FaultOp, String)>,
    /// Directories whose unsynced operations every crash drops, whatever the model.
    dir_ops_lost_in: Vec<String>,
    violations: Vec<String>,
    /// Faults injected and what crashes did, for the simulation's trace.
    events: Vec<String>,
}

/// The simulated file system. Cloning shares it (a handle, as `DiskStorage` is).
#[derive(Clone, Debug)]
pub struct SimStorage {
    fs: Rc<RefCell<Fs>>,
}

fn err(kind: io::ErrorKind, what: impl Into<String>) -> io::Error {
    io::Error::new(kind, what.into())
}

/// An error with a real errno, so the engine's `Error::is_no_space` and its messages
/// see what a disk would give them.
fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// The names of an absolute path's components.
fn components(path: &Path) -> io::Result<Vec<&str>> {
    let mut out = Vec::new();
    let mut comps = path.components();
    if comps.next() != Some(Component::RootDir) {
        return Err(err(
            io::ErrorKind::InvalidInput,
            format!("sim: {} is not absolute", path.display()),
        ));
    }
    for c in comps {
        match c {
            Component::Normal(n) => out.push(n.to_str().ok_or_else(|| {
                err(
                    io::ErrorKind::InvalidInput,
                    "sim: non-UTF-8 path".to_string(),
                )
            })?),
            _ => {
                return Err(err(
                    io::ErrorKind::InvalidInput,
                    format!("sim: {} is not a plain path", path.display()),
                ));
            }
        }
    }
    Ok(out)
}

/// Whether `path` contains `pattern`, or ends with it if the pattern ends with `$`.
fn matches(path: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('$') {
        Some(end) => path.ends_with(end),
        None => path.contains(pattern),
    }
}

fn apply_dir_op(map: &mut BTreeMap<String, usize>, op: &DirOp) {
    match op {
        DirOp::Link(name, ino) => {
            map.insert(name.clone(), *ino);
        }
        DirOp::Unlink(name) => {
            map.remove(name);
        }
        DirOp::Rename(from, to) => {
            if let Some(ino) = map.remove(from) {
                map.insert(to.clone(), ino);
            }
        }
    }
}

fn write_at(buf: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    if let Some(dst) = buf.get_mut(start..end) {
        dst.copy_from_slice(bytes);
    }
}

impl Fs {
    fn dir(&self, ino: usize) -> io::Result<&DirNode> {
        match self.nodes.get(ino) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(err(io::ErrorKind::NotADirectory, "sim: not a directory")),
        }
    }

    fn dir_mut(&mut self, ino: usize) -> io::Result<&mut DirNode> {
        match self.nodes.get_mut(ino) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(err(io::ErrorKind::NotADirectory, "sim: not a directory")),
        }
    }

    fn file_mut(&mut self, ino: usize) -> io::Result<&mut FileNode> {
        match self.nodes.get_mut(ino) {
            Some(Node::File(f)) => Ok(f),
            Some(Node::Dir(_)) => Err(err(io::ErrorKind::IsADirectory, "sim: is a directory")),
            _ => Err(err(io::ErrorKind::NotFound, "sim: no such file")),
        }
    }

    fn lookup(&self, path: &Path) -> io::Result<usize> {
        let mut ino = ROOT;
        for name in components(path)? {
            ino = *self.dir(ino)?.live.get(name).ok_or_else(|| {
                err(
                    io::ErrorKind::NotFound,
                    format!("sim: {} not found", path.display()),
                )
            })?;
        }
        Ok(ino)
    }

    /// The directory holding `path` and the last component's name.
    fn parent<'p>(&self, path: &'p Path) -> io::Result<(usize, &'p str)> {
        let comps = components(path)?;
        let Some((name, dirs)) = comps.split_last() else {
            return Err(err(
                io::ErrorKind::InvalidInput,
                "sim: the root has no parent",
            ));
        };
        let mut ino = ROOT;
        for d in dirs {
            ino = *self.dir(ino)?.live.get(*d).ok_or_else(|| {
                err(
                    io::ErrorKind::NotFound,
                    format!("sim: parent of {} not found", path.display()),
                )
            })?;
        }
        self.dir(ino)?;
        Ok((ino, name))
    }

    fn dir_op(&mut self, dir: usize, op: DirOp) -> io::Result<()> {
        let d = self.dir_mut(dir)?;
        apply_dir_op(&mut d.live, &op);
        d.log.push(op);
        Ok(())
    }

    fn new_node(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Injects EIO into an `op` on `path`: always where a rule of
    /// [`SimStorage::fail`] matches, else with the profile's probability.
    fn fault(&mut self, op: FaultOp, path: &str, what: &dyn Fn() -> String) -> io::Result<()> {
        let targeted = self
            .fail_rules
            .iter()
            .any(|(o, pattern)| *o == op && matches(path, pattern));
        let p = match op {
            FaultOp::Write => self.faults.write_eio,
            FaultOp::Sync => self.faults.sync_eio,
            FaultOp::Meta => self.faults.meta_eio,
        };
        if targeted || self.rng.chance(p) {
            *match op {
                FaultOp::Write => &mut self.stats.write_eio,
                FaultOp::Sync => &mut self.stats.sync_eio,
                FaultOp::Meta => &mut self.stats.meta_eio,
            } += 1;
            self.events.push(format!("inject EIO: {}", what()));
            return Err(errno(libc::EIO));
        }
        Ok(())
    }

    fn meta_fault(&mut self, op: &str, path: &Path) -> io::Result<()> {
        let name = path.display().to_string();
        self.fault(FaultOp::Meta, &name, &|| format!("{op} {name}"))
    }

    /// Bytes of the files reachable in the live tree.
    fn used_bytes(&self) -> u64 {
        let mut total = 0u64;
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            match self.nodes.get(ino) {
                Some(Node::Dir(d)) => stack.extend(d.live.values().copied()),
                Some(Node::File(f)) => total += f.live.len() as u64,
                _ => {}
            }
        }
        total
    }

    /// Writes `bytes` at `offset` of file `ino`, with the write faults. On ENOSPC the
    /// part that fits is written and the error returned.
    fn write(&mut self, ino: usize, offset: u64, bytes: &[u8], path: &str) -> io::Result<()> {
        self.stats.writes += 1;
        let what = || format!("write {} bytes at {offset} of {path}", bytes.len());
        self.fault(FaultOp::Write, path, &what)?;
        let mut bytes = bytes;
        let mut full = false;
        if let Some(cap) = self.faults.capacity_bytes {
            let used = self.used_bytes();
            let len = self.file_mut(ino)?.live.len() as u64;
            let growth = (offset + bytes.len() as u64).saturating_sub(len);
            if used + growth > cap {
                self.stats.enospc += 1;
                self.events.push(format!(
                    "ENOSPC: write {} bytes at {offset} of {path}",
                    bytes.len()
                ));
                full = true;
                let room = cap.saturating_sub(used);
                let fits = (len + room).saturating_sub(offset).min(bytes.len() as u64);
                bytes = bytes.get(..fits as usize).unwrap_or_default();
            }
        }
        let f = self.file_mut(ino)?;
        if !bytes.is_empty() {
            write_at(&mut f.live, offset, bytes);
            f.pending.push(Pending::Write {
                offset,
                bytes: bytes.to_vec(),
            });
        }
        if full {
            Err(errno(libc::ENOSPC))
        } else {
            Ok(())
        }
    }

    fn sync_file(&mut self, ino: usize, path: &str) -> io::Result<()> {
        self.stats.syncs += 1;
        self.fault(FaultOp::Sync, path, &|| format!("fsync {path}"))?;
        let f = self.file_mut(ino)?;
        f.durable = f.live.clone();
        f.pending.clear();
        Ok(())
    }

    /// What a crash leaves of a file: its durable bytes, then each unsynced change
    /// whole, lost, torn, zeroed or garbled, as the seed decides.
    fn materialize(&mut self, ino: usize, name: &str) {
        let Some(Node::File(f)) = self.nodes.get_mut(ino) else {
            return;
        };
        let mut out = std::mem::take(&mut f.durable);
        let pending = std::mem::take(&mut f.pending);
        let m = self.crash_model;
        let total = u64::from(m.keep + m.lose + m.tear + m.zero + m.garbage).max(1);
        for p in pending {
            match p {
                Pending::SetLen(len) => {
                    let kept = self.rng.chance(0.5);
                    if kept {
                        out.resize(len as usize, 0);
                    }
                    self.events
                        .push(format!("crash: {name}: set_len {len} kept: {kept}"));
                }
                Pending::Write { offset, bytes } => {
                    let mut r = self.rng.below(total);
                    let mut pick = |w: u32| {
                        let hit = r < u64::from(w);
                        r = r.saturating_sub(u64::from(w));
                        hit
                    };
                    let len = bytes.len();
                    let fate = if pick(m.keep) {
                        self.stats.kept_writes += 1;
                        write_at(&mut out, offset, &bytes);
                        "kept".to_string()
                    } else if pick(m.lose) {
                        self.stats.lost_writes += 1;
                        "lost".to_string()
                    } else if pick(m.tear) {
                        self.stats.torn_writes += 1;
                        let cut = self.rng.below(len as u64) as usize;
                        write_at(&mut out, offset, bytes.get(..cut).unwrap_or_default());
                        format!("torn to {cut} bytes")
                    } else if pick(m.zero) {
                        self.stats.zeroed_writes += 1;
                        write_at(&mut out, offset, &vec![0; len]);
                        "zeroed".to_string()
                    } else {
                        self.stats.garbage_writes += 1;
                        let junk: Vec<u8> = (0..len).map(|_| self.rng.next_u64() as u8).collect();
                        write_at(&mut out, offset, &junk);
                        "garbled".to_string()
                    };
                    self.events.push(format!(
                        "crash: {name}: unsynced write of {len} bytes at {offset} {fate}"
                    ));
                }
            }
        }
        if let Some(Node::File(f)) = self.nodes.get_mut(ino) {
            f.live = out.clone();
            f.durable = out;
            f.failed = None;
        }
    }

    /// The live path of every reachable node, for messages.
    fn names(&self) -> HashMap<usize, String> {
        let mut names = HashMap::new();
        let mut stack = vec![(ROOT, String::new())];
        while let Some((ino, path)) = stack.pop() {
            if let Some(Node::Dir(d)) = self.nodes.get(ino) {
                for (name, c) in &d.live {
                    stack.push((*c, format!("{path}/{name}")));
                }
            }
            names.insert(ino, if path.is_empty() { "/".into() } else { path });
        }
        names
    }

    fn crash(&mut self) {
        self.stats.crashes += 1;
        let names = self.names();
        for ino in 0..self.nodes.len() {
            let name = || {
                names
                    .get(&ino)
                    .cloned()
                    .unwrap_or_else(|| format!("#{ino}"))
            };
            match self.nodes.get(ino) {
                Some(Node::File(f)) if !f.pending.is_empty() => self.materialize(ino, &name()),
                Some(Node::File(_)) => {
                    // Nothing unsynced: live and durable already agree.
                    if let Some(Node::File(f)) = self.nodes.get_mut(ino) {
                        debug_assert!(f.live == f.durable, "BUG: unsynced bytes without a record");
                        f.failed = None;
                    }
                }
                Some(Node::Dir(d)) => {
                    let n = d.log.len() as u64;
                    let lose_all = n > 0 && {
                        let path = name();
                        self.dir_ops_lost_in.iter().any(|p| matches(&path, p))
                    };
                    let keep = match self.crash_model.dir_ops {
                        _ if lose_all => 0,
                        DirCrash::RandomPrefix => self.rng.below(n + 1) as usize,
                        DirCrash::KeepNone => 0,
                        DirCrash::KeepAll => n as usize,
                    };
                    self.stats.dir_ops_lost += n - keep as u64;
                    if n > 0 {
                        let ops: Vec<String> = d.log.iter().map(|op| format!("{op:?}")).collect();
                        self.events.push(format!(
                            "crash: {}: keeps {keep} of its unsynced operations {ops:?}",
                            name()
                        ));
                    }
                    if let Some(Node::Dir(d)) = self.nodes.get_mut(ino) {
                        let log = std::mem::take(&mut d.log);
                        for op in log.iter().take(keep) {
                            apply_dir_op(&mut d.durable, op);
                        }
                        d.live = d.durable.clone();
                    }
                }
                _ => {}
            }
        }
        // Whatever the durable tree no longer reaches is gone.
        let mut reachable = vec![false; self.nodes.len()];
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if let Some(r) = reachable.get_mut(ino) {
                if *r {
                    continue;
                }
                *r = true;
            }
            if let Some(Node::Dir(d)) = self.nodes.get(ino) {
                stack.extend(d.live.values().copied());
            }
        }
        for (node, r) in self.nodes.iter_mut().zip(reachable) {
            if !r {
                *node = Node::Free;
            }
        }
        self.epoch += 1;
    }
}

impl SimStorage {
    /// An empty file system (just `/`) whose faults and crashes follow `seed`.
    pub fn new(seed: u64) -> SimStorage {
        SimStorage {
            fs: Rc::new(RefCell::new(Fs {
                nodes: vec![Node::Dir(DirNode::default())],
                epoch: 0,
                rng: Rng::new(seed),
                faults: Faults::NONE,
                crash_model: CrashModel::default(),
                stats: SimStats::default(),
                fail_rules: Vec::new(),
                dir_ops_lost_in: Vec::new(),
                violations: Vec::new(),
                events: Vec::new(),
            })),
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.fs.borrow_mut().faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.fs.borrow().faults
    }

    /// Makes every `op` on a path containing `pattern` (ending with it, if the pattern
    /// ends with `$`) fail with EIO, until [`SimStorage::clear_failures`]: for tests
    /// that need one fault in one place.
    pub fn fail(&self, op: FaultOp, pattern: &str) {
        self.fs
            .borrow_mut()
            .fail_rules
            .push((op, pattern.to_string()));
    }

    pub fn clear_failures(&self) {
        self.fs.borrow_mut().fail_rules.clear();
    }

    /// Makes crashes drop every unsynced operation of the directories whose path
    /// matches `pattern` (as in [`SimStorage::fail`]), whatever the crash model says.
    pub fn lose_dir_ops_at_crash(&self, pattern: &str) {
        self.fs
            .borrow_mut()
            .dir_ops_lost_in
            .push(pattern.to_string());
    }

    pub fn set_crash_model(&self, model: CrashModel) {
        self.fs.borrow_mut().crash_model = model;
    }

    pub fn stats(&self) -> SimStats {
        self.fs.borrow().stats.clone()
    }

    /// Bytes held by the files of the live tree (what the capacity limits).
    pub fn used_bytes(&self) -> u64 {
        self.fs.borrow().used_bytes()
    }

    /// The faults injected and what crashes did since the last call, one line each.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut self.fs.borrow_mut().events)
    }

    /// Broken rules of the storage's contract (a retried WAL write or sync).
    pub fn violations(&self) -> Vec<String> {
        self.fs.borrow().violations.clone()
    }

    /// The machine loses power: live becomes durable, with unsynced writes and
    /// directory operations decided by the seed. Handles opened before no longer work.
    pub fn crash(&self) {
        self.fs.borrow_mut().crash();
    }

    /// Every file under `dir` with its live length, for diagnostics.
    pub fn listing(&self, dir: &Path) -> Vec<(String, u64)> {
        let fs = self.fs.borrow();
        let mut out = Vec::new();
        let Ok(start) = fs.lookup(dir) else {
            return out;
        };
        let mut stack = vec![(dir.display().to_string(), start)];
        while let Some((path, ino)) = stack.pop() {
            match fs.nodes.get(ino) {
                Some(Node::Dir(d)) => {
                    for (name, c) in d.live.iter().rev() {
                        stack.push((format!("{path}/{name}"), *c));
                    }
                }
                Some(Node::File(f)) => out.push((path, f.live.len() as u64)),
                _ => {}
            }
        }
        out
    }
}

/// A WAL segment of the simulated file system.
#[derive(Debug)]
pub struct SimWalFile {
    fs: Rc<RefCell<Fs>>,
    ino: usize,
    epoch: u64,
    path: String,
}

impl SimWalFile {
    /// Checks the handle is usable and the file has not failed before (a retry).
    fn check(&self, fs: &mut Fs, op: &str) -> io::Result<()> {
        if fs.epoch != self.epoch {
            return Err(errno(libc::EIO));
        }
        let file = fs.file_mut(self.ino)?;
        let sync_after_full_disk = op == "fdatasync" && file.failed_no_space;
        if let Some(first) = file.failed.clone()
            && !sync_after_full_disk
        {
            fs.violations.push(format!(
                "{op} of WAL file {} after its {first} failed: a retry (fsyncgate)",
                self.path
            ));
        }
        Ok(())
    }

    fn note_failure(&self, fs: &mut Fs, op: &str, e: &io::Error) {
        fs.stats.wal_faults += 1;
        if let Ok(f) = fs.file_mut(self.ino)
            && f.failed.is_none()
        {
            f.failed = Some(op.to_string());
            f.failed_no_space = op == "write" && e.raw_os_error() == Some(libc::ENOSPC);
        }
    }
}

impl WalFile for SimWalFile {
    async fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        self.check(&mut fs, "write")?;
        let res = fs.write(self.ino, offset, &buf, &self.path);
        if let Err(e) = &res {
            self.note_failure(&mut fs, "write", e);
        }
        res
    }

    async fn sync_data(&self) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        self.check(&mut fs, "fdatasync")?;
        let res = fs.sync_file(self.ino, &self.path);
        if let Err(e) = &res {
            self.note_failure(&mut fs, "fdatasync", e);
        }
        res
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

/// A file of the simulated file system open for positioned reads.
pub struct SimReadAt {
    fs: Rc<RefCell<Fs>>,
    ino: usize,
    epoch: u64,
}

impl std::fmt::Debug for SimReadAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimReadAt").field("ino", &self.ino).finish()
    }
}

impl ReadAt for SimReadAt {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        if fs.epoch != self.epoch {
            return Err(errno(libc::EIO));
        }
        let f = fs.file_mut(self.ino)?;
        let start = offset as usize;
        let src = f
            .live
            .get(start..start + buf.len())
            .ok_or_else(|| err(io::ErrorKind::UnexpectedEof, "sim: read past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn file_len(&self) -> io::Result<u64> {
        let mut fs = self.fs.borrow_mut();
        Ok(fs.file_mut(self.ino)?.live.len() as u64)
    }
}

impl Storage for SimStorage {
    type WalFile = SimWalFile;

    async fn create_wal_file(&self, path: &Path) -> io::Result<SimWalFile> {
        let mut fs = self.fs.borrow_mut();
        fs.meta_fault("create", path)?;
        let (dir, name) = fs.parent(path)?;
        if fs.dir(dir)?.live.contains_key(name) {
            return Err(err(io::ErrorKind::AlreadyExists, "sim: file exists"));
        }
        let ino = fs.new_node(Node::File(FileNode::default()));
        fs.dir_op(dir, DirOp::Link(name.to_string(), ino))?;
        Ok(SimWalFile {
            fs: self.fs.clone(),
            ino,
            epoch: fs.epoch,
            path: path.display().to_string(),
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.lookup(path)?;
        Ok(fs.file_mut(ino)?.live.clone())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.lookup(path)?;
        fs.file_mut(ino)?;
        Ok(Box::new(SimReadAt {
            fs: self.fs.clone(),
            ino,
            epoch: fs.epoch,
        }))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let fs = self.fs.borrow();
        let ino = fs.lookup(path)?;
        Ok(fs
            .dir(ino)?
            .live
            .iter()
            .map(|(name, c)| DirEntry {
                name: name.clone(),
                is_dir: matches!(fs.nodes.get(*c), Some(Node::Dir(_))),
            })
            .collect())
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let fs = self.fs.borrow();
        match fs.nodes.get(fs.lookup(path)?) {
            Some(Node::File(f)) => Ok(Metadata {
                len: f.live.len() as u64,
                is_dir: false,
            }),
            Some(Node::Dir(_)) => Ok(Metadata {
                len: 0,
                is_dir: true,
            }),
            _ => Err(err(io::ErrorKind::NotFound, "sim: freed node")),
        }
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.meta_fault("mkdir", path)?;
        let (dir, name) = fs.parent(path)?;
        if fs.dir(dir)?.live.contains_key(name) {
            return Err(err(io::ErrorKind::AlreadyExists, "sim: exists"));
        }
        let ino = fs.new_node(Node::Dir(DirNode::default()));
        fs.dir_op(dir, DirOp::Link(name.to_string(), ino))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        if matches!(fs.lookup(path).map(|i| fs.dir(i).is_ok()), Ok(true)) {
            return Ok(());
        }
        fs.meta_fault("mkdir -p", path)?;
        let mut ino = ROOT;
        for name in components(path)? {
            let next = fs.dir(ino)?.live.get(name).copied();
            ino = match next {
                Some(c) => c,
                None => {
                    let c = fs.new_node(Node::Dir(DirNode::default()));
                    fs.dir_op(ino, DirOp::Link(name.to_string(), c))?;
                    // The new directory's parent is synced, as `Storage` promises.
                    fs.stats.dir_syncs += 1;
                    let d = fs.dir_mut(ino)?;
                    d.durable = d.live.clone();
                    d.log.clear();
                    c
                }
            };
        }
        fs.dir(ino).map(|_| ())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.lookup(path)?;
        fs.file_mut(ino)?;
        fs.meta_fault("unlink", path)?;
        let (dir, name) = fs.parent(path)?;
        fs.dir_op(dir, DirOp::Unlink(name.to_string()))
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let top = fs.lookup(path)?;
        fs.dir(top)?;
        fs.meta_fault("rm -r", path)?;
        // Children first, each unlink logged in its own directory, as `rm -r` does.
        let mut stack = vec![top];
        while let Some(ino) = stack.pop() {
            let children: Vec<(String, usize)> = fs
                .dir(ino)?
                .live
                .iter()
                .map(|(n, c)| (n.clone(), *c))
                .collect();
            for (name, c) in children {
                if fs.dir(c).is_ok() {
                    stack.push(c);
                }
                fs.dir_op(ino, DirOp::Unlink(name))?;
            }
        }
        let (dir, name) = fs.parent(path)?;
        fs.dir_op(dir, DirOp::Unlink(name.to_string()))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.lookup(from)?;
        let (dir, from_name) = fs.parent(from)?;
        let (to_dir, to_name) = fs.parent(to)?;
        if dir != to_dir {
            return Err(err(
                io::ErrorKind::CrossesDevices,
                "sim: renames stay within one directory",
            ));
        }
        let is_dir = fs.dir(ino).is_ok();
        if let Some(&old) = fs.dir(dir)?.live.get(to_name) {
            match (is_dir, fs.dir(old).map(|d| d.live.is_empty())) {
                (false, Err(_)) | (true, Ok(true)) => {}
                (false, Ok(_)) => {
                    return Err(err(
                        io::ErrorKind::IsADirectory,
                        "sim: target is a directory",
                    ));
                }
                (true, Ok(false)) => {
                    return Err(err(
                        io::ErrorKind::DirectoryNotEmpty,
                        "sim: target not empty",
                    ));
                }
                (true, Err(_)) => {
                    return Err(err(io::ErrorKind::NotADirectory, "sim: target is a file"));
                }
            }
        }
        fs.meta_fault("rename", from)?;
        fs.dir_op(
            dir,
            DirOp::Rename(from_name.to_string(), to_name.to_string()),
        )
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.lookup(from)?;
        fs.file_mut(ino)?;
        let (dir, name) = fs.parent(to)?;
        if fs.dir(dir)?.live.contains_key(name) {
            return Err(err(io::ErrorKind::AlreadyExists, "sim: link target exists"));
        }
        fs.meta_fault("link", to)?;
        fs.dir_op(dir, DirOp::Link(name.to_string(), ino))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.lookup(path)?;
        fs.file_mut(ino)?;
        fs.meta_fault("truncate", path)?;
        let f = fs.file_mut(ino)?;
        f.live.resize(len as usize, 0);
        f.pending.push(Pending::SetLen(len));
        fs.sync_file(ino, &path.display().to_string())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let ino = fs.lookup(path)?;
        fs.dir(ino)?;
        fs.stats.dir_syncs += 1;
        fs.meta_fault("fsync dir", path)?;
        let d = fs.dir_mut(ino)?;
        d.durable = d.live.clone();
        d.log.clear();
        Ok(())
    }

    fn available_bytes(&self, _path: &Path) -> io::Result<u64> {
        let fs = self.fs.borrow();
        Ok(fs
            .faults
            .capacity_bytes
            .map_or(u64::MAX, |cap| cap.saturating_sub(fs.used_bytes())))
    }

    fn write_file_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.meta_fault("create", path)?;
        let (dir, name) = fs.parent(path)?;
        let ino = match fs.dir(dir)?.live.get(name).copied() {
            Some(ino) => {
                let f = fs.file_mut(ino)?;
                f.live.clear();
                f.pending.push(Pending::SetLen(0));
                ino
            }
            None => {
                let ino = fs.new_node(Node::File(FileNode::default()));
                fs.dir_op(dir, DirOp::Link(name.to_string(), ino))?;
                ino
            }
        };
        let what = path.display().to_string();
        fs.write(ino, 0, bytes, &what)?;
        fs.sync_file(ino, &what)
    }
}
