//! Making archives: globs, `exclude`, unmatched patterns, symlinks, modes, the round trip, and
//! reading one file back out.

use std::fs;
use std::os::unix::fs::symlink;

use lockstep_archive::{Created, Limits, copy_file, create, inspect, unpack};

use crate::support::{Scratch, file, listing, mode, set_mode};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A build directory as a `build` job leaves it.
fn build_tree(s: &Scratch) {
    file(&s.root, "out/app", "binary");
    set_mode(&s.root.join("out/app"), 0o775);
    file(&s.root, "out/lib/a.so", "library");
    file(&s.root, "out/lib/a.log", "noise");
    fs::create_dir(s.root.join("out/empty")).unwrap();
    file(&s.root, "src/main.rs", "fn main() {}");
    file(&s.root, "src/mod/notes.md", "deep");
    file(&s.root, "docs/readme.md", "docs");
    file(&s.root, "notes.md", "top");
    file(&s.root, "top.log", "noise");
}

#[test]
fn directories_globs_and_excludes_select_the_entries() {
    let s = Scratch::new();
    build_tree(&s);
    let paths = [
        "out",
        "src/*.rs",
        "**/*.md",
        "missing",
        "out/lib/*.txt",
        "top.log",
    ];
    let created = create(&s.root, &strings(&paths), &strings(&["**/*.log"]), &s.zip).unwrap();
    let expected = Created {
        entries: 9,
        bytes: ["binary", "library", "fn main() {}", "deep", "docs", "top"]
            .iter()
            .map(|c| c.len() as u64)
            .sum(),
        // `top.log` matched only what `exclude` took away.
        unmatched: strings(&["missing", "out/lib/*.txt", "top.log"]),
    };
    assert_eq!(created, expected);
    assert_eq!(
        listing(&s.zip),
        [
            "docs/readme.md",
            "notes.md",
            "out/",
            "out/app*",
            "out/empty/",
            "out/lib/",
            "out/lib/a.so",
            "src/main.rs",
            "src/mod/notes.md",
        ]
    );
}

/// The paths archived from a small fixed tree by `paths` and `exclude`.
fn check(paths: &[&str], exclude: &[&str], expected: &[&str]) {
    let s = Scratch::new();
    for path in ["top.txt", "d/x.txt", "d/z.rs", "d/e/y.txt"] {
        file(&s.root, path, "x");
    }
    create(&s.root, &strings(paths), &strings(exclude), &s.zip).unwrap();
    let got: Vec<String> = inspect(&s.zip, &Limits::DEFAULT)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(got, expected, "paths {paths:?}, exclude {exclude:?}");
}

#[test]
fn glob_table() {
    // `*` and `?` stay within one directory; `**` crosses any number of them, or none.
    check(&["*.txt"], &[], &["top.txt"]);
    check(&["**/*.txt"], &[], &["d/e/y.txt", "d/x.txt", "top.txt"]);
    check(&["d/**/y.txt"], &[], &["d/e/y.txt"]);
    check(&["d/**/*.txt"], &[], &["d/e/y.txt", "d/x.txt"]);
    check(&["d/?.txt"], &[], &["d/x.txt"]);
    check(&["d/[xz].*"], &[], &["d/x.txt", "d/z.rs"]);
    check(&["d/*"], &[], &["d/e", "d/e/y.txt", "d/x.txt", "d/z.rs"]);
    // A literal path, written loosely, is still that path.
    check(&["./d/../top.txt"], &[], &["top.txt"]);
    check(&["d/e/"], &[], &["d/e", "d/e/y.txt"]);
    // Excluding a directory takes everything under it; `.` is the whole root.
    check(&["d"], &["d/e"], &["d", "d/x.txt", "d/z.rs"]);
    check(&["d/e/y.txt"], &["d"], &[]);
    check(&["."], &["d"], &["top.txt"]);
    check(&["**"], &["**/*.txt"], &["d", "d/e", "d/z.rs"]);
    // Overlapping patterns store each path once.
    check(
        &["d", "d/e", "**/y.txt"],
        &[],
        &["d", "d/e", "d/e/y.txt", "d/x.txt", "d/z.rs"],
    );
}

#[test]
fn patterns_that_leave_the_root_are_refused() {
    let s = Scratch::new();
    for pattern in ["../x", "/etc", "a/../../x", "", "C:/x"] {
        let err = create(&s.root, &strings(&["ok", pattern]), &[], &s.zip).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("pattern {pattern:?} leaves the build directory; paths are relative to it")
        );
    }
    let err = create(&s.root, &[], &strings(&["a["]), &s.zip).unwrap_err();
    assert_eq!(err.to_string(), r#"pattern "a[" is not a valid glob"#);
}

