//! Parsers for /proc/net/{tcp,tcp6,udp,udp6} and /proc/net/dev.
//!
//! Lines that do not parse are skipped (and counted by the caller's log): one odd line must not
//! cost the whole report.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP states as the kernel prints them (include/net/tcp_states.h).
pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_CLOSE: u8 = 0x07;
pub const TCP_LISTEN: u8 = 0x0A;

/// One socket line of `/proc/net/{tcp,udp}[6]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    pub state: u8,
}

/// Parses a socket table; returns the sockets and the number of lines that did not parse.
pub fn parse_sockets(text: &str) -> (Vec<Socket>, usize) {
    let mut sockets = Vec::new();
    let mut bad = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        match parse_socket_line(line) {
            Some(s) => sockets.push(s),
            None => bad += 1,
        }
    }
    (sockets, bad)
}

fn parse_socket_line(line: &str) -> Option<Socket> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let (local, local_port) = parse_endpoint(fields.next()?)?;
    let (remote, remote_port) = parse_endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    Some(Socket {
        local,
        local_port,
        remote,
        remote_port,
        state,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6). The kernel prints each 32-bit word of
/// the address in host byte order, so the bytes come back with `to_ne_bytes`.
fn parse_endpoint(field: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            // A v4 peer on a dual-stack socket: report it as the v4 address it is.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Byte and packet counters of one interface, from /proc/net/dev.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub bytes_in: u64,
    pub packets_in: u64,
    pub bytes_out: u64,
    pub packets_out: u64,
}

/// Parses /proc/net/dev into counters per interface.
pub fn parse_dev(text: &str) -> (BTreeMap<String, Counters>, usize) {
    let mut out = BTreeMap::new();
    let mut bad = 0;
    for line in text.lines().skip(2).filter(|l| !l.trim().is_empty()) {
        let parsed = line.split_once(':').and_then(|(name, rest)| {
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            (v.len() >= 10).then(|| {
                (
                    name.trim().to_owned(),
                    Counters {
                        bytes_in: v[0],
                        packets_in: v[1],
                        bytes_out: v[8],
                        packets_out: v[9],
                    },
                )
            })
        });
        match parsed {
            Some((name, c)) => {
                out.insert(name, c);
            }
            None => bad += 1,
        }
    }
    (out, bad)
}

/// Traffic between two samples, summed over interfaces. A counter that went down (interface
/// re-created, counter reset) counts from zero; an interface that appeared counts in full.
pub fn delta(
    previous: &BTreeMap<String, Counters>,
    current: &BTreeMap<String, Counters>,
) -> Counters {
    let step = |cur: u64, prev: Option<u64>| match prev {
        Some(p) if cur >= p => cur - p,
        _ => cur,
    };
    let mut total = Counters::default();
    for (name, cur) in current {
        let prev = previous.get(name);
        total.bytes_in += step(cur.bytes_in, prev.map(|p| p.bytes_in));
        total.packets_in += step(cur.packets_in, prev.map(|p| p.packets_in));
        total.bytes_out += step(cur.bytes_out, prev.map(|p| p.bytes_out));
        total.packets_out += step(cur.packets_out, prev.map(|p| p.packets_out));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("0100007F:1F90"),
            Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 8080))
        );
        assert_eq!(
            parse_endpoint("00000000000000000000000001000000:0016"),
            Some((IpAddr::V6(Ipv6Addr::LOCALHOST), 22))
        );
        assert_eq!(
            parse_endpoint("0000000000000000FFFF00000100007F:01BB"),
            Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 443))
        );
        assert_eq!(parse_endpoint("0100007F"), None);
        assert_eq!(parse_endpoint("01007F:0016"), None);
    }

    #[test]
    fn delta_survives_resets_and_new_interfaces() {
        let c = |b: u64| Counters {
            bytes_in: b,
            packets_in: b,
            bytes_out: b,
            packets_out: b,
        };
        let prev = BTreeMap::from([("eth0".to_owned(), c(100)), ("wlan0".to_owned(), c(50))]);
        let cur = BTreeMap::from([
            ("eth0".to_owned(), c(150)),
            ("wlan0".to_owned(), c(10)),
            ("wwan0".to_owned(), c(5)),
        ]);
        assert_eq!(delta(&prev, &cur), c(50 + 10 + 5));
    }
}
