//! IPv4 / IPv6 CIDR parsing and containment for `IpAddress` / `NotIpAddress`.

use super::error::PolicyError;
use std::net::IpAddr;

/// A parsed CIDR block (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    v6: bool,
    net: u128,
    prefix: u32,
}

fn addr_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn mask(prefix: u32, width: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - prefix)) >> (128 - width)
    }
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Cidr, PolicyError> {
        let bad = || PolicyError::InvalidCidr(text.to_owned());
        let trimmed = text.trim();
        let (addr, prefix) = match trimmed.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (trimmed, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        let (v6, bits) = addr_bits(ip);
        let width = if v6 { 128 } else { 32 };
        let prefix = match prefix {
            None => width,
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(bad());
                }
                let n: u32 = p.parse().map_err(|_| bad())?;
                if n > width {
                    return Err(bad());
                }
                n
            }
        };
        Ok(Cidr {
            v6,
            net: bits & mask(prefix, width),
            prefix,
        })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let (v6, bits) = addr_bits(ip);
        if v6 != self.v6 {
            return false;
        }
        let width = if v6 { 128 } else { 32 };
        bits & mask(self.prefix, width) == self.net
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    #[test]
    fn v4_and_v6() {
        let c = Cidr::parse("203.0.113.0/24").expect("cidr");
        assert!(c.contains(ip("203.0.113.7")));
        assert!(!c.contains(ip("203.0.114.7")));
        assert!(!c.contains(ip("::ffff:203.0.113.7")));
        let all = Cidr::parse("0.0.0.0/0").expect("cidr");
        assert!(all.contains(ip("8.8.8.8")));
        let one = Cidr::parse("10.1.2.3").expect("cidr");
        assert!(one.contains(ip("10.1.2.3")) && !one.contains(ip("10.1.2.4")));
        let v6 = Cidr::parse("2001:db8::/32").expect("cidr");
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        assert!(Cidr::parse("::/0").expect("cidr").contains(ip("::1")));
        assert!(Cidr::parse("2001:db8::1/128")
            .expect("cidr")
            .contains(ip("2001:db8::1")));
        let odd = Cidr::parse("10.0.0.0/9").expect("cidr");
        assert!(odd.contains(ip("10.127.255.255")) && !odd.contains(ip("10.128.0.0")));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
