use std::io::Read;

use super::*;

#[test]
fn a_spawn_request_travels_with_its_descriptors_and_non_utf8_bytes() {
    let (agent, server) = UnixStream::pair().unwrap();
    let (read_end, write_end) = std::io::pipe().unwrap();
    let request = Request::Spawn {
        id: 7,
        program: "/bin/bash".into(),
        args: vec!["-c".into(), OsString::from_vec(vec![b'e', 0xff])],
        cwd: "/work".into(),
        env: vec![("A".into(), OsString::from_vec(vec![0xfe]))],
        join_cgroup: false,
    };
    let write_fd = write_end.as_raw_fd();
    send_request(&agent, &request, &[write_fd, write_fd]).unwrap();
    send_request(
        &agent,
        &Request::Kill {
            id: 7,
            pgid: 42,
            mark: "m".into(),
        },
        &[],
    )
    .unwrap();
    drop((agent, write_end));
    let mut reader = RequestReader::new(server);
    let (got, fds) = reader.next().unwrap().unwrap();
    assert_eq!(format!("{got:?}"), format!("{request:?}"));
    assert_eq!(fds.len(), 2);
    // The descriptor handed over is the pipe's write end.
    let mut writer = std::fs::File::from(fds.into_iter().next().unwrap());
    writer.write_all(b"hi").unwrap();
    drop(writer);
    let (kill, none) = reader.next().unwrap().unwrap();
    assert!(matches!(
        kill,
        Request::Kill {
            id: 7,
            pgid: 42,
            ..
        }
    ));
    assert!(none.is_empty());
    assert!(reader.next().unwrap().is_none());
    let mut text = String::new();
    let mut read_end = read_end;
    read_end.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hi");
}

#[test]
fn responses_round_trip() {
    let (agent, server) = UnixStream::pair().unwrap();
    let sent = [
        Response::Ready,
        Response::Started { id: 1, pid: 3 },
        Response::Failed {
            id: 2,
            message: "no".into(),
        },
        Response::Exited {
            id: 1,
            status: 256,
            usage: ServerUsage {
                own_us: 5,
                children_us: 9,
            },
        },
        Response::Killed { id: 1 },
        Response::Finished {
            usage: ServerUsage::default(),
        },
    ];
    for response in &sent {
        send_response(&server, response).unwrap();
    }
    drop(server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        agent.set_nonblocking(true).unwrap();
        // Buffered, as the agent reads them: frames split across and within reads.
        let mut agent = tokio::io::BufReader::new(tokio::net::UnixStream::from_std(agent).unwrap());
        for response in &sent {
            assert_eq!(
                read_response(&mut agent).await.unwrap().as_ref(),
                Some(response)
            );
        }
        assert_eq!(read_response(&mut agent).await.unwrap(), None);
    });
}
