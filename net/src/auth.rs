//! Authentication and roles (`--auth-file`): who a request comes from, from its
//! `Authorization` header, and whether that role may use the route.
//!
//! The auth file is YAML with two lists, `tokens` (sent as `Authorization: Bearer
//! <token>`) and `users` (sent as `Authorization: Basic <base64 user:password>`), each
//! entry a `name`, a `role` (`read`, `write` or `admin`) and a `hash` of the secret.
//! Secrets are never stored: a hash is `sha256:<64 hex digits>` of the token or
//! password, as `printf %s "$TOKEN" | sha256sum` prints it. The presented secret is
//! hashed and compared with every entry's hash in constant time.
//!
//! Roles: `read` may use every route but the write and admin ones, `write` only the
//! write routes, `admin` everything. `/-/healthy` and `/-/ready` need no credentials.

use serde::Deserialize;
use subtle::ConstantTimeEq as _;

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries, metadata, export, remote read, status, metrics.
    Read,
    /// The write routes.
    Write,
    /// Everything, including `/api/v1/admin/*` and `/debug/pprof/*`.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may use a route that needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

/// The role a path needs; `None` for the probes, which are always open.
pub fn required_role(path: &str, is_write_route: bool) -> Option<Role> {
    if path == "/-/healthy" || path == "/-/ready" {
        None
    } else if is_admin_path(path) {
        Some(Role::Admin)
    } else if is_write_route {
        Some(Role::Write)
    } else {
        Some(Role::Read)
    }
}

/// Whether a path is an admin action (audited, admin role only).
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with("/api/v1/admin/")
        || path == "/api/v1/admin"
        || path.starts_with("/debug/pprof/")
        || path == "/debug/pprof"
}

/// Who a request comes from, attached to the request (as an extension) once
/// authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's or user's name from the auth file.
    pub name: String,
    pub role: Role,
    /// How it authenticated: `bearer` or `basic`.
    pub scheme: &'static str,
}

/// Why a request was refused, by the name `tsdb_auth_failures_total{reason}` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header (401).
    Missing,
    /// A header that is malformed, of another scheme, or whose secret matches no entry
    /// (401).
    Invalid,
    /// Valid credentials whose role may not use the route (403).
    Forbidden,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 3] = [
        AuthFailure::Missing,
        AuthFailure::Invalid,
        AuthFailure::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
            AuthFailure::Forbidden => "forbidden",
        }
    }
}

/// The auth file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    tokens: Vec<Entry>,
    #[serde(default)]
    users: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    role: Role,
    hash: String,
}

/// One token or user, its secret's hash decoded.
#[derive(Debug)]
struct Credential {
    name: String,
    role: Role,
    sha256: [u8; 32],
}

impl Credential {
    /// Who a request that presented this credential by `scheme` comes from.
    fn identity(&self, scheme: &'static str) -> Identity {
        Identity {
            name: self.name.clone(),
            role: self.role,
            scheme,
        }
    }
}

/// The loaded auth file.
#[derive(Debug)]
pub struct Auth {
    tokens: Vec<Credential>,
    users: Vec<Credential>,
}

impl Auth {
    /// Decodes the text of an auth file (read by the binary: net opens no file); the
    /// error names the entry at fault, in one line.
    pub fn parse(text: &str) -> Result<Auth, String> {
        let file: AuthFile = serde_saphyr::from_str(text).map_err(|e| {
            let formatter = serde_saphyr::UserMessageFormatter;
            let mut options = serde_saphyr::RenderOptions::new(&formatter);
            options.snippets = serde_saphyr::SnippetMode::Off;
            e.render_with_options(options).replace('\n', " ")
        })?;
        let tokens = credentials("tokens", file.tokens)?;
        let users = credentials("users", file.users)?;
        if let Some(u) = users.iter().find(|u| u.name.contains(':')) {
            return Err(format!(
                "users: name {:?} contains ':', which basic auth cannot carry",
                u.name
            ));
        }
        if tokens.is_empty() && users.is_empty() {
            return Err("no tokens and no users: every request would be refused".to_owned());
        }
        Ok(Auth { tokens, users })
    }

    /// Entries in the file, for the log line of a (re)load.
    pub fn counts(&self) -> (usize, usize) {
        (self.tokens.len(), self.users.len())
    }

    /// Who the `Authorization` header value `header` (if any) authenticates.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<Identity, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthFailure::Invalid)?;
        let (scheme, value) = header.trim().split_once(' ').ok_or(AuthFailure::Invalid)?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let hash = sha256(value.as_bytes());
            let found = find(&self.tokens, &hash, |_| true);
            return found
                .map(|c| c.identity("bearer"))
                .ok_or(AuthFailure::Invalid);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| AuthFailure::Invalid)?;
            let decoded = String::from_utf8(decoded).map_err(|_| AuthFailure::Invalid)?;
            let (user, password) = decoded.split_once(':').ok_or(AuthFailure::Invalid)?;
            let hash = sha256(password.as_bytes());
            let found = find(&self.users, &hash, |c| c.name == user);
            return found
                .map(|c| c.identity("basic"))
                .ok_or(AuthFailure::Invalid);
        }
        Err(AuthFailure::Invalid)
    }
}

