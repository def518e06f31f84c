use std::net::IpAddr;

use super::{ForbiddenRange, classify, is_metadata_name};

fn class(text: &str) -> Option<ForbiddenRange> {
    classify(text.parse::<IpAddr>().unwrap())
}

#[test]
fn loopback_addresses_are_forbidden() {
    assert_eq!(class("127.0.0.1"), Some(ForbiddenRange::Loopback));
    assert_eq!(class("127.255.0.9"), Some(ForbiddenRange::Loopback));
    assert_eq!(class("::1"), Some(ForbiddenRange::Loopback));
}

#[test]
fn private_ranges_are_forbidden_at_their_edges() {
    for ip in [
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.0.1",
        "192.168.255.255",
        "fc00::1",
        "fdff:ffff::1",
        "fec0::1",
    ] {
        assert_eq!(class(ip), Some(ForbiddenRange::Private), "{ip}");
    }
}

#[test]
fn addresses_just_outside_private_ranges_are_public() {
    for ip in [
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "fbff::1",
    ] {
        assert_eq!(class(ip), None, "{ip}");
    }
}

#[test]
fn link_local_addresses_are_forbidden() {
    assert_eq!(class("169.254.1.1"), Some(ForbiddenRange::LinkLocal));
    assert_eq!(class("fe80::1"), Some(ForbiddenRange::LinkLocal));
    assert_eq!(class("febf::1"), Some(ForbiddenRange::LinkLocal));
}

#[test]
fn cloud_metadata_addresses_are_named_as_such() {
    for ip in [
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
    ] {
        assert_eq!(class(ip), Some(ForbiddenRange::CloudMetadata), "{ip}");
    }
}

#[test]
fn metadata_host_names_are_recognised() {
    assert!(is_metadata_name("metadata.google.internal"));
    assert!(is_metadata_name("metadata.goog"));
    assert!(!is_metadata_name("example.com"));
}

#[test]
fn unspecified_broadcast_and_multicast_are_forbidden() {
    assert_eq!(class("0.0.0.0"), Some(ForbiddenRange::Unspecified));
    assert_eq!(class("0.1.2.3"), Some(ForbiddenRange::Unspecified));
    assert_eq!(class("::"), Some(ForbiddenRange::Unspecified));
    assert_eq!(class("255.255.255.255"), Some(ForbiddenRange::Broadcast));
    assert_eq!(class("224.0.0.1"), Some(ForbiddenRange::Multicast));
    assert_eq!(class("239.255.255.250"), Some(ForbiddenRange::Multicast));
    assert_eq!(class("ff02::1"), Some(ForbiddenRange::Multicast));
}

#[test]
fn carrier_grade_nat_range_is_forbidden() {
    assert_eq!(
        class("100.64.0.1"),
        Some(ForbiddenRange::SharedAddressSpace)
    );
    assert_eq!(
        class("100.127.255.254"),
        Some(ForbiddenRange::SharedAddressSpace)
    );
}

#[test]
fn documentation_and_reserved_ranges_are_forbidden() {
    for ip in ["192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1"] {
        assert_eq!(class(ip), Some(ForbiddenRange::Documentation), "{ip}");
    }
    for ip in [
        "198.18.0.1",
        "198.19.255.255",
        "192.0.0.8",
        "240.0.0.1",
        "100::1",
    ] {
        assert_eq!(class(ip), Some(ForbiddenRange::Reserved), "{ip}");
    }
}

#[test]
fn ipv4_inside_ipv6_is_classified_as_the_ipv4_address() {
    assert_eq!(class("::ffff:127.0.0.1"), Some(ForbiddenRange::Loopback));
    assert_eq!(class("::ffff:10.1.2.3"), Some(ForbiddenRange::Private));
    assert_eq!(class("::127.0.0.1"), Some(ForbiddenRange::Loopback));
    assert_eq!(class("::192.168.1.1"), Some(ForbiddenRange::Private));
    assert_eq!(class("64:ff9b::10.0.0.1"), Some(ForbiddenRange::Private));
    assert_eq!(class("::ffff:8.8.8.8"), None);
    assert_eq!(class("64:ff9b::8.8.8.8"), None);
}

#[test]
fn refusal_phrases_read_as_a_noun_phrase() {
    assert_eq!(ForbiddenRange::Loopback.to_string(), "a loopback address");
    assert_eq!(
        ForbiddenRange::CloudMetadata.to_string(),
        "a cloud metadata service address"
    );
}