#[test]
fn a_file_whose_name_could_not_be_unpacked_is_refused() {
    let s = Scratch::new();
    file(&s.root, "d/a\\b", "x");
    let err = create(&s.root, &strings(&["d"]), &[], &s.zip).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"file "d/a\\b" cannot be archived: its name contains a backslash or a NUL byte"#
    );
}

#[test]
fn symlinks_are_archived_as_links_and_never_followed() {
    let s = Scratch::new();
    file(&s.root, "out/real.txt", "real");
    symlink("real.txt", s.root.join("out/inner")).unwrap();
    symlink("out", s.root.join("link")).unwrap();
    symlink("/nonexistent/target", s.root.join("abs")).unwrap();
    // Through the symlinked directory nothing matches: it is not entered.
    for through in [strings(&["link/real.txt"]), strings(&["link/*"])] {
        let created = create(&s.root, &through, &[], &s.zip).unwrap();
        assert_eq!((created.entries, created.unmatched), (0, through));
    }
    let paths = strings(&["link", "out", "**/real.txt"]);
    assert!(
        create(&s.root, &paths, &[], &s.zip)
            .unwrap()
            .unmatched
            .is_empty()
    );
    assert_eq!(
        listing(&s.zip),
        [
            "link -> out",
            "out/",
            "out/inner -> real.txt",
            "out/real.txt"
        ]
    );
    // Any target is archived; reading such an archive is what refuses it.
    create(&s.root, &strings(&["abs"]), &[], &s.zip).unwrap();
    assert_eq!(
        inspect(&s.zip, &Limits::DEFAULT).unwrap_err().to_string(),
        r#"entry "abs" is a symlink to "/nonexistent/target", outside the build directory"#
    );
}

#[test]
fn the_same_tree_gives_the_same_archive() {
    let (a, b) = (Scratch::new(), Scratch::new());
    for s in [&a, &b] {
        build_tree(s);
        create(&s.root, &strings(&["."]), &[], &s.zip).unwrap();
    }
    assert_eq!(fs::read(&a.zip).unwrap(), fs::read(&b.zip).unwrap());
}

#[test]
fn a_round_trip_keeps_contents_modes_links_and_empty_directories() {
    let s = Scratch::new();
    build_tree(&s);
    symlink("lib/a.so", s.root.join("out/current")).unwrap();
    set_mode(&s.root.join("out/lib/a.so"), 0o600);
    create(&s.root, &strings(&["out"]), &[], &s.zip).unwrap();
    let to = s.outside("unpacked");
    fs::create_dir(&to).unwrap();
    let unpacked = unpack(&s.zip, &to, &Limits::DEFAULT).unwrap();
    assert_eq!((unpacked.entries, unpacked.bytes), (7, 6 + 7 + 5));
    assert_eq!(fs::read_to_string(to.join("out/app")).unwrap(), "binary");
    assert_eq!(
        fs::read_to_string(to.join("out/current")).unwrap(),
        "library"
    );
    assert_eq!(
        fs::read_link(to.join("out/current")).unwrap().to_str(),
        Some("lib/a.so")
    );
    // Executable or not is what is kept; `test` runs the binary `build` made.
    assert_eq!(mode(&to.join("out/app")), 0o755);
    assert_eq!(mode(&to.join("out/lib/a.so")), 0o644);
    assert!(to.join("out/empty").is_dir());
}

#[test]
fn copy_file_serves_one_regular_file() {
    let s = Scratch::new();
    build_tree(&s);
    symlink("app", s.root.join("out/link")).unwrap();
    create(&s.root, &strings(&["out"]), &[], &s.zip).unwrap();
    let copy = |path: &str| {
        let mut out = Vec::new();
        copy_file(&s.zip, path, &mut out, &Limits::DEFAULT).map(|n| (n, out))
    };
    assert_eq!(copy("out/app").unwrap(), (6, b"binary".to_vec()));
    assert_eq!(copy("./out//app").unwrap().1, b"binary");
    let err = |path: &str| copy(path).unwrap_err().to_string();
    assert_eq!(err("out/nope"), r#"entry "out/nope" is not in the archive"#);
    assert_eq!(
        err("../out/app"),
        r#"entry "../out/app" is not in the archive"#
    );
    assert_eq!(err("out/lib"), r#"entry "out/lib" is not a regular file"#);
    assert_eq!(err("out/link"), r#"entry "out/link" is not a regular file"#);
    let small = Limits {
        max_bytes: 5,
        ..Limits::DEFAULT
    };
    let mut out = Vec::new();
    let too_big = copy_file(&s.zip, "out/app", &mut out, &small).unwrap_err();
    assert_eq!(
        too_big.to_string(),
        "the archive holds more than the limit of 5 bytes uncompressed"
    );
}
