use std::net::IpAddr;

use super::{AllowList, HostKey};

fn list(entries: &[&str]) -> AllowList {
    AllowList::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
}

fn name(text: &str) -> HostKey {
    HostKey::Name(text.into())
}

fn ip(text: &str) -> HostKey {
    HostKey::Ip(text.parse::<IpAddr>().unwrap())
}

#[test]
fn bare_name_allows_every_port() {
    let allow = list(&["LocalHost."]);
    assert!(allow.allows(&name("localhost"), Some(80)));
    assert!(allow.allows(&name("localhost"), Some(8080)));
    assert!(!allow.allows(&name("example.com"), Some(80)));
}

#[test]
fn name_with_port_allows_only_that_port() {
    let allow = list(&["localhost:8080"]);
    assert!(allow.allows(&name("localhost"), Some(8080)));
    assert!(!allow.allows(&name("localhost"), Some(8081)));
    assert!(allow.names_host("localhost"));
    assert!(!allow.names_host("example.com"));
}

#[test]
fn ip_entries_match_addresses_in_any_spelling() {
    let allow = list(&["127.0.0.1", "[::1]:9000", "::ffff:10.0.0.1"]);
    assert!(allow.allows(&ip("127.0.0.1"), Some(1)));
    assert!(allow.allows(&ip("0:0:0:0:0:0:0:1"), Some(9000)));
    assert!(!allow.allows(&ip("::1"), Some(9001)));
    assert!(allow.allows(&ip("::ffff:a00:1"), Some(80)));
}

#[test]
fn allowing_an_address_does_not_allow_names() {
    let allow = list(&["127.0.0.1"]);
    assert!(!allow.allows(&name("localhost"), Some(80)));
    assert!(!allow.names_host("localhost"));
}

#[test]
fn malformed_entries_are_reported_with_the_entry() {
    for bad in [
        "",
        "host:notaport",
        "[::1",
        "[::1]x",
        "host:70000",
        "bad host",
    ] {
        let err = AllowList::parse(&[bad.to_string()]).unwrap_err();
        assert_eq!(err.entry, bad);
        assert!(err.to_string().contains("allow_hosts"), "{err}");
    }
}
