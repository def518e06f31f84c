#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Zip extraction: archives refused for their encoding or their size (bombs), leaving nothing behind.

#[path = "support/zip_case.rs"]
mod zip_case;

use orchestrator::WorkspaceError;
use orchestrator::workspace::ExtractOptions;
use zip_case::{Case, Entry, default_opts, headers, refused};

#[test]
fn encrypted_entries_are_refused() {
    let case = Case::new(&[Entry::File("secret.txt", b"secret")]);
    case.patch(|bytes| {
        // General-purpose flag bit 0 ("encrypted") in the local and central headers.
        let (locals, centrals) = headers(bytes);
        for at in locals {
            bytes[at + 6] |= 1;
        }
        for at in centrals {
            bytes[at + 8] |= 1;
        }
    });
    let err = refused(&case, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipEncrypted { .. }),
        "{err:?}"
    );
}

#[test]
fn unsupported_compression_methods_are_refused() {
    let case = Case::new(&[Entry::File("a.txt", b"some text some text")]);
    case.patch(|bytes| {
        // Method 12 (bzip2), which this build does not decode.
        let (locals, centrals) = headers(bytes);
        for at in locals {
            bytes[at + 8] = 12;
        }
        for at in centrals {
            bytes[at + 10] = 12;
        }
    });
    let err = refused(&case, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipUnsupported { .. }),
        "{err:?}"
    );
}

#[test]
fn duplicate_entries_are_refused() {
    let same_after_normalising =
        Case::new(&[Entry::File("a/b.txt", b"1"), Entry::File("a//b.txt", b"2")]);
    let err = refused(&same_after_normalising, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipDuplicate { .. }),
        "{err:?}"
    );

    let dotted = Case::new(&[Entry::File("a.txt", b"1"), Entry::File("./a.txt", b"2")]);
    let err = refused(&dotted, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipDuplicate { .. }),
        "{err:?}"
    );
}

#[test]
fn a_name_listed_twice_in_the_central_directory_is_refused() {
    let case = Case::new(&[Entry::File("aaaa.txt", b"1"), Entry::File("bbbb.txt", b"2")]);
    case.patch(|bytes| {
        let text = bytes.clone();
        for at in (0..text.len() - 8).filter(|&i| &text[i..i + 8] == b"bbbb.txt") {
            bytes[at..at + 8].copy_from_slice(b"aaaa.txt");
        }
    });
    let err = refused(&case, &default_opts());
    assert!(
        matches!(
            err,
            WorkspaceError::ZipDuplicateNames | WorkspaceError::ZipDuplicate { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_path_used_as_both_file_and_folder_is_refused() {
    for entries in [
        [Entry::File("a", b"file"), Entry::File("a/b", b"nested")],
        [Entry::File("a/b", b"nested"), Entry::File("a", b"file")],
    ] {
        let case = Case::new(&entries);
        let err = refused(&case, &default_opts());
        assert!(
            matches!(err, WorkspaceError::ZipDuplicate { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..11).map(|i| format!("f{i}.txt")).collect();
    let entries: Vec<Entry<'_>> = names.iter().map(|n| Entry::File(n, b"x")).collect();
    let case = Case::new(&entries);
    let opts = ExtractOptions {
        max_entries: 10,
        ..default_opts()
    };
    let err = refused(&case, &opts);
    assert!(
        matches!(err, WorkspaceError::ZipTooManyEntries { limit: 10 }),
        "{err:?}"
    );
}

#[test]
fn exactly_the_entry_limit_is_accepted() {
    let names: Vec<String> = (0..10).map(|i| format!("f{i}.txt")).collect();
    let entries: Vec<Entry<'_>> = names.iter().map(|n| Entry::File(n, b"x")).collect();
    let case = Case::new(&entries);
    let opts = ExtractOptions {
        max_entries: 10,
        ..default_opts()
    };
    assert_eq!(case.extract(&opts).unwrap().files, 10);
}

/// 32 MiB of zeros compresses to about 32 KiB: a ratio near 1000.
fn bomb() -> Case {
    let zeros = vec![0u8; 32 << 20];
    Case::new(&[
        Entry::File("ok.txt", b"fine"),
        Entry::File("zeros.bin", &zeros),
    ])
}

#[test]
fn a_zip_bomb_is_refused_by_the_compression_ratio_cap() {
    let case = bomb();
    let err = refused(&case, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipRatio { ref entry, limit: 200 } if entry == "zeros.bin"),
        "{err:?}"
    );
    assert!(err.to_string().contains("zip bomb"), "{err}");
}

#[test]
fn a_zip_bomb_is_refused_by_the_total_size_cap() {
    let case = bomb();
    let opts = ExtractOptions {
        max_total_bytes: 8 << 20,
        max_ratio: u64::MAX,
        ..default_opts()
    };
    let err = refused(&case, &opts);
    assert!(
        matches!(err, WorkspaceError::ZipTooLarge { limit } if limit == 8 << 20),
        "{err:?}"
    );
}

#[test]
fn sizes_in_the_headers_are_not_trusted() {
    // The headers claim 16 bytes for 2 MiB of data; the caps must still hold.
    let zeros = vec![0u8; 2 << 20];
    let case = Case::new(&[Entry::File("liar.bin", &zeros)]);
    case.patch(|bytes| {
        let (locals, centrals) = headers(bytes);
        for at in locals {
            bytes[at + 22..at + 26].copy_from_slice(&16u32.to_le_bytes());
        }
        for at in centrals {
            bytes[at + 24..at + 28].copy_from_slice(&16u32.to_le_bytes());
        }
    });
    let opts = ExtractOptions {
        max_total_bytes: 1 << 20,
        max_ratio: u64::MAX,
        ..default_opts()
    };
    let err = refused(&case, &opts);
    assert!(
        matches!(
            err,
            WorkspaceError::ZipTooLarge { .. } | WorkspaceError::ZipUnreadable { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn small_very_compressible_files_pass_the_ratio_cap() {
    let zeros = vec![0u8; 512 << 10];
    let case = Case::new(&[Entry::File("fixture.bin", &zeros)]);
    let stats = case.extract(&default_opts()).unwrap();
    assert_eq!(stats.bytes, 512 << 10);
}

#[test]
fn a_file_that_is_not_a_zip_is_refused() {
    let case = Case::empty();
    std::fs::write(case.zip(), b"this is not a zip archive").unwrap();
    let err = refused(&case, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipUnreadable { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the upload is not a readable zip archive")
    );
}

#[test]
fn a_corrupted_entry_is_refused() {
    let body = b"hello hello hello hello hello hello";
    let case = Case::new(&[Entry::File("a.txt", b"fine"), Entry::File("b.txt", body)]);
    case.patch(|bytes| {
        // Flip the stored CRC of b.txt in both headers.
        let (locals, centrals) = headers(bytes);
        bytes[locals[1] + 14] ^= 0xff;
        bytes[centrals[1] + 16] ^= 0xff;
    });
    let err = refused(&case, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipUnreadable { .. }),
        "{err:?}"
    );
}
