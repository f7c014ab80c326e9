//! Facts about the host that `tsdb start` and `tsdb check` both need: whether
//! io_uring can be used here and, when it cannot, why and what to do about it.

use std::io;

/// The submission queue size of every shard's ring; the probe builds the same ring so
/// that a limit on ring memory is found before the shards start, not by one of them.
pub const RING_ENTRIES: u32 = 1024;

/// Why io_uring cannot be used on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What failed, e.g. `io_uring_setup: Operation not permitted (os error 1)`.
    pub reason: String,
    /// What an operator can do about it.
    pub advice: String,
}

/// Sets up a ring the way a shard does (and drops it) and checks that the kernel
/// supports every operation monoio uses.
pub fn probe_io_uring() -> Result<(), Unavailable> {
    let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .with_entries(RING_ENTRIES)
        .build();
    match built {
        Ok(runtime) => drop(runtime),
        Err(e) => return Err(explain(&e)),
    }
    // Also false when MONOIO_FORCE_LEGACY_DRIVER is set, which the explanation names.
    if !monoio::utils::detect_uring() {
        let forced = std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER").is_some();
        return Err(Unavailable {
            reason: if forced {
                "MONOIO_FORCE_LEGACY_DRIVER is set".to_owned()
            } else {
                "the kernel lacks io_uring operations tsdb uses".to_owned()
            },
            advice: if forced {
                "unset MONOIO_FORCE_LEGACY_DRIVER".to_owned()
            } else {
                "run Linux 5.10 or newer".to_owned()
            },
        });
    }
    Ok(())
}

/// Turns the error of `io_uring_setup` into a reason and a remedy.
fn explain(e: &io::Error) -> Unavailable {
    let disabled = io_uring_disabled();
    let reason = match disabled {
        Some(v) if v != 0 => format!("io_uring_setup: {e} (kernel.io_uring_disabled = {v})"),
        _ => format!("io_uring_setup: {e}"),
    };
    let advice = match (e.raw_os_error(), disabled) {
        (Some(libc::EPERM), Some(1)) => {
            "kernel.io_uring_disabled=1 allows io_uring only to the group in kernel.io_uring_group: add tsdb's user to it, or set the sysctl to 0".to_owned()
        }
        (Some(libc::EPERM), Some(2)) => {
            "set the sysctl kernel.io_uring_disabled=0 (sysctl -w kernel.io_uring_disabled=0)".to_owned()
        }
        (Some(libc::EPERM), _) => {
            "a seccomp profile blocks io_uring (Docker's default does): allow io_uring_setup, io_uring_enter and io_uring_register, or run the container with a profile that does".to_owned()
        }
        (Some(libc::ENOSYS), _) => {
            "the kernel has no io_uring (Linux 5.10 or newer, built with CONFIG_IO_URING)".to_owned()
        }
        (Some(libc::ENOMEM), _) => {
            "the ring's memory could not be locked: raise RLIMIT_MEMLOCK (LimitMEMLOCK=infinity, ulimit -l unlimited), needed before Linux 5.12".to_owned()
        }
        _ => "see tuning/README.md".to_owned(),
    };
    Unavailable { reason, advice }
}

/// `kernel.io_uring_disabled` (Linux 6.6 and newer): 0 allowed, 1 only for
/// `kernel.io_uring_group`, 2 disabled. `None` where the kernel has no such sysctl.
pub fn io_uring_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}
