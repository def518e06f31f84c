use std::io::Read;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use super::*;

type Builder = tar::Builder<GzEncoder<Vec<u8>>>;

const ROOMY: ExtractLimits = ExtractLimits {
    max_bytes: 1 << 20,
    max_entries: 100,
};

fn targz(fill: impl FnOnce(&mut Builder)) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    fill(&mut builder);
    builder.into_inner().unwrap().finish().unwrap()
}

/// An entry written byte by byte, so the archive can say what `tar::Builder` would
/// refuse to write (`..`, absolute paths, links out).
fn raw(builder: &mut Builder, kind: EntryType, name: &str, link: Option<&str>, data: &[u8]) {
    let mut header = Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

fn file(builder: &mut Builder, name: &str, data: &[u8]) {
    raw(builder, EntryType::Regular, name, None, data);
}

/// A workspace folder inside a scratch folder, so "outside" can be inspected.
struct Scratch {
    _dir: tempfile::TempDir,
    outside: PathBuf,
    root: PathBuf,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().canonicalize().unwrap();
    let root = outside.join("ws");
    std::fs::create_dir(&root).unwrap();
    Scratch {
        _dir: dir,
        outside,
        root,
    }
}

fn extract(archive: &[u8], root: &Path, limits: ExtractLimits) -> Result<ExtractSummary, String> {
    extract_workspace(archive, root, limits).map_err(|err| err.to_string())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn files_directories_and_inner_symlinks_are_unpacked() {
    let s = scratch();
    let archive = targz(|b| {
        raw(b, EntryType::Directory, "./", None, b"");
        raw(b, EntryType::Directory, "src/", None, b"");
        file(b, "src/a.txt", b"alpha\n");
        file(b, "./README.md", b"# hi\n");
        raw(b, EntryType::Symlink, "link", Some("src/a.txt"), b"");
        raw(b, EntryType::Symlink, "src/up", Some("../README.md"), b"");
    });
    let summary = extract(&archive, &s.root, ROOMY).unwrap();
    assert_eq!(
        summary,
        ExtractSummary {
            entries: 6,
            bytes: 11
        }
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("link")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("src/up")).unwrap(),
        "# hi\n"
    );
    assert!(s.root.join("link").symlink_metadata().unwrap().is_symlink());
    assert_eq!(names_in(&s.outside), ["ws"]);
}

#[test]
fn parent_dir_entry_is_refused_and_nothing_is_written_outside() {
    for name in ["../evil", "a/../../evil", "./../evil"] {
        let s = scratch();
        let archive = targz(|b| {
            file(b, "ok.txt", b"ok");
            file(b, name, b"pwned");
        });
        let err = extract(&archive, &s.root, ROOMY).unwrap_err();
        assert!(err.starts_with("bad workspace archive: "), "{err}");
        assert!(err.contains("contains `..`"), "{err}");
        assert_eq!(names_in(&s.outside), ["ws"], "{name}");
    }
}

#[test]
fn absolute_entry_path_is_refused() {
    let s = scratch();
    let target = s.outside.join("evil");
    let name = target.to_string_lossy().into_owned();
    let archive = targz(|b| file(b, &name, b"pwned"));
    let err = extract(&archive, &s.root, ROOMY).unwrap_err();
    assert!(err.contains("has an absolute path"), "{err}");
    assert!(!target.exists());
    assert_eq!(names_in(&s.root), Vec::<String>::new());
}

#[test]
fn symlink_to_an_absolute_path_is_refused() {
    let s = scratch();
    let archive = targz(|b| raw(b, EntryType::Symlink, "etc", Some("/etc"), b""));
    let err = extract(&archive, &s.root, ROOMY).unwrap_err();
    assert!(
        err.contains("symlink `etc` points to `/etc`, outside the workspace"),
        "{err}"
    );
    assert!(s.root.join("etc").symlink_metadata().is_err());
}

#[test]
fn symlink_climbing_out_by_its_text_is_refused() {
    let s = scratch();
    let archive = targz(|b| raw(b, EntryType::Symlink, "sub/out", Some("../../secret"), b""));
    let err = extract(&archive, &s.root, ROOMY).unwrap_err();
    assert!(err.contains("points to `../../secret`"), "{err}");
}

#[test]
fn writing_through_a_chain_of_symlinks_that_leads_out_is_refused() {
    let s = scratch();
    // d/a -> .. is the root; d/a/b -> .. is then the root's parent, though its text
    // only climbs one level.
    let archive = targz(|b| {
        raw(b, EntryType::Directory, "d/", None, b"");
        raw(b, EntryType::Symlink, "d/a", Some(".."), b"");
        raw(b, EntryType::Symlink, "d/a/b", Some(".."), b"");
        file(b, "d/a/b/evil", b"pwned");
    });
    let err = extract(&archive, &s.root, ROOMY).unwrap_err();
    assert!(err.contains("cannot unpack `d/a/b/evil`"), "{err}");
    assert!(!s.outside.join("evil").exists());
}

#[test]
fn symlink_leading_out_through_another_symlink_is_refused() {
    let s = scratch();
    let archive = targz(|b| {
        raw(b, EntryType::Directory, "d/", None, b"");
        raw(b, EntryType::Symlink, "d/a", Some(".."), b"");
        raw(b, EntryType::Symlink, "l", Some("d/a/.."), b"");
    });
    let err = extract(&archive, &s.root, ROOMY).unwrap_err();
    assert!(
        err.contains("symlink `l` leads outside the workspace"),
        "{err}"
    );
}

#[test]
fn dangling_symlink_inside_is_kept() {
    let s = scratch();
    let archive = targz(|b| raw(b, EntryType::Symlink, "later", Some("not/yet"), b""));
    extract(&archive, &s.root, ROOMY).unwrap();
    assert_eq!(
        std::fs::read_link(s.root.join("later")).unwrap(),
        Path::new("not/yet")
    );
}

#[test]
fn hard_links_are_refused() {
    let s = scratch();
    let archive = targz(|b| {
        file(b, "a.txt", b"a");
        raw(b, EntryType::Link, "b.txt", Some("a.txt"), b"");
    });
    let err = extract(&archive, &s.root, ROOMY).unwrap_err();
    assert!(err.contains("`b.txt` is a hard link"), "{err}");
}

#[test]
fn devices_and_fifos_are_refused() {
    for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
        let s = scratch();
        let archive = targz(|b| raw(b, kind, "dev", None, b""));
        let err = extract(&archive, &s.root, ROOMY).unwrap_err();
        assert!(err.contains("`dev` is a special entry"), "{kind:?}: {err}");
        assert!(s.root.join("dev").symlink_metadata().is_err());
    }
}

