//! The docs check: the README and the guide are product, so every command block in them is
//! either run here as written or names the test that covers what it relies on, every block of
//! our config parses, and every man page is lint-clean.
//!
//! The rules (README.md, "Tests"): every fenced block of `README.md` and `docs/GUIDE.md` has a
//! language; a `sh` block is preceded by a marker comment,
//!
//! ```text
//! <!-- docs: run by tests/docs.rs::NAME -->          NAME below runs the block as written
//! <!-- docs: run by SCRIPT[, SCRIPT] -->             each command is in one of the scripts
//! <!-- docs: covered by FILE[::TEST] -->             TEST exists and checks what it relies on
//! <!-- docs: not run: REASON -->                     none of our files or commands in it
//! ```
//!
//! a `conf` block parses as `/etc/qemu-ifup-rs.conf` (or as the ACL when its first line names
//! a file under `/etc/qemu/`), and a block of any other kind hides no command of ours.
//! [`every_block_is_run_or_covered`] checks all of that without root; the `README`/`GUIDE`
//! tests below run the blocks marked `run by tests/docs.rs::NAME`, each in network and mount
//! namespaces of its own (nothing of the host is touched: `/usr/libexec` is a tmpfs there,
//! `/etc` a private directory), as root, against the binaries cargo built.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{ifdown, ifup, warnings, IFDOWN, IFUP};
use ifup_policy::{
    parse_acl, parse_config, Caller as AclCaller, LineError, MemSource, PolicyError,
};
use ifup_testkit::privileged::{self, install_copy, run_privileged, Caller, Install, PrivateEtc};
use ifup_testkit::{
    add_bridge_with_default_route, add_tap, add_veth, expect_link, ip, link, routes, run,
    run_with_own_sysfs, tapio::TapQueue, taps, tool, wait_until, GuestImage, Link, Netns, Qemu,
    RunOutput, CLEAN_PATH, PRIVATE_MOUNT_SH, QEMU_TIMEOUT,
};
/// The documents whose blocks are checked.
const DOCS: [&str; 2] = ["README.md", "docs/GUIDE.md"];
/// The languages a fenced block may have.
const LANGS: [&str; 6] = ["sh", "conf", "text", "xml", "ini", "yaml"];
/// Words that make a block one of ours: it may not be waived with `not run`, and outside a `sh`
/// block a line may not start with a command.
const OURS: [&str; 13] = [
    "qemu-ifup",
    "qemu-ifdown",
    "setcap",
    "getcap",
    "install -",
    "ip tuntap",
    "/etc/qemu",
    "dpkg-divert",
    "apt install",
    "dnf install",
    "helper=",
    "script=",
    "bridge.conf",
];
/// Commands that must not stand in a block that is not `sh`.
const COMMANDS: [&str; 13] = [
    "sudo ",
    "install ",
    "setcap ",
    "getcap ",
    "ip ",
    "qemu-system-x86_64 ",
    "cargo ",
    "apt ",
    "dpkg",
    "nmcli ",
    "systemctl ",
    "sysctl ",
    "virsh ",
];
/// The user the README's and the guide's commands name (`alice`), with a uid of this file.
const ALICE: u32 = 12370;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

// ---------------------------------------------------------------------------------------------
// Markdown: fenced blocks and their markers.

/// What a marker comment says about the block after it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    /// `run by tests/docs.rs::NAME`.
    RunByTest(String),
    /// `run by SCRIPT, SCRIPT`.
    RunByScripts(Vec<String>),
    /// `covered by FILE` or `covered by FILE::TEST`.
    CoveredBy { file: String, test: Option<String> },
    /// `not run: REASON`.
    NotRun(String),
}

/// A fenced block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    /// The lines between the fences, without the fence's own indentation, each ending in `\n`.
    text: String,
    marker: Option<Marker>,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The commands of a `sh` block: continuation lines joined, comments, blank lines and
    /// heredoc bodies left out, a trailing `  # comment` cut.
    fn commands(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        let mut heredoc: Option<String> = None;
        for line in self.text.lines() {
            if let Some(end) = &heredoc {
                if line.trim() == end {
                    heredoc = None;
                }
                continue;
            }
            let line = strip_comment(line);
            if current.is_empty() && line.trim().is_empty() {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                current.push_str(head.trim_start());
                continue;
            }
            current.push_str(line.trim_start());
            if let Some((_, word)) = current.split_once("<<") {
                heredoc = Some(word.trim().trim_matches('\'').to_owned());
            }
            out.push(std::mem::take(&mut current).trim_end().to_owned());
        }
        out
    }
}

/// `line` without a trailing comment: `#` after two or more spaces, or at the start.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find("  #") {
        Some(i) => line[..i].trim_end(),
        None => line,
    }
}

/// Parse a marker comment's content (`docs: …` without the comment's brackets).
fn parse_marker(s: &str) -> Result<Marker, String> {
    let s = s.trim();
    if let Some(reason) = s.strip_prefix("not run:") {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err("`not run:` needs a reason".into());
        }
        return Ok(Marker::NotRun(reason.to_owned()));
    }
    if let Some(what) = s.strip_prefix("run by ") {
        let what = what.trim();
        if let Some(name) = what.strip_prefix("tests/docs.rs::") {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad test name {name:?}"));
            }
            return Ok(Marker::RunByTest(name.to_owned()));
        }
        let scripts: Vec<String> = what.split(',').map(|p| p.trim().to_owned()).collect();
        if scripts.iter().any(|p| p.is_empty() || p.contains("::")) {
            return Err(format!("bad script list {what:?}"));
        }
        return Ok(Marker::RunByScripts(scripts));
    }
    if let Some(what) = s.strip_prefix("covered by ") {
        let what = what.trim();
        let (file, test) = match what.split_once("::") {
            Some((f, t)) => (f, Some(t.to_owned())),
            None => (what, None),
        };
        if file.is_empty() || test.as_deref() == Some("") {
            return Err(format!("bad reference {what:?}"));
        }
        return Ok(Marker::CoveredBy {
            file: file.to_owned(),
            test,
        });
    }
    Err(format!(
        "unknown marker {s:?} (expected `run by …`, `covered by …` or `not run: …`)"
    ))
}

