//! `tsdb check [--data-dir DIR] [--shards N] [--json]`: a preflight of this host for
//! tsdb. Each finding is one line, `ok|warn|fail <name>: <detail> (<advice>)`.
//!
//! 0 = no failure (warnings allowed), 1 = a failure, 2 = usage error (clap's).
//! What each check looks at and why is in `tuning/README.md`.

use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
use serde_json::json;

use crate::config::tools::CheckArgs;

/// What `tsdb start` needs besides client connections; kept equal to
/// `run::NON_CONNECTION_FDS` and the default `--max-connections`.
const FDS_RECOMMENDED: u64 = 10_000 + 1024;
/// Below either, `free_space` warns: a flush or compaction writes whole blocks and
/// needs room for the new block before its parents go.
const FREE_BYTES_WARN: u64 = 1 << 30;
const FREE_PERCENT_WARN: u64 = 5;
/// O_DIRECT needs buffers, offsets and lengths aligned to the logical block size;
/// 4096 covers every device in common use.
const DIRECT_IO_ALIGN: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Debug)]
struct Finding {
    status: Status,
    name: &'static str,
    detail: String,
    advice: Option<String>,
}

fn ok(name: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        status: Status::Ok,
        name,
        detail: detail.into(),
        advice: None,
    }
}

fn warn(name: &'static str, detail: impl Into<String>, advice: impl Into<String>) -> Finding {
    Finding {
        status: Status::Warn,
        name,
        detail: detail.into(),
        advice: Some(advice.into()),
    }
}

fn fail(name: &'static str, detail: impl Into<String>, advice: impl Into<String>) -> Finding {
    Finding {
        status: Status::Fail,
        name,
        detail: detail.into(),
        advice: Some(advice.into()),
    }
}

/// Runs every check and prints the report.
pub fn check(args: &CheckArgs) -> ExitCode {
    let kernel = kernel_version();
    let mut findings = vec![
        kernel_finding(kernel),
        io_uring_finding(),
        memlock_finding(kernel),
        nofile_finding(),
        cpus_finding(args.shards),
    ];
    let (dir_finding, dir) = data_dir_finding(&args.data_dir);
    findings.push(dir_finding);
    if let Some(dir) = dir {
        findings.push(filesystem_finding(&dir));
        findings.extend(space_findings(&dir));
        findings.push(direct_io_finding(&dir));
        findings.push(scheduler_finding(&dir));
    }
    findings.push(thp_finding());

    let failures = findings.iter().filter(|f| f.status == Status::Fail).count();
    let warnings = findings.iter().filter(|f| f.status == Status::Warn).count();
    let text = if args.json {
        let checks: Vec<_> = findings
            .iter()
            .map(|f| {
                json!({
                    "status": f.status.as_str(),
                    "name": f.name,
                    "detail": f.detail,
                    "advice": f.advice,
                })
            })
            .collect();
        let doc = json!({"checks": checks, "failures": failures, "warnings": warnings});
        format!("{doc}\n")
    } else {
        let mut out = String::new();
        for f in &findings {
            let _ = write!(out, "{} {}: {}", f.status.as_str(), f.name, f.detail);
            if let Some(a) = &f.advice {
                let _ = write!(out, " ({a})");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "{failures} failure(s), {warnings} warning(s)");
        out
    };
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        eprintln!("tsdb check: write report: {e}");
        return ExitCode::from(crate::EXIT_ERROR);
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_BAD)
    }
}

/// (major, minor) of the running kernel, from `/proc/sys/kernel/osrelease`.
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn kernel_finding(kernel: Option<(u32, u32)>) -> Finding {
    match kernel {
        Some(v) if v >= (5, 10) => ok("kernel", format!("Linux {}.{}", v.0, v.1)),
        Some(v) => warn(
            "kernel",
            format!("Linux {}.{}", v.0, v.1),
            "io_uring needs Linux 5.10 or newer; this kernel runs tsdb on the epoll fallback",
        ),
        None => warn(
            "kernel",
            "version unknown (/proc/sys/kernel/osrelease unreadable)",
            "is /proc mounted?",
        ),
    }
}

