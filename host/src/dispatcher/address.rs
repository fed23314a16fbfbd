//! The SSRF guard: webhooks go only to public internet addresses.
//!
//! The check runs at delivery time on the addresses the request connects to.
//! Host names are resolved by [`GuardedResolver`], which hands the HTTP client
//! only checked addresses, so a DNS answer cannot change between the check and
//! the connection. IP literals in the URL never reach a resolver, so
//! [`check_endpoint_url`] checks them before sending.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The reason an address is not a public internet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Loopback,
    /// 10/8, 172.16/12, 192.168/16.
    Private,
    /// 100.64/10, carrier-grade NAT.
    SharedAddressSpace,
    /// 169.254/16 and fe80::/10.
    LinkLocal,
    /// fc00::/7.
    UniqueLocal,
    /// Cloud instance metadata services (169.254.169.254, fd00:ec2::254).
    Metadata,
    Unspecified,
    Multicast,
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18/15 and 2001:2::/48.
    Benchmarking,
    /// Teredo (2001::/32) hides the client's IPv4 address, so it is not checked.
    Teredo,
    /// Any other special-purpose or unallocated range.
    Reserved,
}

impl AddressKind {
    /// Whether `ALLOW_PRIVATE_ENDPOINTS=true` permits this kind. Metadata
    /// services, broadcast and the like stay refused even then.
    pub fn allowed_for_development(self) -> bool {
        matches!(
            self,
            Self::Loopback | Self::Private | Self::SharedAddressSpace | Self::LinkLocal | Self::UniqueLocal
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "a unique local (private) address",
            Self::Metadata => "a cloud metadata address",
            Self::Unspecified => "the unspecified address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Teredo => "a Teredo tunnel address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// Classifies `ip`: `None` for a public internet address.
pub fn classify(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => AddressKind::Metadata,
        _ if ip.is_broadcast() => AddressKind::Broadcast,
        (0, _, _) if ip.is_unspecified() => AddressKind::Unspecified,
        (0, _, _) => AddressKind::Reserved,
        (127, _, _) => AddressKind::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => AddressKind::Private,
        (100, 64..=127, _) => AddressKind::SharedAddressSpace,
        (169, 254, _) => AddressKind::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressKind::Documentation,
        (198, 18..=19, _) => AddressKind::Benchmarking,
        // IETF protocol assignments and the retired 6to4 relay anycast range.
        (192, 0, 0) | (192, 88, 99) => AddressKind::Reserved,
        (224..=239, _, _) => AddressKind::Multicast,
        (240..=255, _, _) => AddressKind::Reserved,
        _ => return None,
    };
    Some(kind)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    let segments = ip.segments();

    if ip.is_unspecified() {
        return Some(AddressKind::Unspecified);
    }
    if ip.is_loopback() {
        return Some(AddressKind::Loopback);
    }
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses
    // reach the embedded IPv4 address, and so do NAT64 (64:ff9b::/96) ones.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if segments[..6] == [0; 6] || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(segments[6], segments[7]));
    }
    // 6to4 (2002::/16) carries the IPv4 address in bits 16 to 47.
    if segments[0] == 0x2002 {
        return classify_v4(embedded_v4(segments[1], segments[2]));
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some(AddressKind::Metadata);
    }

    let kind = match segments[0] {
        0xfe80..=0xfebf => AddressKind::LinkLocal,
        0xfc00..=0xfdff => AddressKind::UniqueLocal,
        0xff00..=0xffff => AddressKind::Multicast,
        0x2001 if segments[1] == 0 => AddressKind::Teredo,
        0x2001 if segments[1] == 0x0db8 => AddressKind::Documentation,
        0x2001 if segments[1] == 0x0002 && segments[2] == 0 => AddressKind::Benchmarking,
        // The rest of 2001::/23 is IETF protocol assignments (ORCHID and others).
        0x2001 if segments[1] < 0x0200 => AddressKind::Reserved,
        0x3fff if segments[1] < 0x1000 => AddressKind::Documentation,
        // Global unicast is 2000::/3; everything outside it is special or unallocated.
        0x2000..=0x3fff => return None,
        _ => AddressKind::Reserved,
    };
    Some(kind)
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// An endpoint the dispatcher will not send to. Its message becomes the
/// delivery's `last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRejected {
    message: String,
}

impl EndpointRejected {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    fn for_address(ip: IpAddr, kind: AddressKind) -> Self {
        let described = kind.describe();
        if kind.allowed_for_development() {
            Self::new(format!(
                "endpoint resolves to {described} {ip}; set ALLOW_PRIVATE_ENDPOINTS=true for development"
            ))
        } else {
            Self::new(format!("endpoint resolves to {described} {ip}, which is never allowed"))
        }
    }
}

impl fmt::Display for EndpointRejected {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for EndpointRejected {}

/// Checks one address against the guard.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), EndpointRejected> {
    match classify(ip) {
        None => Ok(()),
        Some(kind) if allow_private && kind.allowed_for_development() => Ok(()),
        Some(kind) => Err(EndpointRejected::for_address(ip, kind)),
    }
}

/// Parses an endpoint URL, requires http or https, and checks the host when
/// it is an IP literal. Host names are checked later by [`GuardedResolver`].
pub fn check_endpoint_url(text: &str, allow_private: bool) -> Result<Url, EndpointRejected> {
    let url = Url::parse(text).map_err(|error| EndpointRejected::new(format!("invalid endpoint URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EndpointRejected::new(format!(
            "endpoint URL must use http or https, got {}",
            url.scheme()
        )));
    }
    match url.host() {
        None => return Err(EndpointRejected::new("endpoint URL has no host")),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_private)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_private)?,
        Some(url::Host::Domain(_)) => {}
    }
    Ok(url)
}

