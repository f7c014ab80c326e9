//! What guards the HTTP server, shared by every core: the TLS configuration and the
//! credentials of the auth file (both replaced on SIGHUP), and the per-client rate
//! limiter.
//!
//! A reload swaps in a new value and bumps a generation counter; each core keeps its
//! own copy of the current value ([`Cached`]) and looks at the shared one only when the
//! generation moved, so the request path touches one shared atomic (read-only) and no
//! lock. A reload that fails keeps the old value.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::ServerConfig;

use crate::auth::Auth;
use crate::ratelimit::RateLimiter;

/// A value replaced as a whole by reloads.
#[derive(Debug)]
pub struct Reloadable<T> {
    generation: AtomicU64,
    current: Mutex<Arc<T>>,
}

impl<T> Reloadable<T> {
    pub fn new(value: Arc<T>) -> Self {
        Reloadable {
            generation: AtomicU64::new(0),
            current: Mutex::new(value),
        }
    }

    pub fn load(&self) -> Arc<T> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn store(&self, value: Arc<T>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = value;
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// One core's copy of a [`Reloadable`].
#[derive(Debug)]
pub struct Cached<T> {
    generation: Cell<u64>,
    value: RefCell<Arc<T>>,
}

impl<T> Cached<T> {
    pub fn new(shared: &Reloadable<T>) -> Self {
        Cached {
            generation: Cell::new(shared.generation.load(Ordering::Acquire)),
            value: RefCell::new(shared.load()),
        }
    }

    /// The current value, refreshed from `shared` if a reload happened since.
    pub fn get(&self, shared: &Reloadable<T>) -> Arc<T> {
        self.with(shared, Arc::clone)
    }

    /// `f` of the current value, without touching its reference count (which every
    /// core would otherwise write on every request).
    pub fn with<R>(&self, shared: &Reloadable<T>, f: impl FnOnce(&Arc<T>) -> R) -> R {
        let generation = shared.generation.load(Ordering::Acquire);
        if generation != self.generation.get() {
            *self.value.borrow_mut() = shared.load();
            self.generation.set(generation);
        }
        f(&self.value.borrow())
    }
}

/// The server's guards, shared by every core. The binary builds it from the files
/// (net opens no file) and, on SIGHUP, stores what it re-read into the reloadables.
#[derive(Debug, Default)]
pub struct Security {
    /// `None`: plain HTTP.
    pub tls: Option<Reloadable<ServerConfig>>,
    /// `None`: no authentication, every route open.
    pub auth: Option<Reloadable<Auth>>,
    /// `None`: no per-client rate limit.
    pub rate_limit: Option<RateLimiter>,
}

/// One core's view of [`Security`]: its cached copies of the reloadable parts.
#[derive(Debug)]
pub struct CoreSecurity {
    pub shared: Arc<Security>,
    tls: Option<Cached<ServerConfig>>,
    auth: Option<Cached<Auth>>,
}

impl CoreSecurity {
    pub fn new(shared: Arc<Security>) -> Self {
        CoreSecurity {
            tls: shared.tls.as_ref().map(Cached::new),
            auth: shared.auth.as_ref().map(Cached::new),
            shared,
        }
    }

    /// The TLS configuration for a new connection; `None` for plain HTTP.
    pub fn tls(&self) -> Option<Arc<ServerConfig>> {
        Some(self.tls.as_ref()?.get(self.shared.tls.as_ref()?))
    }

    /// `f` of the credentials, for a request; `None` when auth is off.
    pub fn with_auth<R>(&self, f: impl FnOnce(&Auth) -> R) -> Option<R> {
        Some(
            self.auth
                .as_ref()?
                .with(self.shared.auth.as_ref()?, |a| f(a)),
        )
    }
}