fn io_uring_finding() -> Finding {
    let sysctl = crate::host::io_uring_disabled()
        .map_or_else(String::new, |v| format!(", kernel.io_uring_disabled = {v}"));
    match crate::host::probe_io_uring() {
        Ok(()) => ok(
            "io_uring",
            format!(
                "a ring of {} entries was set up{sysctl}",
                crate::host::RING_ENTRIES
            ),
        ),
        Err(u) => warn(
            "io_uring",
            format!(
                "unavailable: {}; tsdb start --io-driver=auto falls back to epoll, --io-driver=io-uring refuses to start",
                u.reason
            ),
            u.advice,
        ),
    }
}

fn limit_text(v: u64) -> String {
    if v == RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        v.to_string()
    }
}

fn memlock_finding(kernel: Option<(u32, u32)>) -> Finding {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_MEMLOCK) {
        Ok(l) => l,
        Err(e) => return warn("memlock", format!("cannot read RLIMIT_MEMLOCK: {e}"), "-"),
    };
    let detail = format!(
        "RLIMIT_MEMLOCK soft {} hard {} bytes",
        limit_text(soft),
        limit_text(hard)
    );
    if kernel.is_some_and(|v| v >= (5, 12)) || soft == RLIM_INFINITY {
        ok(
            "memlock",
            format!("{detail} (io_uring rings are not charged to it since Linux 5.12)"),
        )
    } else {
        warn(
            "memlock",
            detail,
            "before Linux 5.12 io_uring rings are charged to RLIMIT_MEMLOCK: set LimitMEMLOCK=infinity or ulimit -l unlimited",
        )
    }
}

fn nofile_finding() -> Finding {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => return warn("nofile", format!("cannot read RLIMIT_NOFILE: {e}"), "-"),
    };
    let detail = format!(
        "RLIMIT_NOFILE soft {} hard {}",
        limit_text(soft),
        limit_text(hard)
    );
    if hard < FDS_RECOMMENDED {
        warn(
            "nofile",
            format!(
                "{detail}; the default --max-connections (10000) and storage need {FDS_RECOMMENDED}"
            ),
            "tsdb start raises the soft limit to the hard one; raise the hard limit: LimitNOFILE=1048576 or ulimit -n 1048576",
        )
    } else {
        ok(
            "nofile",
            format!("{detail} (tsdb start raises the soft limit to the hard one)"),
        )
    }
}

fn cpus_finding(shards: Option<usize>) -> Finding {
    let cpus = match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .count(),
        Err(e) => return warn("cpus", format!("sched_getaffinity: {e}"), "-"),
    };
    match shards {
        Some(0) => fail("cpus", "--shards 0", "--shards must be 1 to 1024"),
        Some(n) if n > cpus => warn(
            "cpus",
            format!("--shards {n} but this process may run on {cpus} CPU(s)"),
            format!(
                "shard threads will share cores and pinning wraps around: use --shards {cpus} or give tsdb more CPUs (taskset, CPUAffinity=, cgroup cpuset)"
            ),
        ),
        Some(n) => ok(
            "cpus",
            format!("--shards {n}, this process may run on {cpus} CPU(s)"),
        ),
        None => ok(
            "cpus",
            format!("this process may run on {cpus} CPU(s); --shards defaults to {cpus}"),
        ),
    }
}