/// The fenced blocks of a Markdown text, each with the marker comment just before it, or the
/// problems found: a fence without a language or never closed, a marker that is malformed or
/// not followed by a block, an indented code block.
fn parse_markdown(file: &str, text: &str) -> Result<Vec<Block>, Vec<String>> {
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    // (fence, its indentation, its line, language, marker, lines so far)
    let mut open: Option<(String, usize, usize, String, Option<Marker>, String)> = None;
    let mut marker: Option<(usize, Marker)> = None;
    let mut prev_blank = true;
    // Whether the text before the current blank run belongs to a list (where indented lines
    // continue the item rather than start a code block).
    let mut in_list = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some((fence, fence_indent, start, lang, m, body)) = &mut open {
            if trimmed.starts_with(fence.as_str()) && trimmed.trim_end().chars().all(|c| c == '`') {
                blocks.push(Block {
                    file: file.to_owned(),
                    line: *start,
                    lang: lang.clone(),
                    text: std::mem::take(body),
                    marker: m.take(),
                });
                open = None;
                prev_blank = false;
            } else {
                let cut = indent.min(*fence_indent);
                body.push_str(&line[cut..]);
                body.push('\n');
            }
            continue;
        }
        if indent <= 3 && trimmed.starts_with("```") {
            let ticks = trimmed.chars().take_while(|&c| c == '`').count();
            let lang = trimmed[ticks..].trim().to_owned();
            if lang.is_empty() {
                problems.push(format!("{file}:{n}: a fenced block without a language"));
            } else if !LANGS.contains(&lang.as_str()) {
                problems.push(format!(
                    "{file}:{n}: language {lang:?} is not one of {LANGS:?}"
                ));
            }
            let m = marker.take().map(|(_, m)| m);
            open = Some(("`".repeat(ticks), indent, n, lang, m, String::new()));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("<!-- docs:") {
            match rest.trim_end().strip_suffix("-->") {
                None => problems.push(format!(
                    "{file}:{n}: a docs marker must end with --> on its line"
                )),
                Some(content) => match parse_marker(content) {
                    Ok(m) => {
                        if let Some((at, _)) = marker.replace((n, m)) {
                            problems.push(format!("{file}:{at}: a marker without a block"));
                        }
                    }
                    Err(e) => problems.push(format!("{file}:{n}: {e}")),
                },
            }
            continue;
        }
        if trimmed.is_empty() {
            prev_blank = true;
            continue;
        }
        if let Some((at, _)) = marker.take() {
            problems.push(format!(
                "{file}:{at}: a marker must stand right before its block"
            ));
        }
        let list_item = trimmed.starts_with("- ")
            || trimmed.starts_with("* ")
            || trimmed
                .split_once(". ")
                .is_some_and(|(num, _)| !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()));
        if indent >= 4 && prev_blank && !in_list {
            problems.push(format!(
                "{file}:{n}: an indented code block: use a fenced block with a language"
            ));
        }
        if indent == 0 {
            in_list = list_item;
        } else if list_item {
            in_list = true;
        }
        prev_blank = false;
    }
    if let Some((_, _, start, ..)) = open {
        problems.push(format!("{file}:{start}: a fenced block is never closed"));
    }
    if let Some((at, _)) = marker {
        problems.push(format!("{file}:{at}: a marker without a block"));
    }
    if problems.is_empty() {
        Ok(blocks)
    } else {
        Err(problems)
    }
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Every block of the checked documents (panics on Markdown problems; the check reports them).
fn all_blocks() -> Vec<Block> {
    DOCS.iter()
        .flat_map(|f| parse_markdown(f, &read(f)).unwrap_or_else(|p| panic!("{}", p.join("\n"))))
        .collect()
}

/// The blocks marked `run by tests/docs.rs::NAME`, in document order; panics unless there are
/// `count`.
fn blocks_for(name: &str, count: usize) -> Vec<Block> {
    let found: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| b.marker == Some(Marker::RunByTest(name.to_owned())))
        .collect();
    assert_eq!(
        found.len(),
        count,
        "blocks marked `run by tests/docs.rs::{name}`: {found:#?}"
    );
    found
}

// ---------------------------------------------------------------------------------------------
// The check (no root needed).