/// A DNS resolver for the HTTP client that fails the lookup when any
/// resolved address is refused by the guard.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| EndpointRejected::new(format!("DNS lookup of {host} failed: {error}")))?
                .collect();
            if addresses.is_empty() {
                return Err(EndpointRejected::new(format!("DNS lookup of {host} returned no addresses")).into());
            }
            for address in &addresses {
                check_address(address.ip(), allow_private)?;
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<AddressKind> {
        classify(text.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for text in ["8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
            "192.169.0.1", "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "2002:0808:0808::1",
            "64:ff9b::808:808"]
        {
            assert_eq!(kind(text), None, "{text}");
        }
    }

    #[test]
    fn ipv4_special_ranges_are_classified() {
        let cases = [
            ("127.0.0.1", AddressKind::Loopback),
            ("127.255.255.254", AddressKind::Loopback),
            ("10.0.0.5", AddressKind::Private),
            ("172.16.0.1", AddressKind::Private),
            ("172.31.255.255", AddressKind::Private),
            ("192.168.1.1", AddressKind::Private),
            ("100.64.0.1", AddressKind::SharedAddressSpace),
            ("100.127.255.255", AddressKind::SharedAddressSpace),
            ("169.254.1.1", AddressKind::LinkLocal),
            ("169.254.169.254", AddressKind::Metadata),
            ("0.0.0.0", AddressKind::Unspecified),
            ("0.1.2.3", AddressKind::Reserved),
            ("224.0.0.1", AddressKind::Multicast),
            ("239.255.255.250", AddressKind::Multicast),
            ("255.255.255.255", AddressKind::Broadcast),
            ("240.0.0.1", AddressKind::Reserved),
            ("192.0.2.10", AddressKind::Documentation),
            ("198.51.100.10", AddressKind::Documentation),
            ("203.0.113.10", AddressKind::Documentation),
            ("198.18.0.1", AddressKind::Benchmarking),
            ("198.19.255.255", AddressKind::Benchmarking),
            ("192.0.0.8", AddressKind::Reserved),
            ("192.88.99.1", AddressKind::Reserved),
        ];
        for (text, expected) in cases {
            assert_eq!(kind(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn ipv6_special_ranges_are_classified() {
        let cases = [
            ("::", AddressKind::Unspecified),
            ("::1", AddressKind::Loopback),
            ("fe80::1", AddressKind::LinkLocal),
            ("febf::1", AddressKind::LinkLocal),
            ("fc00::1", AddressKind::UniqueLocal),
            ("fd12:3456::1", AddressKind::UniqueLocal),
            ("fd00:ec2::254", AddressKind::Metadata),
            ("ff02::1", AddressKind::Multicast),
            ("2001:db8::1", AddressKind::Documentation),
            ("3fff::1", AddressKind::Documentation),
            ("2001:2::1", AddressKind::Benchmarking),
            ("2001::1", AddressKind::Teredo),
            ("2001:10::1", AddressKind::Reserved),
            ("100::1", AddressKind::Reserved),
            ("fec0::1", AddressKind::Reserved),
            ("64:ff9b:1::1", AddressKind::Reserved),
        ];
        for (text, expected) in cases {
            assert_eq!(kind(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn embedded_ipv4_is_checked() {
        let cases = [
            ("::ffff:127.0.0.1", AddressKind::Loopback),
            ("::ffff:10.0.0.5", AddressKind::Private),
            ("::ffff:169.254.169.254", AddressKind::Metadata),
            ("::127.0.0.1", AddressKind::Loopback),
            ("::10.1.2.3", AddressKind::Private),
            ("64:ff9b::10.0.0.1", AddressKind::Private),
            ("64:ff9b::127.0.0.1", AddressKind::Loopback),
            ("2002:7f00:0001::1", AddressKind::Loopback),
            ("2002:c0a8:0101::1", AddressKind::Private),
            ("2002:a9fe:a9fe::1", AddressKind::Metadata),
        ];
        for (text, expected) in cases {
            assert_eq!(kind(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn development_flag_allows_only_local_networks() {
        let allowed = ["127.0.0.1", "10.0.0.5", "192.168.0.2", "100.64.0.1", "169.254.3.4", "fd00::1", "::1"];
        for text in allowed {
            let ip: IpAddr = text.parse().unwrap();
            assert!(check_address(ip, true).is_ok(), "{text}");
            assert!(check_address(ip, false).is_err(), "{text}");
        }
        let refused = ["169.254.169.254", "0.0.0.0", "255.255.255.255", "224.0.0.1", "192.0.2.1", "2001::1"];
        for text in refused {
            assert!(check_address(text.parse().unwrap(), true).is_err(), "{text}");
        }
    }

    #[test]
    fn rejection_message_names_address_and_setting() {
        let error = check_address("10.0.0.5".parse().unwrap(), false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "endpoint resolves to a private address 10.0.0.5; set ALLOW_PRIVATE_ENDPOINTS=true for development"
        );
        let error = check_address("169.254.169.254".parse().unwrap(), true).unwrap_err();
        assert_eq!(error.to_string(), "endpoint resolves to a cloud metadata address 169.254.169.254, which is never allowed");
    }

    #[test]
    fn endpoint_urls_need_http_and_a_public_literal() {
        assert!(check_endpoint_url("https://example.org/hook", false).is_ok());
        assert!(check_endpoint_url("http://localhost:9/hook", false).is_ok(), "names are checked by the resolver");
        assert!(check_endpoint_url("ftp://example.org/", false).unwrap_err().to_string().contains("http or https"));
        assert!(check_endpoint_url("not a url", false).unwrap_err().to_string().contains("invalid endpoint URL"));
        assert!(check_endpoint_url("http://127.0.0.1:9/", false).unwrap_err().to_string().contains("loopback"));
        assert!(check_endpoint_url("http://[::ffff:10.0.0.1]/", false).unwrap_err().to_string().contains("private"));
        assert!(check_endpoint_url("http://0x7f.1/", false).unwrap_err().to_string().contains("127.0.0.1"));
        assert!(check_endpoint_url("http://127.0.0.1:9/", true).is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let name: Name = "localhost".parse().unwrap();
        let error = match (GuardedResolver { allow_private: false }).resolve(name).await {
            Ok(_) => panic!("localhost resolved through the guard"),
            Err(error) => error,
        };
        assert!(error.to_string().contains("loopback"), "{error}");

        let name: Name = "localhost".parse().unwrap();
        let addresses: Vec<SocketAddr> =
            (GuardedResolver { allow_private: true }).resolve(name).await.unwrap().collect();
        assert!(addresses.iter().all(|address| address.ip().is_loopback()), "{addresses:?}");
    }
}