/// The data dir's finding and the directory the file-system checks look at: the data
/// dir, or its nearest existing parent when it does not exist yet.
fn data_dir_finding(dir: &Path) -> (Finding, Option<PathBuf>) {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => (ok("data_dir", dir.display().to_string()), Some(dir.into())),
        Ok(_) => (
            fail(
                "data_dir",
                format!("{} exists and is not a directory", dir.display()),
                "give --data-dir a directory",
            ),
            None,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir
                .ancestors()
                .skip(1)
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    }
                })
                .find(|p| p.is_dir())
                .map(Path::to_path_buf);
            let detail = match &parent {
                Some(p) => format!(
                    "{} does not exist; checking its nearest existing parent {}",
                    dir.display(),
                    p.display()
                ),
                None => format!("{} does not exist", dir.display()),
            };
            (warn("data_dir", detail, "tsdb start creates it"), parent)
        }
        Err(e) => (
            fail(
                "data_dir",
                format!("{}: {e}", dir.display()),
                "check the path and its permissions",
            ),
            None,
        ),
    }
}

fn filesystem_finding(dir: &Path) -> Finding {
    use nix::sys::statfs;
    let fs = match statfs::statfs(dir) {
        Ok(s) => s.filesystem_type(),
        Err(e) => return fail("filesystem", format!("statfs {}: {e}", dir.display()), "-"),
    };
    let known = [
        (statfs::EXT4_SUPER_MAGIC, "ext4"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlay"),
        (statfs::NFS_SUPER_MAGIC, "nfs"),
    ];
    let name = known.iter().find(|(m, _)| *m == fs).map(|(_, n)| *n);
    match name {
        Some(n @ ("ext4" | "xfs")) => ok("filesystem", n),
        Some("btrfs") => ok(
            "filesystem",
            "btrfs (copy-on-write: WAL appends and fsyncs cost more than on ext4 or XFS)",
        ),
        Some("tmpfs") => warn(
            "filesystem",
            "tmpfs: memory only, everything is lost on reboot",
            "put the data dir on ext4 or XFS",
        ),
        Some("overlay") => warn(
            "filesystem",
            "overlay (a container's writable layer): slow, and gone with the container",
            "mount a volume at the data dir",
        ),
        Some(n) => warn(
            "filesystem",
            format!("{n}: a network file system"),
            "put the data dir on a local ext4 or XFS file system",
        ),
        None => warn(
            "filesystem",
            format!("unrecognized (statfs magic {:#x})", fs.0),
            "tsdb is tested on ext4 and XFS",
        ),
    }
}

fn space_findings(dir: &Path) -> Vec<Finding> {
    let s = match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => s,
        Err(e) => {
            return vec![fail(
                "free_space",
                format!("statvfs {}: {e}", dir.display()),
                "-",
            )];
        }
    };
    let frsize = s.fragment_size();
    let total = s.blocks().saturating_mul(frsize);
    let avail = s.blocks_available().saturating_mul(frsize);
    let detail = format!("{avail} of {total} bytes available");
    let space = if avail == 0 {
        fail(
            "free_space",
            detail,
            "free space: tsdb goes read-only on a full disk",
        )
    } else if avail < FREE_BYTES_WARN || avail.saturating_mul(100) < total * FREE_PERCENT_WARN {
        warn(
            "free_space",
            detail,
            format!(
                "below 1 GiB or {FREE_PERCENT_WARN}%: flushes and compactions need room for whole new blocks"
            ),
        )
    } else {
        ok("free_space", detail)
    };
    let files = s.files();
    let inodes = if files == 0 {
        ok("inodes", "not limited by this file system")
    } else {
        let free = s.files_available();
        let detail = format!("{free} of {files} inodes available");
        if free == 0 {
            fail("inodes", detail, "free inodes: no new file can be created")
        } else if free.saturating_mul(100) < files * FREE_PERCENT_WARN {
            warn(
                "inodes",
                detail,
                format!("below {FREE_PERCENT_WARN}%: every block and WAL segment is a file"),
            )
        } else {
            ok("inodes", detail)
        }
    };
    vec![space, inodes]
}