/// The command lines of the README's "Packages" section, trailing comments cut: what
/// `scripts/package-test.sh` takes with `run_readme`/`readme_cmd`.
fn readme_package_commands() -> Vec<String> {
    let text = read("README.md");
    let start = text
        .find("\n## Packages")
        .expect("README has a Packages section");
    let section = &text[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    parse_markdown("README.md", &section[..end])
        .unwrap()
        .into_iter()
        .filter(|b| b.lang == "sh")
        .flat_map(|b| b.commands())
        .collect()
}

/// The `'…'` arguments of `run_readme` and `readme_cmd` in a script.
fn readme_prefixes(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for call in ["run_readme '", "readme_cmd '"] {
        let mut rest = script;
        while let Some(i) = rest.find(call) {
            rest = &rest[i + call.len()..];
            if let Some(end) = rest.find('\'') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

/// Whether `script` runs `cmd`: a line of it is the command (a leading `sudo ` or `bash `
/// aside), or it takes the command from the README's Packages section by a prefix.
fn script_runs(script: &str, readme: &[String], cmd: &str) -> bool {
    let bare = cmd.strip_prefix("sudo ").unwrap_or(cmd);
    let verbatim = script.lines().map(str::trim).any(|l| {
        let l = l.strip_prefix("bash ").unwrap_or(l);
        l.strip_prefix("sudo ").unwrap_or(l) == bare
    });
    verbatim
        || (readme.iter().any(|r| r == cmd)
            && readme_prefixes(script)
                .iter()
                .any(|p| cmd.starts_with(p.as_str())))
}

/// Parse a `conf` block as our config or, when its first line names a file under `/etc/qemu/`,
/// as the ACL. Included files read as empty.
fn check_conf(b: &Block) -> Result<(), String> {
    let first = b.text.lines().next().unwrap_or_default();
    let acl = first.starts_with("# /etc/qemu/");
    let main = if acl {
        "/etc/qemu/bridge.conf"
    } else {
        "/etc/qemu-ifup-rs.conf"
    };
    let mut src = MemSource::new();
    src.insert_text(main, &b.text);
    for _ in 0..16 {
        let result = if acl {
            parse_acl(
                Path::new(main),
                &src,
                &AclCaller {
                    uid: 0,
                    gid: 0,
                    groups: vec![],
                },
            )
            .map(drop)
        } else {
            parse_config(Path::new(main), &src, ifup_policy::Trust::RootOwnedOnly).map(drop)
        };
        match result {
            Ok(()) => return Ok(()),
            Err(
                PolicyError::Config {
                    problem: LineError::IncludeMissing { path },
                    ..
                }
                | PolicyError::Acl {
                    problem: LineError::IncludeMissing { path },
                    ..
                },
            ) => {
                src.insert_text(path, "");
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("too many includes".into())
}

/// Every problem with one block (see the module docs).
fn block_problems(b: &Block, readme: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let at = b.at();
    if b.lang == "sh" && b.marker.is_none() {
        out.push(format!(
            "{at}: a sh block needs a marker (`<!-- docs: run by …/covered by …/not run: … -->`)"
        ));
    }
    if b.lang == "conf" {
        if let Err(e) = check_conf(b) {
            out.push(format!("{at}: this config does not parse: {e}"));
        }
    }
    if b.lang != "sh" {
        for line in b.text.lines() {
            let t = line.trim_start();
            if COMMANDS.iter().any(|c| t.starts_with(c)) {
                out.push(format!(
                    "{at}: {t:?} looks like a command: put it in a sh block"
                ));
            }
        }
    }
    match &b.marker {
        None => {}
        Some(Marker::RunByTest(name)) => {
            let me = read("tests/docs.rs");
            if !me.contains(&format!("fn {name}(")) || !me.contains(&format!("\"{name}\"")) {
                out.push(format!(
                    "{at}: tests/docs.rs has no test {name} that runs this block"
                ));
            }
        }
        Some(Marker::RunByScripts(scripts)) => {
            let texts: Vec<(String, String)> = scripts
                .iter()
                .map(|s| {
                    let text = std::fs::read_to_string(root().join(s)).unwrap_or_default();
                    (s.clone(), text)
                })
                .collect();
            for (s, t) in &texts {
                if t.is_empty() {
                    out.push(format!("{at}: {s} does not exist"));
                }
            }
            for cmd in b.commands() {
                if !texts.iter().any(|(_, t)| script_runs(t, readme, &cmd)) {
                    out.push(format!("{at}: none of {scripts:?} runs {cmd:?}"));
                }
            }
        }
        Some(Marker::CoveredBy { file, test }) => {
            match std::fs::read_to_string(root().join(file)) {
                Err(e) => out.push(format!("{at}: {file}: {e}")),
                Ok(text) => {
                    if let Some(test) = test {
                        if !text.contains(&format!("fn {test}(")) {
                            out.push(format!("{at}: {file} has no fn {test}"));
                        }
                    }
                }
            }
        }
        Some(Marker::NotRun(_)) => {
            for word in OURS {
                if b.text.contains(word) {
                    out.push(format!(
                        "{at}: a block with {word:?} in it must be run or covered by a test"
                    ));
                }
            }
        }
    }
    out
}

/// Every block of README.md and docs/GUIDE.md follows the rules of the module docs.
#[test]
fn every_block_is_run_or_covered() {
    let readme = readme_package_commands();
    assert!(!readme.is_empty(), "no commands found in README's Packages");
    let mut problems = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for f in DOCS {
        match parse_markdown(f, &read(f)) {
            Err(p) => problems.extend(p),
            Ok(blocks) => {
                for b in &blocks {
                    problems.extend(block_problems(b, &readme));
                    let kind = match &b.marker {
                        None => format!("{} unmarked", b.lang),
                        Some(Marker::RunByTest(_)) => format!("{} run by tests/docs.rs", b.lang),
                        Some(Marker::RunByScripts(_)) => format!("{} run by a script", b.lang),
                        Some(Marker::CoveredBy { .. }) => format!("{} covered", b.lang),
                        Some(Marker::NotRun(_)) => format!("{} not run", b.lang),
                    };
                    *counts.entry(kind).or_default() += 1;
                }
            }
        }
    }
    eprintln!("blocks of {DOCS:?}: {counts:#?}");
    assert!(
        problems.is_empty(),
        "the docs check found {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The checker itself: it finds what it must find.
#[test]
fn the_checker_finds_unmarked_and_unrunnable_blocks() {
    let md = "Intro.\n\n\
              <!-- docs: not run: host network -->\n\
              ```sh\nsudo setcap cap_net_admin+ep /usr/libexec/qemu-ifup-rs\n```\n\n\
              ```sh\nls\n```\n\n\
              <!-- docs: covered by tests/docs.rs::no_such_test -->\n\
              ```sh\nqemu-system-x86_64 ... \\\n  -netdev tap\n```\n\n\
              ```conf\nbridge br0 colour blue\n```\n\n\
              ```text\nsudo ip link del br0\n```\n\n\
              - a list\n\n      still the list\n\n\
              <!-- docs: run by tests/docs.rs::every_block_is_run_or_covered -->\n\
              ```sh\ntrue  # a comment\n```\n";
    let blocks = parse_markdown("x.md", md).unwrap();
    assert_eq!(blocks.len(), 6, "{blocks:#?}");
    let problems: Vec<String> = blocks.iter().flat_map(|b| block_problems(b, &[])).collect();
    let expect = [
        "x.md:4: a block with \"setcap\" in it must be run or covered",
        "x.md:8: a sh block needs a marker",
        "x.md:13: tests/docs.rs has no fn no_such_test",
        "x.md:18: this config does not parse",
        "x.md:22: \"sudo ip link del br0\" looks like a command",
    ];
    for e in expect {
        assert!(
            problems.iter().any(|p| p.starts_with(e)),
            "{e:?} not in {problems:#?}"
        );
    }
    // The marked block runs by a test that exists here, but that does not run it by name.
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("x.md:31: tests/docs.rs has no test")),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), expect.len() + 2, "{problems:#?}"); // + the second OURS word
    assert_eq!(blocks[2].commands(), ["qemu-system-x86_64 ... -netdev tap"]);
    assert_eq!(blocks[5].commands(), ["true"]);

    for bad in [
        "    indented code\n",
        "```\nno language\n```\n",
        "<!-- docs: covered by -->\n```sh\nx\n```\n",
        "<!-- docs: run by tests/docs.rs::x -->\n\ntext\n",
        "```sh\nnever closed\n",
        "<!-- docs: whatever -->\n```sh\nx\n```\n",
    ] {
        assert!(parse_markdown("y.md", bad).is_err(), "{bad:?}");
    }
}

/// Script coverage: verbatim lines, and the README's Packages commands by prefix.
#[test]
fn scripts_cover_commands_as_written() {
    let script = "bash scripts/test.sh\nrun_readme 'sudo apt install ./target/packages/'\n";
    let readme = vec!["sudo apt install ./target/packages/x.deb".to_owned()];
    assert!(script_runs(script, &readme, "sudo scripts/test.sh"));
    assert!(script_runs(
        script,
        &readme,
        "sudo apt install ./target/packages/x.deb"
    ));
    // A prefix match alone is not enough: the command must be the README's.
    assert!(!script_runs(
        script,
        &readme,
        "sudo apt install ./target/packages/y.deb"
    ));
    assert!(!script_runs(script, &readme, "sudo scripts/demo.sh"));
}

// ---------------------------------------------------------------------------------------------
// Man pages.

/// Every man page of the repository, by its path.
fn man_pages() -> Vec<String> {
    let mut pages = Vec::new();
    for dir in ["docs", "packaging/debian"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let section = name.rsplit('.').next().unwrap_or_default();
            if section.len() == 1 && section.chars().all(|c| ('1'..='8').contains(&c)) {
                pages.push(format!("{dir}/{name}"));
            }
        }
    }
    pages.sort();
    pages
}

/// `mandoc -T lint` (every level, style included) and `groff -ww` (what `man -l` renders with,
/// all warnings) say nothing about any man page.
#[test]
fn man_pages_are_lint_clean() {
    let pages = man_pages();
    assert!(pages.len() >= 4, "{pages:?}");
    let mandoc = tool("mandoc", "mandoc");
    let groff = tool("groff", "groff-base");
    let mut problems = Vec::new();
    for page in &pages {
        let path = root().join(page);
        let lint = Command::new(&mandoc)
            .args(["-T", "lint", "-W", "all"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&lint.stdout).into_owned()
            + &String::from_utf8_lossy(&lint.stderr);
        if !lint.status.success() || !text.trim().is_empty() {
            problems.push(format!("mandoc -T lint {page}: {}\n{text}", lint.status));
        }
        let render = Command::new(&groff)
            .args(["-ww", "-man", "-z", "-t"])
            .arg(&path)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&render.stderr);
        if !render.status.success() || !text.trim().is_empty() {
            problems.push(format!("groff -ww {page}: {}\n{text}", render.status));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Running blocks.

/// A scratch directory of one test, reachable by other uids, removed on drop: `target/release/`
/// holds the binaries cargo built (where the README's and the guide's commands expect them),
/// `passwd` the host's users plus `alice`.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            privileged::suitable_base(tmp()).join(format!("docs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("target/release")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Copies by install(1) in a child: a write descriptor of this process inherited by a
        // child forked by another test thread would make the copy's exec fail (ETXTBSY).
        for (bin, name) in [(IFUP, "qemu-ifup"), (IFDOWN, "qemu-ifdown")] {
            let out = Command::new("install")
                .args(["-m", "0755", bin])
                .arg(dir.join("target/release").join(name))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        passwd.push_str(&format!(
            "alice:x:{ALICE}:{ALICE}:docs test user:/nonexistent:/usr/sbin/nologin\n"
        ));
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        Scratch { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// Writes `text` to `rel` in a child process (see [`Scratch::new`] for why), mode 0755.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let staging = path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&staging, text).unwrap();
        let out = Command::new("install")
            .args(["-m", "0755"])
            .arg(&staging)
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let _ = std::fs::remove_file(staging);
        path
    }

    /// `block.sh`: the stubs, then the text of `blocks` as written.
    fn write_block(&self, blocks: &[&Block]) {
        let mut script = String::from(STUBS);
        for b in blocks {
            script.push_str(&format!("# --- {} as written ---\n", b.at()));
            script.push_str(&b.text);
        }
        self.write("block.sh", &script);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the blocks' shell has besides the commands themselves: the test runs as root, so `sudo`
/// runs the command as is; cargo has built the binaries already (and [`Scratch`] put them in
/// `target/release/`), so `cargo build --release` has nothing to do.
const STUBS: &str = "\
# written by tests/docs.rs
sudo() { \"$@\"; }
cargo() {
    [ \"$*\" = \"build --release\" ] || { echo \"tests/docs.rs: unexpected cargo $*\" >&2; return 1; }
}
";

/// Runs `blocks` with `sh -e` as root, in the calling thread's network namespace and a mount
/// namespace of its own where `/etc/passwd` knows alice, from the scratch directory.
fn run_blocks(s: &Scratch, blocks: &[&Block]) -> RunOutput {
    s.write_block(blocks);
    let script = format!(
        "mount --bind {passwd} /etc/passwd && cd {dir} && exec /bin/sh -e ./block.sh",
        passwd = s.path("passwd").display(),
        dir = s.dir.display()
    );
    run(
        &tool("unshare", "util-linux"),
        &[&PRIVATE_MOUNT_SH[..], &[&script]].concat(),
        &[],
    )
}

#[track_caller]
fn assert_ran(out: &RunOutput, what: &str) {
    assert_eq!(out.code, 0, "{what} failed: {out:#?}");
}

/// A config file in the scratch directory with `text`.
fn config_file(s: &Scratch, name: &str, text: &str) -> String {
    let path = s.path(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `/proc/sys/net/…` of the calling thread's network namespace.
fn sysctl(path: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/{path}"))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_owned()
}

fn kvm_gid() -> u32 {
    let group = std::fs::read_to_string("/etc/group").unwrap();
    group
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some("kvm")).then(|| f.nth(1)?.parse().ok())?
        })
        .expect("no group kvm in /etc/group: the README's setuid install names it (Debian's udev package creates it)")
}

// ---------------------------------------------------------------------------------------------
// Install commands, then a real QEMU with what they installed.

/// How an install test runs QEMU after the block.
struct Boot<'a> {
    /// The shell text that installs the helpers into `/usr/libexec` (a doc block, as written).
    install: String,
    /// Who runs QEMU: `None` is root.
    caller: Option<Caller>,
    /// The private `/etc` QEMU and the helpers see.
    etc: &'a PrivateEtc,
    /// The tap (`ifname=`).
    tap: &'a str,
    /// Whether the guest is to boot (else QEMU is expected to fail before it does).
    boots: bool,
}

/// What became of an install and the QEMU after it.
#[derive(Debug)]
struct Booted {
    /// The install's exit status and output.
    status: String,
    log: String,
    /// `getcap` and `stat` of the two installed helpers, right after the install.
    getcap: String,
    stat: String,
    /// The tap as the guest pinged the host, or `None` if it never got a bridge.
    attached: Option<Link>,
    /// QEMU's exit status and stderr.
    exit_code: i32,
    stderr: String,
}

/// Writes `install.sh` (the stubs, then `install`) and `run.sh` into the scratch directory, and
/// returns the path of `run.sh`. Started by root in a mount namespace of its own, `run.sh` makes
/// `/usr/libexec` a fresh tmpfs (so the host's is never touched), binds the scratch `passwd` over
/// `/etc/passwd`, runs the install from the scratch directory and records its exit status
/// (`install.status`), its output (`install.log`) and what it left (`getcap.out` and `stat.out`
/// of the two helpers), then binds `etc` over `/etc` and execs QEMU with `run.sh`'s arguments, as
/// `caller` (`None`: root). The install's result is recorded, not enforced, so that a broken
/// install still shows what QEMU makes of it.
fn write_install_then_qemu(
    s: &Scratch,
    install: &str,
    etc: &PrivateEtc,
    caller: Option<&Caller>,
) -> PathBuf {
    s.write("install.sh", &format!("{STUBS}{install}"));
    let as_caller = caller.map_or_else(String::new, |c| c.setpriv_args().join(" ") + " ");
    s.write(
        "run.sh",
        &format!(
            "# written by tests/docs.rs: the install, then QEMU\n\
             set -e\n\
             mount -t tmpfs -o mode=0755 docs-libexec /usr/libexec\n\
             mount --bind {dir}/passwd /etc/passwd\n\
             cd {dir}\n\
             set +e\n\
             /bin/sh -e ./install.sh >install.log 2>&1\n\
             echo $? >install.status\n\
             [ \"$(cat install.status)\" = 0 ] || {{ echo 'tests/docs.rs: the install failed:'; cat install.log; }} >&2\n\
             getcap /usr/libexec/qemu-ifup-rs /usr/libexec/qemu-ifdown-rs >getcap.out 2>&1\n\
             stat -c '%n %U %G %a' /usr/libexec/qemu-ifup-rs /usr/libexec/qemu-ifdown-rs >stat.out 2>&1\n\
             set -e\n\
             mount --bind {etc} /etc\n\
             exec {as_caller}{qemu} \"$@\"\n",
            dir = s.dir.display(),
            etc = etc.path().display(),
            qemu = tool("qemu-system-x86_64", "qemu-system-x86").display(),
        ),
    )
}

/// Runs `boot.install` and then a real QEMU (TCG, the test guest) as `boot.caller` with
/// `script=/usr/libexec/qemu-ifup-rs,downscript=/usr/libexec/qemu-ifdown-rs` and `boot.etc` over
/// `/etc`, both through [`write_install_then_qemu`]'s `run.sh`, found by QEMU's spawner as
/// `qemu-system-x86_64`. The guest pings 10.0.2.1.
fn install_and_boot(s: &Scratch, boot: &Boot, guest_ip: &str) -> Booted {
    privileged::require_setuid_capable();
    let run_sh = write_install_then_qemu(s, &boot.install, boot.etc, boot.caller.as_ref());
    let wrappers = s.path("bin");
    std::fs::create_dir_all(&wrappers).unwrap();
    s.write(
        "bin/qemu-system-x86_64",
        &format!(
            "#!/bin/sh\nPATH={CLEAN_PATH}\nexport PATH\n\
             exec unshare --mount --propagation private -- /bin/sh {} \"$@\"\n",
            run_sh.display()
        ),
    );
    let image = GuestImage::get(&privileged::suitable_base(tmp()));
    let mut vm = Qemu::options(&image, boot.tap)
        .script("/usr/libexec/qemu-ifup-rs")
        .downscript("/usr/libexec/qemu-ifdown-rs")
        .env("PATH", &format!("{}:{CLEAN_PATH}", wrappers.display()))
        .guest_ip(guest_ip)
        .ping("10.0.2.1")
        .spawn();
    let mut attached = None;
    if boot.boots {
        vm.assert_pinged(None);
        attached = link(boot.tap).filter(|l| l.master.is_some());
    }
    let exit = vm.wait_exit(QEMU_TIMEOUT);
    Booted {
        status: s.read("install.status").trim().to_owned(),
        log: s.read("install.log"),
        getcap: s.read("getcap.out"),
        stat: s.read("stat.out"),
        attached,
        exit_code: exit.code,
        stderr: exit.stderr,
    }
}

/// One world for the install tests: a namespace with br0 (10.0.2.1/24) carrying the default
/// route, alice's persistent tap `vm-alice0`, and a private `/etc` whose ACL allows br0 (and no
/// config file: the bridge is the default route's, as the README's install leaves it).
fn install_world(name: &str) -> (Netns, PrivateEtc) {
    let ns = Netns::new();
    add_bridge_with_default_route("br0", "10.0.2.1/24");
    add_tap("vm-alice0", Some(ALICE), None);
    let etc = PrivateEtc::new(tmp(), &format!("docs-{name}"));
    etc.write("qemu/bridge.conf", "allow br0\n");
    (ns, etc)
}

/// Runs `install` in an [`install_world`] named `name`, then boots alice's VM (with `groups` as
/// her supplementary groups) on her tap as `guest_ip`. The namespace lives as long as the
/// returned [`Netns`].
fn alice_installs_and_boots(
    name: &str,
    install: String,
    groups: &[u32],
    guest_ip: &str,
) -> (Netns, PrivateEtc, Booted) {
    let (ns, etc) = install_world(name);
    let s = Scratch::new(name);
    let booted = install_and_boot(
        &s,
        &Boot {
            install,
            caller: Some(Caller::new(ALICE, ALICE).with_groups(groups)),
            etc: &etc,
            tap: "vm-alice0",
            boots: true,
        },
        guest_ip,
    );
    (ns, etc, booted)
}

/// The install went through, the helpers got what it promises, alice's VM reached the host
/// through br0, and when it stopped qemu-ifdown (run as alice, privileged) detached the tap.
#[track_caller]
fn assert_installed_and_detached(b: &Booted) {
    assert_eq!(b.status, "0", "the install failed: {b:#?}");
    let tap = b
        .attached
        .as_ref()
        .unwrap_or_else(|| panic!("the tap never joined br0: {b:#?}"));
    assert_eq!(tap.master.as_deref(), Some("br0"), "{b:#?}");
    assert_eq!(b.exit_code, 0, "{b:#?}");
    assert!(
        !b.stderr.contains("qemu-ifup: error:") && !b.stderr.contains("qemu-ifdown: error:"),
        "{b:#?}"
    );
    let after = expect_link("vm-alice0");
    assert_eq!(
        after.master, None,
        "qemu-ifdown left the tap attached: {b:#?}"
    );
    assert!(!after.up, "{after:#?}");
}

const BOTH_CAPS: &str = "/usr/libexec/qemu-ifup-rs cap_net_admin=ep\n\
                         /usr/libexec/qemu-ifdown-rs cap_net_admin=ep\n";

/// README, "Or file capabilities": the block as written installs both helpers with
/// `cap_net_admin+ep`, and alice's QEMU (no supplementary groups) attaches and detaches her tap.
#[test]
fn readme_file_caps_install() {
    let [b] = <[Block; 1]>::try_from(blocks_for("readme_file_caps_install", 1)).unwrap();
    let (_ns, _etc, booted) =
        alice_installs_and_boots("readme-fcaps", b.text.clone(), &[], "10.0.2.21/24");
    assert_eq!(booted.getcap, BOTH_CAPS, "{booted:#?}");
    assert_installed_and_detached(&booted);
}

/// The same test with the two-file `setcap` line the README once had: `setcap` sets the first
/// file and fails on the second, and a user's VM then starts but leaves its tap attached. This is
/// what [`readme_file_caps_install`] catches.
#[test]
fn the_old_two_file_setcap_line_leaves_the_tap_attached() {
    let [b] = <[Block; 1]>::try_from(blocks_for("readme_file_caps_install", 1)).unwrap();
    let old: String = b
        .text
        .lines()
        .filter(|l| !l.starts_with("setcap "))
        .chain(["setcap cap_net_admin+ep /usr/libexec/qemu-ifup-rs /usr/libexec/qemu-ifdown-rs"])
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(old, b.text);
    let (_ns, _etc, booted) = alice_installs_and_boots("old-setcap", old, &[], "10.0.2.22/24");
    assert_ne!(booted.status, "0", "{booted:#?}");
    assert_eq!(
        booted.getcap, "/usr/libexec/qemu-ifup-rs cap_net_admin=ep\n",
        "{booted:#?}"
    );
    assert!(booted.attached.is_some(), "{booted:#?}");
    assert!(
        booted.stderr.contains("qemu-ifdown: error: ") && booted.stderr.contains("CAP_NET_ADMIN"),
        "{booted:#?}"
    );
    assert_eq!(
        expect_link("vm-alice0").master.as_deref(),
        Some("br0"),
        "with the old line the tap stays attached"
    );
}

/// README, "Setuid root, for group kvm only": the block as written installs both helpers setuid
/// root, group kvm, mode 4750; alice in group kvm attaches and detaches her tap.
#[test]
fn readme_setuid_install() {
    let [b] = <[Block; 1]>::try_from(blocks_for("readme_setuid_install", 1)).unwrap();
    let kvm = kvm_gid();
    let (_ns, _etc, booted) =
        alice_installs_and_boots("readme-setuid", b.text.clone(), &[kvm], "10.0.2.23/24");
    assert_eq!(
        booted.stat,
        "/usr/libexec/qemu-ifup-rs root kvm 4750\n/usr/libexec/qemu-ifdown-rs root kvm 4750\n",
        "{booted:#?}"
    );
    assert_eq!(booted.getcap, "", "{booted:#?}");
    assert_installed_and_detached(&booted);
}

/// GUIDE, "From source": the block as written (`cargo build --release` has nothing left to do;
/// `sudo` runs as root) installs both helpers with the capability, its `getcap` prints both, and
/// alice's QEMU attaches and detaches her tap.
#[test]
fn guide_install_from_source() {
    let [b] = <[Block; 1]>::try_from(blocks_for("guide_install_from_source", 1)).unwrap();
    let (_ns, _etc, booted) =
        alice_installs_and_boots("guide-source", b.text.clone(), &[], "10.0.2.24/24");
    assert_eq!(booted.getcap, BOTH_CAPS, "{booted:#?}");
    // The block's own getcap prints what its comment says.
    assert!(booted.log.ends_with(BOTH_CAPS), "{booted:#?}");
    assert!(
        booted
            .stat
            .contains("/usr/libexec/qemu-ifup-rs root root 755"),
        "{booted:#?}"
    );
    assert_installed_and_detached(&booted);
}

// ---------------------------------------------------------------------------------------------
// Messages the docs quote.

/// README, "Exit status": the line a helper without privilege prints when a normal user's QEMU
/// runs it (a plain copy run as uid 65534 on a tap on the default route's bridge), exactly.
#[test]
fn readme_error_line() {
    let [b] = <[Block; 1]>::try_from(blocks_for("readme_error_line", 1)).unwrap();
    let _ns = Netns::new();
    add_bridge_with_default_route("br0", "10.0.2.1/24");
    add_tap("vmtap0", None, None);
    let etc = PrivateEtc::new(tmp(), "docs-error-line");
    let plain = install_copy(tmp(), Path::new(IFUP), Install::Plain);
    let before = expect_link("vmtap0");
    let out = run_privileged(&etc, &Caller::new(65534, 65534), &plain, &["vmtap0"], &[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.stderr, b.text,
        "the README's line is not what the helper prints"
    );
    assert_eq!(expect_link("vmtap0"), before, "nothing else was changed");
}

/// GUIDE, "Reading the error": QEMU run by root with the helpers in `/usr/libexec` and a config
/// whose third line names a bridge that does not exist prints our line exactly, and QEMU's line
/// as shown (`...` standing for the rest of the `-netdev` option).
#[test]
fn guide_reading_the_error() {
    let [b] = <[Block; 1]>::try_from(blocks_for("guide_reading_the_error", 1)).unwrap();
    let lines: Vec<&str> = b.text.lines().collect();
    assert_eq!(lines.len(), 2, "{b:#?}");
    let _ns = Netns::new();
    add_bridge_with_default_route("br0", "10.0.2.1/24");
    let etc = PrivateEtc::new(tmp(), "docs-reading-the-error");
    etc.write(
        "qemu-ifup-rs.conf",
        "# written by tests/docs.rs\n# the guide's example names a bridge that does not exist\nbridge br9\n",
    );
    let s = Scratch::new("reading-the-error");
    let booted = install_and_boot(
        &s,
        &Boot {
            install: "install -m 0755 target/release/qemu-ifup /usr/libexec/qemu-ifup-rs\n\
                      install -m 0755 target/release/qemu-ifdown /usr/libexec/qemu-ifdown-rs\n"
                .to_owned(),
            caller: None,
            etc: &etc,
            tap: "vm-web0",
            boots: false,
        },
        "10.0.2.25/24",
    );
    assert_eq!(booted.status, "0", "{booted:#?}");
    assert_ne!(booted.exit_code, 0, "{booted:#?}");
    assert!(
        booted.stderr.lines().any(|l| l == lines[0]),
        "our line {:?} is not in QEMU's stderr: {booted:#?}",
        lines[0]
    );
    let parts: Vec<&str> = lines[1].split("...").collect();
    let matches_qemu_line = |l: &str| {
        let mut rest = l;
        parts.iter().enumerate().all(|(i, p)| {
            let found = if i == 0 {
                rest.strip_prefix(p).map(|r| (0, r))
            } else {
                rest.find(p).map(|at| (at, &rest[at + p.len()..]))
            };
            match found {
                Some((_, r)) => {
                    rest = r;
                    true
                }
                None => false,
            }
        }) && rest.is_empty()
    };
    assert!(
        booted.stderr.lines().any(matches_qemu_line),
        "QEMU's line {:?} does not match its stderr: {booted:#?}",
        lines[1]
    );
    assert_eq!(link("vm-web0"), None, "QEMU deletes the tap it made");
}

// ---------------------------------------------------------------------------------------------
// Bridges.

/// GUIDE §3, "By hand, for a test": in a namespace where `enp1s0` (a veth) is the NIC with the
/// host's address, the block as written makes br0 with the given MAC, moves the NIC and the
/// address to it, and routes the default via 192.168.1.1; a VM's tap then goes to br0 with no
/// config (the default route's bridge), and no warning about the bridge's MAC.
#[test]
fn guide_public_bridge_by_hand() {
    let [b] = <[Block; 1]>::try_from(blocks_for("guide_public_bridge_by_hand", 1)).unwrap();
    let _ns = Netns::new();
    add_veth("enp1s0", "lan0");
    ip(&["addr", "add", "192.168.1.50/24", "dev", "enp1s0"]);
    ip(&["link", "set", "enp1s0", "up"]);
    ip(&["link", "set", "lan0", "up"]);
    let s = Scratch::new("public-by-hand");
    assert_ran(&run_blocks(&s, &[&b]), "the guide's block");
    let br = expect_link("br0");
    assert_eq!(br.address.as_deref(), Some("aa:bb:cc:dd:ee:ff"), "{br:#?}");
    assert!(br.up, "{br:#?}");
    assert_eq!(expect_link("enp1s0").master.as_deref(), Some("br0"));
    assert!(ip(&["-4", "-o", "addr", "show", "dev", "enp1s0"])
        .trim()
        .is_empty());
    assert!(ip(&["-4", "-o", "addr", "show", "dev", "br0"]).contains("192.168.1.50/24"));
    let default = ip(&["route", "show", "default"]);
    assert!(
        default.starts_with("default via 192.168.1.1 dev br0"),
        "{default}"
    );
    let details = ip(&["-d", "link", "show", "br0"]);
    assert!(
        details.contains("stp_state 0") && details.contains("forward_delay 0"),
        "{details}"
    );

    // "The VMs": the shipped, all-comments config behaves like none.
    add_tap("vm-web0", None, None);
    let conf = config_file(
        &s,
        "shipped.conf",
        "# all comments, as the package ships it\n",
    );
    let out = run_with_own_sysfs(Path::new(IFUP), &["--config", &conf, "vm-web0"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(expect_link("vm-web0").master.as_deref(), Some("br0"));
    assert!(!out.stderr.contains("MAC address"), "{out:#?}");
    assert_eq!(
        expect_link("br0").address.as_deref(),
        Some("aa:bb:cc:dd:ee:ff")
    );
}

/// GUIDE §4, the manual private bridge: the block as written makes br-lab with its MAC, STP
/// off, the host's address, up; a lab VM's tap joins it with no warning about the bridge's MAC.
#[test]
fn guide_private_bridge_by_hand() {
    let [b] = <[Block; 1]>::try_from(blocks_for("guide_private_bridge_by_hand", 1)).unwrap();
    let _ns = Netns::new();
    let s = Scratch::new("private-by-hand");
    assert_ran(&run_blocks(&s, &[&b]), "the guide's block");
    let br = expect_link("br-lab");
    assert_eq!(br.address.as_deref(), Some("02:00:00:00:64:01"), "{br:#?}");
    assert!(br.up);
    assert!(ip(&["-4", "-o", "addr", "show", "dev", "br-lab"]).contains("192.168.100.1/24"));
    add_tap("vm-lab-1", None, None);
    let conf = config_file(&s, "lab.conf", "tap vm-lab-*  bridge br-lab\n");
    let out = run_with_own_sysfs(Path::new(IFUP), &["--config", &conf, "vm-lab-1"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(!out.stderr.contains("MAC address"), "{out:#?}");
    assert_eq!(expect_link("vm-lab-1").master.as_deref(), Some("br-lab"));
    assert_eq!(
        expect_link("br-lab").address.as_deref(),
        Some("02:00:00:00:64:01")
    );
}

/// GUIDE §4: the config block as written, used as the config: the first lab VM's qemu-ifup
/// creates br-lab (STP off, forward delay 0, the host's address, a MAC of its own, so no
/// warning), the second joins it, qemu-ifdown leaves it, and the guide's removal block deletes
/// it.
#[test]
fn guide_private_bridge_created_on_first_use() {
    let [conf, remove] =
        <[Block; 2]>::try_from(blocks_for("guide_private_bridge_created_on_first_use", 2)).unwrap();
    assert_eq!((conf.lang.as_str(), remove.lang.as_str()), ("conf", "sh"));
    let _ns = Netns::new();
    let s = Scratch::new("private-first-use");
    let cfg = config_file(&s, "qemu-ifup-rs.conf", &conf.text);
    add_tap("vm-lab-1", None, None);
    add_tap("vm-lab-2", None, None);
    assert!(link("br-lab").is_none());
    for tap in ["vm-lab-1", "vm-lab-2"] {
        let out = run_with_own_sysfs(Path::new(IFUP), &["--config", &cfg, tap]);
        assert_eq!(out.code, 0, "{tap}: {out:#?}");
        assert!(!out.stderr.contains("MAC address"), "{out:#?}");
        assert_eq!(expect_link(tap).master.as_deref(), Some("br-lab"));
    }
    let br = expect_link("br-lab");
    assert!(
        br.up && br.address.as_deref().unwrap().starts_with("02:"),
        "{br:#?}"
    );
    assert!(ip(&["-4", "-o", "addr", "show", "dev", "br-lab"]).contains("192.168.100.1/24"));
    let details = ip(&["-d", "link", "show", "br-lab"]);
    assert!(
        details.contains("stp_state 0") && details.contains("forward_delay 0"),
        "{details}"
    );
    for tap in ["vm-lab-1", "vm-lab-2"] {
        ifdown(&[tap]).assert_success();
    }
    assert!(
        link("br-lab").is_some(),
        "qemu-ifdown never deletes a bridge"
    );
    assert_ran(&run_blocks(&s, &[&remove]), "the guide's removal block");
    assert!(link("br-lab").is_none());
}

// ---------------------------------------------------------------------------------------------
// Normal users' taps.

/// GUIDE §6: the block as written makes alice's tap (owner alice) and a tap for group kvm.
#[test]
fn guide_user_taps() {
    let [b] = <[Block; 1]>::try_from(blocks_for("guide_user_taps", 1)).unwrap();
    let kvm = kvm_gid();
    let _ns = Netns::new();
    let s = Scratch::new("user-taps");
    assert_ran(&run_blocks(&s, &[&b]), "the guide's block");
    let alice = expect_link("vm-alice0").tun.unwrap();
    assert!(alice.tap && alice.persist, "{alice:?}");
    assert_eq!((alice.owner, alice.group), (Some(ALICE), None));
    let team = expect_link("vm-team0").tun.unwrap();
    assert_eq!((team.owner, team.group), (None, Some(kvm)));
}

// ---------------------------------------------------------------------------------------------
// Routing.

/// The link-local address the guide derives for `fe:54:00:12:34:56`.
const GUIDE_LINK_LOCAL: &str = "fe80::fc54:ff:fe12:3456";

/// GUIDE §5, the tap and its link-local address: the blocks as written make `vm-r0` with its
/// MAC and print its link-local address, which is the one the guide states and the one the
/// kernel gives the tap once it is up with a carrier.
#[test]
fn guide_routing_tap() {
    let [make, compute] = <[Block; 2]>::try_from(blocks_for("guide_routing_tap", 2)).unwrap();
    assert!(read("docs/GUIDE.md").contains(GUIDE_LINK_LOCAL));
    let _ns = Netns::new();
    let s = Scratch::new("routing-tap");
    assert_ran(&run_blocks(&s, &[&make]), "the guide's tap block");
    assert_eq!(
        expect_link("vm-r0").address.as_deref(),
        Some("fe:54:00:12:34:56")
    );
    let out = run_blocks(&s, &[&compute]);
    assert_ran(&out, "the guide's link-local block");
    let printed: Ipv6Addr = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {out:#?}"));
    assert_eq!(printed, GUIDE_LINK_LOCAL.parse::<Ipv6Addr>().unwrap());
    // The kernel's: the tap up, with a carrier (an open queue, as QEMU holds it).
    let _queue = TapQueue::attach("vm-r0");
    ip(&["link", "set", "vm-r0", "up"]);
    let kernel = wait_until(
        Duration::from_secs(10),
        "the tap's link-local address",
        || {
            let out = ip(&["-6", "-o", "addr", "show", "dev", "vm-r0", "scope", "link"]);
            out.split_whitespace()
                .find(|w| w.starts_with("fe80:"))
                .and_then(|w| w.split('/').next()?.parse::<Ipv6Addr>().ok())
        },
    );
    assert_eq!(kernel, printed);
}

/// GUIDE §5, the rule: the config block as written routes the guest's addresses to `vm-r0`
/// (protocol 112, shown as the guide says), and qemu-ifdown gives them back.
#[test]
fn guide_routing_rule() {
    let [conf] = <[Block; 1]>::try_from(blocks_for("guide_routing_rule", 1)).unwrap();
    let _ns = Netns::new();
    let s = Scratch::new("routing-rule");
    let cfg = config_file(&s, "qemu-ifup-rs.conf", &conf.text);
    add_tap("vm-r0", None, None);
    let out = ifup(&["--config", &cfg, "vm-r0"]);
    assert_eq!(out.code, 0, "{out:#?}");
    // Forwarding is off in a fresh namespace: one warning per family.
    assert_eq!(warnings(&out).len(), 2, "{out:#?}");
    let shown = ip(&["route", "show", "dev", "vm-r0"]);
    assert!(
        shown.starts_with("192.0.2.10 proto 112 scope link"),
        "{shown}"
    );
    let v6 = ip(&["-6", "route", "show", "dev", "vm-r0"]);
    assert!(v6.contains("2001:db8::10 proto 112"), "{v6}");
    ifdown(&["vm-r0"]).assert_success();
    let ours = |v6| {
        routes(v6)
            .into_iter()
            .filter(|r| r.protocol == "112")
            .count()
    };
    assert_eq!((ours(false), ours(true)), (0, 0));
}

/// GUIDE §5, the host: the block as written turns forwarding on, keeps accepting router
/// advertisements on the uplink, and answers for the guest on it (proxy ARP, proxy NDP).
#[test]
fn guide_routing_host() {
    let [b] = <[Block; 1]>::try_from(blocks_for("guide_routing_host", 1)).unwrap();
    let _ns = Netns::new();
    add_veth("enp1s0", "lan0");
    let s = Scratch::new("routing-host");
    assert_ran(&run_blocks(&s, &[&b]), "the guide's block");
    assert_eq!(sysctl("ipv4/ip_forward"), "1");
    assert_eq!(sysctl("ipv6/conf/all/forwarding"), "1");
    assert_eq!(sysctl("ipv6/conf/enp1s0/accept_ra"), "2");
    assert_eq!(sysctl("ipv4/conf/enp1s0/proxy_arp"), "1");
    assert_eq!(sysctl("ipv6/conf/enp1s0/proxy_ndp"), "1");
    let proxies = ip(&["-6", "neigh", "show", "proxy"]);
    assert!(proxies.contains("2001:db8::10 dev enp1s0"), "{proxies}");
}

// ---------------------------------------------------------------------------------------------
// QEMU's helper= options, as written.

/// The words of a shell command, quotes removed (enough for the docs' QEMU command lines).
fn shell_words(cmd: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// The `-netdev bridge,…,helper=` and `-netdev tap,…,helper="… --br=br0"` options of the
/// README's and the guide's QEMU command lines, as written: QEMU run by alice with that option
/// (firmware only, no guest: the option is what is under test; tests/bridge_helper.rs boots
/// guests through the same helper) gets a tap from `/usr/libexec/qemu-ifup-rs` (installed as the
/// README says, with the file capability), on br0 with br0's MTU and up; when QEMU stops, the
/// tap is gone.
#[test]
fn helper_options_work_as_written() {
    let covered: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| {
            b.marker
                == Some(Marker::CoveredBy {
                    file: "tests/docs.rs".into(),
                    test: Some("helper_options_work_as_written".into()),
                })
        })
        .collect();
    assert_eq!(covered.len(), 3, "{covered:#?}");
    privileged::require_setuid_capable();
    let [install] = <[Block; 1]>::try_from(blocks_for("readme_file_caps_install", 1)).unwrap();
    for (i, b) in covered.iter().enumerate() {
        let words = shell_words(&b.commands()[0]);
        let netdev = words
            .iter()
            .position(|w| w == "-netdev")
            .map(|p| words[p + 1].clone())
            .unwrap_or_else(|| panic!("{}: no -netdev: {words:?}", b.at()));
        assert!(
            netdev.contains("helper=/usr/libexec/qemu-ifup-rs"),
            "{netdev}"
        );
        eprintln!("{}: -netdev {netdev}", b.at());
        let _ns = Netns::new();
        ifup_testkit::add_bridge("br0", Some(1400));
        let etc = PrivateEtc::new(tmp(), &format!("docs-helper-{i}"));
        etc.write("qemu/bridge.conf", "allow br0\n");
        let s = Scratch::new(&format!("helper-{i}"));
        let alice = Caller::new(ALICE, ALICE);
        let run_sh = write_install_then_qemu(&s, &install.text, &etc, Some(&alice));
        let mut child = Command::new(tool("unshare", "util-linux"))
            .args(["--mount", "--propagation", "private", "--", "/bin/sh"])
            .arg(run_sh)
            .args("-accel tcg -nodefaults -display none -monitor none -serial none".split(' '))
            .args([
                "-netdev",
                &netdev,
                "-device",
                "virtio-net-pci,netdev=n0,romfile=",
            ])
            .env_clear()
            .env("PATH", CLEAN_PATH)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let tap = wait_until(QEMU_TIMEOUT, "QEMU's tap on br0", || {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("{}: QEMU exited ({status}) with {netdev:?}: {err}", b.at());
            }
            taps()
                .into_iter()
                .find(|l| l.master.as_deref() == Some("br0"))
        });
        assert_eq!(
            s.read("install.status").trim(),
            "0",
            "the install failed: {}",
            s.read("install.log")
        );
        assert_eq!((tap.mtu, tap.up), (1400, true), "{}: {tap:#?}", b.at());
        // fe:…, or the kernel's random address when its first byte is f0 or above already.
        let first = u8::from_str_radix(&tap.address.as_deref().unwrap()[..2], 16).unwrap();
        assert!(first >= 0xf0, "{tap:#?}");
        assert_eq!(taps().len(), 1);
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        wait_until(Duration::from_secs(10), "the tap to go with QEMU", || {
            taps().is_empty().then_some(())
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Tests the prose names.

/// Every `fn` of the repository's Rust sources.
fn all_fns() -> std::collections::BTreeSet<String> {
    fn walk(dir: &Path, out: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') && name != "target" {
                walk(&path, out);
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for part in text.split("fn ").skip(1) {
                    let id: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    out.insert(id);
                }
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(root(), &mut out);
    out
}

/// The test names that SECURITY.md, DESIGN.md, the README and the guide quote in backticks
/// (snake_case words with three or more underscores, alone or after `file.rs::`) are functions
/// of this repository: a renamed test does not leave a reference behind.
#[test]
fn the_tests_the_docs_name_exist() {
    let fns = all_fns();
    let mut missing = Vec::new();
    for doc in [
        "docs/SECURITY.md",
        "docs/DESIGN.md",
        "README.md",
        "docs/GUIDE.md",
    ] {
        let text = read(doc);
        for (i, quoted) in text.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let name = quoted.rsplit([':', ' ']).next().unwrap_or_default();
            let is_test_name = name.matches('_').count() >= 3
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_test_name && !fns.contains(name) {
                missing.push(format!("{doc}: `{quoted}`"));
            }
        }
    }
    assert!(missing.is_empty(), "no such fn:\n{}", missing.join("\n"));
}
