//! Which IP addresses a model-driven HTTP call must not reach, and why.
//!
//! A model that can make HTTP requests from inside our network could reach services that
//! trust the network rather than the caller: the host itself (loopback), the private
//! network, and above all the cloud metadata service that hands out credentials. This
//! module names the range an address falls in, so a refusal can say why.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A range of addresses `call_api` refuses unless the host is allow-listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenRange {
    Loopback,
    Private,
    LinkLocal,
    Unspecified,
    Broadcast,
    Multicast,
    /// 100.64.0.0/10, carrier-grade NAT; also used inside some clouds.
    SharedAddressSpace,
    Documentation,
    /// Benchmarking, IETF protocol assignments, future use, discard-only.
    Reserved,
    CloudMetadata,
}

impl ForbiddenRange {
    /// The phrase used in refusals: "`x` is {description}".
    pub fn description(self) -> &'static str {
        match self {
            ForbiddenRange::Loopback => "a loopback address",
            ForbiddenRange::Private => "a private-network address",
            ForbiddenRange::LinkLocal => "a link-local address",
            ForbiddenRange::Unspecified => "an unspecified (\"this host\") address",
            ForbiddenRange::Broadcast => "a broadcast address",
            ForbiddenRange::Multicast => "a multicast address",
            ForbiddenRange::SharedAddressSpace => "a carrier-grade NAT (100.64.0.0/10) address",
            ForbiddenRange::Documentation => "a documentation-only address",
            ForbiddenRange::Reserved => "a reserved address",
            ForbiddenRange::CloudMetadata => "a cloud metadata service address",
        }
    }
}

impl fmt::Display for ForbiddenRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Instance metadata endpoints: AWS/GCP/Azure/OpenStack, AWS ECS task metadata, Alibaba
/// Cloud, Oracle Cloud. Most also fall in a forbidden range; naming them gives a clearer
/// refusal.
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];

/// AWS's IPv6 metadata endpoint, `fd00:ec2::254`.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// Host names that reach a metadata service whatever they resolve to.
const METADATA_NAMES: [&str; 2] = ["metadata.google.internal", "metadata.goog"];

/// The forbidden range `ip` is in, or `None` if it is an ordinary public address.
pub fn classify(ip: IpAddr) -> Option<ForbiddenRange> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether `name` (lower case, no trailing dot) is a metadata service's well-known name.
pub fn is_metadata_name(name: &str) -> bool {
    METADATA_NAMES.contains(&name)
}

fn classify_v4(ip: Ipv4Addr) -> Option<ForbiddenRange> {
    let [a, b, c, _] = ip.octets();
    let range = if METADATA_V4.contains(&ip) {
        ForbiddenRange::CloudMetadata
    } else if ip.is_loopback() {
        ForbiddenRange::Loopback
    } else if a == 0 {
        // 0.0.0.0/8: "this network"; 0.0.0.0 itself reaches the local host on Linux.
        ForbiddenRange::Unspecified
    } else if ip.is_private() {
        ForbiddenRange::Private
    } else if ip.is_link_local() {
        ForbiddenRange::LinkLocal
    } else if a == 100 && (b & 0xc0) == 64 {
        ForbiddenRange::SharedAddressSpace
    } else if ip.is_broadcast() {
        ForbiddenRange::Broadcast
    } else if ip.is_multicast() {
        ForbiddenRange::Multicast
    } else if ip.is_documentation() {
        ForbiddenRange::Documentation
    } else if (a == 198 && (b & 0xfe) == 18) || (a == 192 && b == 0 && c == 0) || a >= 240 {
        ForbiddenRange::Reserved
    } else {
        return None;
    };
    Some(range)
}

fn classify_v6(ip: Ipv6Addr) -> Option<ForbiddenRange> {
    let segments = ip.segments();
    let range = if ip == METADATA_V6 {
        ForbiddenRange::CloudMetadata
    } else if ip.is_unspecified() {
        ForbiddenRange::Unspecified
    } else if ip.is_loopback() {
        ForbiddenRange::Loopback
    } else if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    } else if ip.is_multicast() {
        ForbiddenRange::Multicast
    } else if ip.is_unique_local() || (segments[0] & 0xffc0) == 0xfec0 {
        // fc00::/7, and the deprecated site-local fec0::/10.
        ForbiddenRange::Private
    } else if ip.is_unicast_link_local() {
        ForbiddenRange::LinkLocal
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        ForbiddenRange::Documentation
    } else if segments[..4] == [0x0100, 0, 0, 0] {
        // 100::/64, discard-only.
        ForbiddenRange::Reserved
    } else {
        return None;
    };
    Some(range)
}

/// The IPv4 address carried inside an IPv6 one, for the forms that deliver to it:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated but still
/// routed by some stacks) and NAT64 (`64:ff9b::a.b.c.d`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let low = || Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32);
    match segments[..6] {
        [0, 0, 0, 0, 0, 0xffff] | [0, 0, 0, 0, 0, 0] => Some(low()),
        [0x0064, 0xff9b, 0, 0, 0, 0] => Some(low()),
        _ => None,
    }
}

#[cfg(test)]
#[path = "ip_class_tests.rs"]
mod tests;