/// Creates a file with O_DIRECT in `dir`, writes one aligned block, removes it. tsdb
/// itself does not use O_DIRECT today; the check also proves the directory writable.
fn direct_io_finding(dir: &Path) -> Finding {
    let path = dir.join(format!(".tsdb-check-{}", std::process::id()));
    let result = direct_write(&path);
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(()) => ok("o_direct", "an aligned O_DIRECT write succeeded"),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Unsupported (tmpfs): is the directory writable at all?
            let plain = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path);
            let _ = std::fs::remove_file(&path);
            match plain {
                Ok(_) => warn(
                    "o_direct",
                    "this file system refuses O_DIRECT",
                    "tsdb does not use O_DIRECT today; ext4 and XFS support it",
                ),
                Err(e) => fail(
                    "o_direct",
                    format!("cannot create a file in {}: {e}", dir.display()),
                    "tsdb needs to write there: check owner and permissions",
                ),
            }
        }
        Err(e) => fail(
            "o_direct",
            format!("cannot write a file in {}: {e}", dir.display()),
            "tsdb needs to write there: check owner, permissions and read-only mounts",
        ),
    }
}

fn direct_write(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    let buf = vec![0xA5u8; 2 * DIRECT_IO_ALIGN];
    let start = buf.as_ptr().align_offset(DIRECT_IO_ALIGN);
    let aligned = buf
        .get(start..start + DIRECT_IO_ALIGN)
        .ok_or_else(|| std::io::Error::other("no aligned buffer"))?;
    file.write_all_at(aligned, 0)?;
    file.sync_data()
}

/// The I/O scheduler of the block device holding `dir`, when sysfs names one.
fn scheduler_finding(dir: &Path) -> Finding {
    let Ok(meta) = std::fs::metadata(dir) else {
        return ok("scheduler", "no block device found");
    };
    let dev = meta.dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let Ok(device) = std::fs::canonicalize(&sys) else {
        return ok(
            "scheduler",
            format!("device {major}:{minor} is no block device (tmpfs, overlay, network)"),
        );
    };
    // A partition's queue is its disk's, one directory up.
    let Some(queue) = [device.join("queue"), device.join("../queue")]
        .into_iter()
        .find(|q| q.join("scheduler").is_file())
    else {
        return ok(
            "scheduler",
            format!("{} has no I/O scheduler", device.display()),
        );
    };
    let disk = queue
        .parent()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let raw = std::fs::read_to_string(queue.join("scheduler")).unwrap_or_default();
    let active = bracketed(&raw).unwrap_or(raw.trim()).to_owned();
    let depth = std::fs::read_to_string(queue.join("nr_requests"))
        .map(|s| format!(", nr_requests {}", s.trim()))
        .unwrap_or_default();
    let detail = format!("{disk}: {active}{depth}");
    if disk.starts_with("nvme") && active != "none" {
        warn(
            "scheduler",
            detail,
            format!("NVMe needs no I/O scheduler: echo none > /sys/block/{disk}/queue/scheduler"),
        )
    } else {
        ok("scheduler", detail)
    }
}

/// The `[selected]` word of a sysfs choice list such as `always [madvise] never`.
fn bracketed(s: &str) -> Option<&str> {
    let start = s.find('[')? + 1;
    let len = s.get(start..)?.find(']')?;
    s.get(start..start + len)
}

fn thp_finding() -> Finding {
    let Ok(raw) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") else {
        return ok("thp", "transparent huge pages are not available");
    };
    match bracketed(&raw) {
        Some("always") => warn(
            "thp",
            "transparent_hugepage/enabled = always",
            "khugepaged and page faults compacting memory add latency spikes: echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
        ),
        Some(v) => ok("thp", format!("transparent_hugepage/enabled = {v}")),
        None => ok(
            "thp",
            format!("transparent_hugepage/enabled = {}", raw.trim()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_picks_the_selected_word() {
        assert_eq!(bracketed("always [madvise] never\n"), Some("madvise"));
        assert_eq!(bracketed("[none] mq-deadline kyber"), Some("none"));
        assert_eq!(bracketed("none"), None);
    }
}
