//! Hostile archives: each safety rule refuses its archive and nothing lands outside the root.

use std::fs;
use std::os::unix::fs::symlink;

use lockstep_archive::{Limits, Refusal, UnpackError, copy_file, inspect, unpack};

use crate::support::{Raw, Scratch, build, listing, mode, names, patch};

const EXE: u32 = 0o100_755;

/// Builds `entries`, then asserts that `inspect` and `unpack` both refuse them with `expected`,
/// and that unpacking wrote nothing at all, inside the root or beside it.
fn check_with(limits: &Limits, entries: &[Raw<'_>], expected: &str) {
    let s = Scratch::new();
    build(&s.zip, entries);
    let inspected = inspect(&s.zip, limits).unwrap_err().to_string();
    let unpacked = unpack(&s.zip, &s.root, limits).unwrap_err().to_string();
    assert_eq!(
        (inspected.as_str(), unpacked.as_str()),
        (expected, expected)
    );
    assert_eq!(names(s.dir.path()), ["a.zip", "root"]);
    assert!(names(&s.root).is_empty(), "checked before writing");
}

fn check(entries: &[Raw<'_>], expected: &str) {
    check_with(&Limits::DEFAULT, entries, expected);
}

#[test]
fn names_that_leave_the_root_are_refused() {
    use Raw::{Dir, File};
    let leaves = |name: &str| format!("entry {name:?} leaves the build directory");
    for name in ["../evil", "a/../../evil", "./../evil", "a/b/../../../evil"] {
        // A harmless entry first: refused archives are refused whole.
        check(&[File("ok", b"x"), File(name, b"x")], &leaves(name));
    }
    check(&[Dir("../up/")], &leaves("../up/"));
    check(
        &[File("/tmp/lockstep-archive-evil", b"x")],
        r#"entry "/tmp/lockstep-archive-evil" is an absolute path"#,
    );
    check(
        &[File("C:/evil", b"x")],
        r#"entry "C:/evil" is an absolute path"#,
    );
    let bad = |name: &str| format!("entry {name:?} contains a backslash or a NUL byte");
    for name in ["C:\\evil", "..\\evil", "a\\..\\..\\evil", "a\0b"] {
        check(&[File(name, b"x")], &bad(name));
    }
    check(
        &[Dir("./")],
        r#"entry "./" names the build directory itself"#,
    );
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    use Raw::{Dir, Link};
    let out = |name: &str, target: &str| {
        format!("entry {name:?} is a symlink to {target:?}, outside the build directory")
    };
    for (name, target) in [
        ("l", "/etc"),
        ("l", "/"),
        ("l", ".."),
        ("l", "a/../../x"),
        ("d/l", "../../x"),
        ("d/e/l", "../x/../../../y"),
    ] {
        check(&[Dir("d/e"), Link(name, target)], &out(name, target));
    }
    check(
        &[Link("l", "..\\x")],
        r#"entry "l" is a symlink whose target is not a short UTF-8 path without backslash or NUL"#,
    );
    let long = "a/".repeat(2100);
    check(
        &[Link("l", &long)],
        r#"entry "l" is a symlink whose target is not a short UTF-8 path without backslash or NUL"#,
    );
}

#[test]
fn entries_inside_a_file_or_symlink_of_the_archive_are_refused() {
    use Raw::{Dir, File, Link};
    check(
        &[Link("link", "."), File("link/../../x", b"x")],
        r#"entry "link/../../x" leaves the build directory"#,
    );
    check(
        &[Dir("sub"), Link("link", "sub"), File("link/x", b"x")],
        r#"entry "link/x" would be written through the symlink "link""#,
    );
    // Order does not matter: the whole archive is checked first.
    check(
        &[File("a/b/c", b"x"), File("a", b"x")],
        r#"entry "a/b/c" needs "a" to be a directory, but it is a file"#,
    );
}

#[test]
fn repeated_names_are_refused() {
    use Raw::{Dir, File};
    check(
        &[File("a/b", b"1"), File("a//b", b"2")],
        r#"entry "a/b" appears more than once"#,
    );
    check(
        &[File("a/b", b"1"), Dir("./a/b")],
        r#"entry "a/b" appears more than once"#,
    );
    // The same raw name twice (the writer refuses it, so rename one after the fact).
    let s = Scratch::new();
    build(&s.zip, &[File("dup1", b"1"), File("dup2", b"2")]);
    patch(&s.zip, |bytes| replace(bytes, b"dup2", b"dup1"));
    let err = unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap_err();
    assert!(matches!(err, UnpackError::DuplicateNames), "{err:?}");
    assert!(names(&s.root).is_empty());
}

#[test]
fn special_file_types_are_refused_and_special_mode_bits_stripped() {
    use Raw::Mode;
    check(
        &[Mode("dev", 0o020_644)],
        r#"entry "dev" has an unsupported file type (mode 20644)"#,
    );
    check(
        &[Mode("fifo", 0o010_644)],
        r#"entry "fifo" has an unsupported file type (mode 10644)"#,
    );
    check(
        &[Mode("sock", 0o140_644)],
        r#"entry "sock" has an unsupported file type (mode 140644)"#,
    );
    let s = Scratch::new();
    let entries = [
        Mode("setuid", 0o104_755),
        Mode("setgid", 0o102_755),
        Mode("sticky", 0o101_777),
        Mode("writable", 0o100_666),
        Mode("private", 0o100_700),
        Mode("plain", 0o100_600),
        Mode("untyped", 0o755),
        Mode("exe", EXE),
    ];
    build(&s.zip, &entries);
    unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap();
    let modes: Vec<(&str, u32)> = [
        "setuid", "setgid", "sticky", "writable", "private", "plain", "untyped", "exe",
    ]
    .into_iter()
    .map(|name| (name, mode(&s.root.join(name))))
    .collect();
    let exe = 0o755;
    let plain = 0o644;
    assert_eq!(
        modes,
        [
            ("setuid", exe),
            ("setgid", exe),
            ("sticky", exe),
            ("writable", plain),
            ("private", exe),
            ("plain", plain),
            ("untyped", exe),
            ("exe", exe),
        ]
    );
}

#[test]
fn limits_on_entries_and_bytes_are_enforced() {
    use Raw::File;
    let few = Limits {
        max_entries: 2,
        ..Limits::DEFAULT
    };
    let three = [File("a", b"1"), File("b", b"2"), File("c", b"3")];
    check_with(
        &few,
        &three,
        "the archive has 3 entries, more than the limit of 2",
    );
    let small = Limits {
        max_bytes: 5,
        ..Limits::DEFAULT
    };
    check_with(
        &small,
        &[File("a", b"abc"), File("b", b"def")],
        "the archive holds more than the limit of 5 bytes uncompressed",
    );
    // Exactly at the limits is fine.
    let s = Scratch::new();
    build(&s.zip, &[File("a", b"abc"), File("b", b"de")]);
    let exact = Limits {
        max_entries: 2,
        max_bytes: 5,
    };
    assert_eq!(unpack(&s.zip, &s.root, &exact).unwrap().bytes, 5);
}

#[test]
fn encrypted_entries_and_other_compression_methods_are_refused() {
    // (offset in the local header, in the central directory, value): the method field set to
    // bzip2, then the flags' "encrypted" bit.
    for (local, central, value) in [(8, 10, 12_u8), (6, 8, 1)] {
        let s = Scratch::new();
        build(&s.zip, &[Raw::File("x", b"data")]);
        patch(&s.zip, |bytes| {
            let local = find(bytes, b"PK\x03\x04") + local;
            let central = find(bytes, b"PK\x01\x02") + central;
            bytes[local] = value;
            bytes[central] = value;
        });
        let expected = r#"entry "x" is encrypted or compressed other than with deflate"#;
        assert_eq!(
            inspect(&s.zip, &Limits::DEFAULT).unwrap_err().to_string(),
            expected
        );
        assert_eq!(
            unpack(&s.zip, &s.root, &Limits::DEFAULT)
                .unwrap_err()
                .to_string(),
            expected
        );
    }
}

/// Rewrites an entry's declared uncompressed size in its local header and the central directory.
fn declare_size(bytes: &mut [u8], size: u32) {
    let local = find(bytes, b"PK\x03\x04") + 22;
    let central = find(bytes, b"PK\x01\x02") + 24;
    for at in [local, central] {
        bytes[at..at + 4].copy_from_slice(&size.to_le_bytes());
    }
}

#[test]
fn an_entry_that_inflates_past_its_declared_size_is_stopped() {
    let s = Scratch::new();
    let contents = vec![b'a'; 100_000];
    build(&s.zip, &[Raw::File("big", &contents)]);
    patch(&s.zip, |bytes| declare_size(bytes, 100));
    // The header's claim passes the limits; the contents do not match it.
    assert_eq!(listing(&s.zip), ["big"]);
    let err = unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap_err();
    // The zip crate stops a read past the declared size itself; our own count is the backstop.
    let stopped = match &err {
        UnpackError::ReadEntry { name, .. } => name == "big",
        UnpackError::Refused { name, rule } => name == "big" && *rule == Refusal::SizeMismatch(100),
        _ => false,
    };
    assert!(stopped, "{err:?}");
    assert!(fs::metadata(s.root.join("big")).unwrap().len() <= 100);
    let mut out = Vec::new();
    copy_file(&s.zip, "big", &mut out, &Limits::DEFAULT).unwrap_err();
    assert!(out.len() <= 100);
}

#[test]
fn an_entry_shorter_than_its_declared_size_is_refused() {
    let s = Scratch::new();
    build(&s.zip, &[Raw::File("short", &[b'a'; 1_000])]);
    patch(&s.zip, |bytes| declare_size(bytes, 2_000));
    let expected = r#"entry "short" does not inflate to the 2000 bytes its header declares"#;
    let err = unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap_err();
    assert_eq!(err.to_string(), expected);
    let err = copy_file(&s.zip, "short", &mut Vec::new(), &Limits::DEFAULT).unwrap_err();
    assert_eq!(err.to_string(), expected);
}

#[test]
fn a_symlink_already_in_the_root_is_never_written_through() {
    let s = Scratch::new();
    let outside = s.outside("outside");
    fs::create_dir(&outside).unwrap();
    symlink(&outside, s.root.join("link")).unwrap();
    build(&s.zip, &[Raw::File("link/x", b"x")]);
    // The archive alone is fine; what is on disk is not.
    assert_eq!(listing(&s.zip), ["link/x"]);
    let err = unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"entry "link/x" would be written through the symlink "link""#
    );
    assert!(names(&outside).is_empty());
}

#[test]
fn a_symlink_from_an_earlier_archive_is_never_written_through() {
    let s = Scratch::new();
    build(&s.zip, &[Raw::Dir("sub"), Raw::Link("link", "sub")]);
    unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap();
    build(&s.zip, &[Raw::File("link/x", b"x")]);
    let err = unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"entry "link/x" would be written through the symlink "link""#
    );
    assert!(names(&s.root.join("sub")).is_empty());
}