#[test]
fn too_many_entries_are_refused() {
    let s = scratch();
    let archive = targz(|b| {
        for i in 0..5 {
            file(b, &format!("f{i}"), b"x");
        }
    });
    let limits = ExtractLimits {
        max_entries: 4,
        ..ROOMY
    };
    let err = extract(&archive, &s.root, limits).unwrap_err();
    assert!(err.contains("more than 4 entries"), "{err}");
}

#[test]
fn file_past_the_size_cap_is_refused_before_its_data_is_written() {
    let s = scratch();
    let archive = targz(|b| {
        let mut header = Header::new_gnu();
        header.set_size(8 << 20);
        header.set_mode(0o644);
        header.set_cksum();
        b.append_data(&mut header, "zeros.bin", std::io::repeat(0).take(8 << 20))
            .unwrap();
    });
    assert!(archive.len() < 64 << 10, "the fixture is a small bomb");
    let err = extract(&archive, &s.root, ROOMY).unwrap_err();
    assert!(err.contains("unpacks to more than 1048576 bytes"), "{err}");
    assert!(s.root.join("zeros.bin").symlink_metadata().is_err());
}

#[test]
fn sizes_add_up_across_files_against_the_cap() {
    let s = scratch();
    let archive = targz(|b| {
        file(b, "a", &[1; 600]);
        file(b, "b", &[2; 600]);
    });
    let limits = ExtractLimits {
        max_bytes: 1000,
        ..ROOMY
    };
    let err = extract(&archive, &s.root, limits).unwrap_err();
    assert!(err.contains("`b` goes past the cap"), "{err}");
}

#[test]
fn metadata_records_cannot_balloon_past_the_stream_cap() {
    let s = scratch();
    let archive = targz(|b| {
        raw(
            b,
            EntryType::GNULongName,
            "././@LongLink",
            None,
            &vec![b'a'; 4 << 20],
        );
        file(b, "x", b"x");
    });
    let limits = ExtractLimits {
        max_bytes: 1024,
        max_entries: 1,
    };
    let err = extract(&archive, &s.root, limits).unwrap_err();
    assert!(
        err.contains("decompresses to more than the cap allows"),
        "{err}"
    );
}

#[test]
fn data_that_is_not_gzip_is_refused() {
    let s = scratch();
    let err = extract(b"PK\x03\x04 this is a zip", &s.root, ROOMY).unwrap_err();
    assert!(err.contains("not a readable .tar.gz"), "{err}");
}

#[test]
fn global_pax_header_is_skipped() {
    let s = scratch();
    let archive = targz(|b| {
        raw(
            b,
            EntryType::XGlobalHeader,
            "pax_global_header",
            None,
            b"52 comment=0123456789abcdef0123456789abcdef01234567\n",
        );
        file(b, "a.txt", b"a");
    });
    extract(&archive, &s.root, ROOMY).unwrap();
    assert_eq!(names_in(&s.root), ["a.txt"]);
}

#[test]
fn read_only_modes_are_made_writable_for_the_agent() {
    let s = scratch();
    let archive = targz(|b| {
        let mut dir = Header::new_gnu();
        dir.set_entry_type(EntryType::Directory);
        dir.set_mode(0o555);
        dir.set_size(0);
        dir.set_cksum();
        b.append_data(&mut dir, "locked/", std::io::empty())
            .unwrap();
        let mut header = Header::new_gnu();
        header.set_mode(0o444);
        header.set_size(1);
        header.set_cksum();
        b.append_data(&mut header, "locked/ro.txt", &b"r"[..])
            .unwrap();
    });
    extract(&archive, &s.root, ROOMY).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(s.root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("locked"), 0o755);
    assert_eq!(mode("locked/ro.txt"), 0o644);
    std::fs::write(s.root.join("locked/new.txt"), "n").unwrap();
}
