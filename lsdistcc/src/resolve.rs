//! IPv4-only name resolution, as distcc 3.4's `gethostbyname` call gives it: the first
//! IPv4 address of a name, or "not found". IPv6-only names and `[::1]` are not found.
//!
//! `getaddrinfo` with `AF_INET` is used instead of `gethostbyname`, which is not
//! thread-safe; both accept dotted quads (and inet_aton's short forms such as `127.1`),
//! consult `/etc/hosts` and then DNS, and report only IPv4.

use std::ffi::{CStr, CString};
use std::net::Ipv4Addr;

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name holds a NUL byte and cannot be passed to the resolver.
    #[error("name contains a NUL byte")]
    Nul,
    /// The resolver's answer, in its own words (`gai_strerror`).
    #[error("{0}")]
    Resolver(String),
    /// The resolver answered, but with no IPv4 address.
    #[error("no IPv4 address")]
    NoIpv4,
}

/// The first IPv4 address of `name`.
pub fn resolve_ipv4(name: &[u8]) -> Result<Ipv4Addr, ResolveError> {
    lookup(name, 0)
}

/// The address of `name` if it is a numeric IPv4 address in any form `inet_aton` accepts
/// (`127.0.0.1`, `127.1`, `150`); `None` for anything that needs the resolver. Such a
/// lookup never blocks, so the scan answers it at once instead of handing it to a
/// resolver thread; the answer is the one [`resolve_ipv4`] would give.
pub fn numeric_ipv4(name: &[u8]) -> Option<Ipv4Addr> {
    lookup(name, libc::AI_NUMERICHOST).ok()
}

fn lookup(name: &[u8], flags: libc::c_int) -> Result<Ipv4Addr, ResolveError> {
    let c_name = CString::new(name).map_err(|_| ResolveError::Nul)?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value; fields are set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = flags;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated name, valid hints; `res` receives a list freed below.
    let rc = unsafe { libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static NUL-terminated string for any code.
        let msg = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
        return Err(ResolveError::Resolver(msg.to_string_lossy().into_owned()));
    }
    let mut found = None;
    let mut p = res;
    while !p.is_null() {
        // SAFETY: p walks the list getaddrinfo returned; an AF_INET entry's ai_addr points
        // at a sockaddr_in.
        unsafe {
            let ai = &*p;
            if ai.ai_family == libc::AF_INET && !ai.ai_addr.is_null() {
                let sin = &*(ai.ai_addr as *const libc::sockaddr_in);
                found = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                break;
            }
            p = ai.ai_next;
        }
    }
    // SAFETY: res is the list getaddrinfo returned, freed once.
    unsafe { libc::freeaddrinfo(res) };
    found.ok_or(ResolveError::NoIpv4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_hosts_file_names_resolve() {
        assert_eq!(resolve_ipv4(b"127.0.0.2"), Ok(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(resolve_ipv4(b"127.1"), Ok(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(resolve_ipv4(b"localhost"), Ok(Ipv4Addr::new(127, 0, 0, 1)));
    }

    #[test]
    fn numeric_forms_need_no_resolver() {
        assert_eq!(
            numeric_ipv4(b"127.0.0.9"),
            Some(Ipv4Addr::new(127, 0, 0, 9))
        );
        assert_eq!(numeric_ipv4(b"127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(numeric_ipv4(b"150"), Some(Ipv4Addr::new(0, 0, 0, 150)));
        assert_eq!(numeric_ipv4(b"localhost"), None);
        assert_eq!(numeric_ipv4(b"127.0.0.256"), None);
        assert_eq!(numeric_ipv4(b"::1"), None);
    }

    #[test]
    fn bad_names_do_not() {
        assert!(resolve_ipv4(b"::1").is_err());
        assert!(resolve_ipv4(b"127.0.0.1:3632").is_err());
        assert_eq!(resolve_ipv4(b"a\0b"), Err(ResolveError::Nul));
    }
}