#[test]
fn a_symlink_or_hard_link_at_the_destination_is_replaced_not_written_through() {
    let s = Scratch::new();
    let victim = s.outside("victim");
    fs::write(&victim, "original").unwrap();
    symlink(&victim, s.root.join("soft")).unwrap();
    fs::hard_link(&victim, s.root.join("hard")).unwrap();
    build(
        &s.zip,
        &[Raw::File("soft", b"new"), Raw::File("hard", b"new")],
    );
    unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "original");
    for name in ["soft", "hard"] {
        let path = s.root.join(name);
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert_eq!(fs::read_to_string(path).unwrap(), "new");
    }
}

#[test]
fn later_archives_add_to_and_overwrite_earlier_ones_but_never_replace_a_directory() {
    let s = Scratch::new();
    build(
        &s.zip,
        &[
            Raw::File("a", b"1"),
            Raw::File("keep/k", b"k"),
            Raw::Link("l", "a"),
        ],
    );
    unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap();
    build(
        &s.zip,
        &[
            Raw::File("a", b"2"),
            Raw::File("new", b"n"),
            Raw::File("l", b"file now"),
        ],
    );
    unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap();
    let read = |p: &str| fs::read_to_string(s.root.join(p)).unwrap();
    assert_eq!(
        [read("a"), read("keep/k"), read("new"), read("l")],
        ["2", "k", "n", "file now"]
    );
    build(&s.zip, &[Raw::File("keep", b"x")]);
    let err = unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap_err();
    assert_eq!(err.to_string(), r#"entry "keep" would replace a directory"#);
    build(&s.zip, &[Raw::File("a/b", b"x")]);
    let err = unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"entry "a/b" needs "a" to be a directory, but it is a file"#
    );
}

#[test]
fn symlink_targets_are_created_in_their_lexical_form() {
    let s = Scratch::new();
    // Verbatim, `x -> up/..` would climb from where `up` points (the root) to its parent.
    build(
        &s.zip,
        &[
            Raw::Dir("deep/er/dir"),
            Raw::Link("deep/er/dir/up", "../../.."),
            Raw::Link("deep/er/dir/x", "up/.."),
            Raw::Link("deep/er/dir/y", "./../dir/../../er"),
        ],
    );
    unpack(&s.zip, &s.root, &Limits::DEFAULT).unwrap();
    let target = |name: &str| fs::read_link(s.root.join("deep/er/dir").join(name)).unwrap();
    assert_eq!(target("up").to_str(), Some("../../.."));
    assert_eq!(target("x").to_str(), Some("."));
    assert_eq!(target("y").to_str(), Some("../../er"));
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the needle")
}

fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    while let Some(at) = bytes.windows(from.len()).position(|w| w == from) {
        bytes[at..at + to.len()].copy_from_slice(to);
    }
}