/// The entry among `creds` that `select` picks and whose hash is `hash`. Every entry's
/// hash is compared, in constant time, so the time taken says nothing about which
/// entries came close.
fn find<'a>(
    creds: &'a [Credential],
    hash: &[u8; 32],
    select: impl Fn(&Credential) -> bool,
) -> Option<&'a Credential> {
    let mut found = None;
    for c in creds {
        let equal = bool::from(c.sha256[..].ct_eq(&hash[..]));
        if equal && select(c) {
            found = Some(c);
        }
    }
    found
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn credentials(list: &str, entries: Vec<Entry>) -> Result<Vec<Credential>, String> {
    let mut out: Vec<Credential> = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        if e.name.is_empty() {
            return Err(format!("{list}[{i}]: empty name"));
        }
        if out.iter().any(|c| c.name == e.name) {
            return Err(format!("{list}[{i}]: name {:?} is listed twice", e.name));
        }
        let sha256 = parse_hash(&e.hash)
            .map_err(|reason| format!("{list}[{i}] ({}): hash: {reason}", e.name))?;
        out.push(Credential {
            name: e.name,
            role: e.role,
            sha256,
        });
    }
    Ok(out)
}

/// `sha256:<64 hex digits>`, as `sha256sum` prints it (either case).
fn parse_hash(s: &str) -> Result<[u8; 32], String> {
    let usage = "expected sha256:<64 hex digits>, e.g. from `printf %s \"$SECRET\" | sha256sum`";
    let hex = s.strip_prefix("sha256:").ok_or(usage)?;
    if hex.len() != 64 {
        return Err(usage.to_owned());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).ok_or(usage)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| usage.to_owned())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn file() -> Auth {
        Auth::parse(&format!(
            "tokens:\n  - name: grafana\n    role: read\n    hash: sha256:{}\n\
             users:\n  - name: alice\n    role: admin\n    hash: sha256:{}\n",
            hex(&sha256(b"tok-read")),
            hex(&sha256(b"s3cret")).to_uppercase(),
        ))
        .unwrap()
    }

    #[test]
    fn sha256_matches_sha256sum() {
        // printf %s abc | sha256sum
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bearer_and_basic_authenticate() {
        let auth = file();
        let id = auth.authenticate(Some(b"Bearer tok-read")).unwrap();
        assert_eq!((id.name.as_str(), id.role), ("grafana", Role::Read));
        // base64("alice:s3cret")
        let id = auth.authenticate(Some(b"Basic YWxpY2U6czNjcmV0")).unwrap();
        assert_eq!((id.name.as_str(), id.role), ("alice", Role::Admin));
        assert_eq!(auth.authenticate(None), Err(AuthFailure::Missing));
        for bad in [
            &b"Bearer nope"[..],
            b"Bearer",
            b"Basic !!!",
            b"Basic YWxpY2U6d3Jvbmc=", // alice:wrong
            b"Digest x",
            b"\xff\xfe",
        ] {
            assert_eq!(auth.authenticate(Some(bad)), Err(AuthFailure::Invalid));
        }
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let h = format!("sha256:{}", hex(&sha256(b"x")));
        let cases = [
            ("tokens: []\n", "no tokens and no users"),
            ("tokenz: []\n", "tokenz"),
            ("tokens:\n  - {name: a, role: root, hash: x}\n", "root"),
            (
                "tokens:\n  - {name: a, role: read, hash: md5:00}\n",
                "tokens[0] (a): hash: expected sha256:",
            ),
            (
                &format!(
                    "tokens:\n  - {{name: a, role: read, hash: {h}}}\n  - {{name: a, role: write, hash: {h}}}\n"
                ),
                "tokens[1]: name \"a\" is listed twice",
            ),
            (
                &format!("users:\n  - {{name: 'a:b', role: read, hash: {h}}}\n"),
                "contains ':'",
            ),
            (
                &format!("users:\n  - {{name: a, role: read, hash: {h}, extra: 1}}\n"),
                "extra",
            ),
        ];
        for (text, want) in cases {
            let err = Auth::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn roles_and_routes() {
        assert_eq!(required_role("/-/healthy", false), None);
        assert_eq!(required_role("/-/ready", false), None);
        assert_eq!(
            required_role("/api/v1/admin/flush", false),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/debug/pprof/profile", false),
            Some(Role::Admin)
        );
        assert_eq!(required_role("/api/v1/write", true), Some(Role::Write));
        assert_eq!(required_role("/api/v1/query", false), Some(Role::Read));
        assert!(Role::Admin.allows(Role::Write) && Role::Admin.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write) && !Role::Write.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Admin) && !Role::Write.allows(Role::Admin));
    }
}
