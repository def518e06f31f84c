use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use super::*;

fn settings(mode: RelayMode, target: SocketAddr, idle: Duration, total: Duration) -> RelaySettings {
    RelaySettings {
        mode,
        targets: vec![target],
        idle,
        total,
        deadline: Instant::now() + total,
    }
}

fn connect_mode() -> RelayMode {
    RelayMode::Connect {
        host: "git.example.test".into(),
        port: 443,
    }
}

/// A server that echoes what it reads, counting connections on `accepted`.
fn echo_server() -> (SocketAddr, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            tx.send(()).unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn connect_to_the_urls_host_reaches_only_the_checked_address() {
    let (target, accepted) = echo_server();
    let relay = Relay::start(settings(
        connect_mode(),
        target,
        Duration::from_secs(5),
        Duration::from_secs(30),
    ))
    .unwrap();
    let mut client = TcpStream::connect(relay.addr()).unwrap();
    // The name is never resolved: the relay goes to the address it was given.
    client
        .write_all(b"CONNECT GIT.example.test:443 HTTP/1.1\r\nHost: git.example.test:443\r\n\r\n")
        .unwrap();
    assert!(read_head(&mut client).starts_with("HTTP/1.1 200"));
    accepted.recv_timeout(Duration::from_secs(5)).unwrap();
    client.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping");
    assert_eq!(relay.failure(), None);
}

#[test]
fn connect_to_another_host_or_port_is_refused_as_a_redirect() {
    for asked in ["elsewhere.example.test:443", "git.example.test:8443"] {
        let (target, accepted) = echo_server();
        let relay = Relay::start(settings(
            connect_mode(),
            target,
            Duration::from_secs(5),
            Duration::from_secs(30),
        ))
        .unwrap();
        let mut client = TcpStream::connect(relay.addr()).unwrap();
        client
            .write_all(format!("CONNECT {asked} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        assert!(
            read_head(&mut client).starts_with("HTTP/1.1 403"),
            "{asked}"
        );
        assert_eq!(relay.failure(), Some(RelayFailure::OtherHost(asked.into())));
        assert!(
            accepted.recv_timeout(Duration::from_millis(300)).is_err(),
            "{asked}: the target was contacted"
        );
        assert!(relay.failure().unwrap().to_string().contains("redirect"));
    }
}

#[test]
fn a_silent_server_is_cut_after_the_idle_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let silent = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let idle = Duration::from_millis(500);
    let relay = Relay::start(settings(
        RelayMode::Forward,
        target,
        idle,
        Duration::from_secs(60),
    ))
    .unwrap();
    let mut client = TcpStream::connect(relay.addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.write_all(b"hello?").unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = client.read(&mut buf);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(relay.failure(), Some(RelayFailure::Idle(idle)));
    drop(silent);
}

#[test]
fn a_trickling_server_is_cut_at_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // One byte every 50 ms: never idle, never done.
        while stream.write_all(b".").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let total = Duration::from_secs(1);
    let relay = Relay::start(settings(
        RelayMode::Forward,
        target,
        Duration::from_secs(5),
        total,
    ))
    .unwrap();
    let mut client = TcpStream::connect(relay.addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let mut received = 0;
    loop {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
    }
    assert!(received > 0, "the trickle never came through");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(relay.failure(), Some(RelayFailure::Deadline(total)));
}

#[test]
fn an_unreachable_target_answers_502_and_says_why() {
    // A port nobody listens on: bind, note it, close.
    let target = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let relay = Relay::start(settings(
        connect_mode(),
        target,
        Duration::from_secs(5),
        Duration::from_secs(30),
    ))
    .unwrap();
    let mut client = TcpStream::connect(relay.addr()).unwrap();
    client
        .write_all(b"CONNECT git.example.test:443 HTTP/1.1\r\n\r\n")
        .unwrap();
    assert!(read_head(&mut client).starts_with("HTTP/1.1 502"));
    let failure = relay.failure().unwrap();
    assert!(
        matches!(failure, RelayFailure::Unreachable(_)),
        "{failure:?}"
    );
    assert!(
        failure.to_string().contains(&target.to_string()),
        "{failure}"
    );
}

#[test]
fn dropping_the_relay_cuts_open_connections() {
    let (target, _accepted) = echo_server();
    let relay = Relay::start(settings(
        RelayMode::Forward,
        target,
        Duration::from_secs(30),
        Duration::from_secs(60),
    ))
    .unwrap();
    let mut client = TcpStream::connect(relay.addr()).unwrap();
    client.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    client.read_exact(&mut one).unwrap();
    drop(relay);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let read = client.read(&mut one);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}
