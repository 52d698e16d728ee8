//! The user ACL, `/etc/qemu/bridge.conf`, in qemu-bridge-helper's syntax: `allow NAME`,
//! `allow all`, `deny NAME`, `deny all`, `include FILE`, `#` comments, blank lines.
//!
//! Semantics (qemu-ifup-rs.conf(5), ACCESS LIST): a matching deny beats any allow, whatever the
//! order; no match denies. The allow lines of an included file count only if the caller could
//! read that file (and every included file on the way to it); deny lines count for everyone.
//! Any error in any file denies (the parser returns Err).

use std::path::Path;

use crate::config::Location;
use crate::error::{LineError, PolicyError};
use crate::name::IfName;
use crate::source::{
    check_trusted, located_lines, read_main, tokens, Caller, FileData, FileSource, Includes,
};

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclVerb {
    Allow,
    Deny,
}

/// What a rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclTarget {
    All,
    Name(IfName),
}

impl AclTarget {
    fn matches(&self, bridge: &IfName) -> bool {
        match self {
            AclTarget::All => true,
            AclTarget::Name(name) => name == bridge,
        }
    }
}

/// A rule that counts for this caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    pub verb: AclVerb,
    pub target: AclTarget,
    pub at: Location,
}

/// The ACL's answer for one bridge, with the line that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclVerdict {
    Allowed {
        at: Location,
    },
    Denied {
        at: Location,
    },
    /// No rule names the bridge (or `all`): denied.
    NoMatch,
}

/// The rules of the ACL that count for one caller. The default ACL permits nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Acl {
    rules: Vec<AclRule>,
}

impl Acl {
    /// Whether the caller may use `bridge`: a matching deny (`deny NAME` or `deny all`) beats
    /// any allow; no match = deny.
    pub fn permits(&self, bridge: &IfName) -> bool {
        matches!(self.verdict(bridge), AclVerdict::Allowed { .. })
    }

    /// Like [`Acl::permits`], naming the first deciding line: the first matching deny, else the
    /// first matching allow.
    pub fn verdict(&self, bridge: &IfName) -> AclVerdict {
        let first = |verb| {
            self.rules
                .iter()
                .find(|r| r.verb == verb && r.target.matches(bridge))
        };
        if let Some(rule) = first(AclVerb::Deny) {
            return AclVerdict::Denied {
                at: rule.at.clone(),
            };
        }
        if let Some(rule) = first(AclVerb::Allow) {
            return AclVerdict::Allowed {
                at: rule.at.clone(),
            };
        }
        AclVerdict::NoMatch
    }

    /// The rules that count for this caller, in file order (allow lines of included files the
    /// caller cannot read are not kept).
    pub fn rules(&self) -> &[AclRule] {
        &self.rules
    }
}

/// Parse the ACL at `path` for `caller`. A missing main file is `PolicyError::AclMissing`.
/// Every file must pass [`check_trusted`] (the ACL is only read in privileged mode). Names of 16
/// bytes or more, and any other bad name, are errors. Any error anywhere (syntax, unreadable or
/// missing include, loop, nesting deeper than [`crate::MAX_INCLUDE_DEPTH`]) is Err: the caller
/// denies. Includes are taken relative to the including file's directory.
pub fn parse_acl(path: &Path, src: &dyn FileSource, caller: &Caller) -> Result<Acl, PolicyError> {
    let unreadable = |path, source| PolicyError::AclRead { path, source };
    let Some(data) = read_main(src, path, unreadable)? else {
        return Err(PolicyError::AclMissing {
            path: path.to_path_buf(),
        });
    };
    let mut parser = Parser {
        includes: Includes::new(src),
        caller,
        acl: Acl::default(),
    };
    parser.file(path, &data, 0, true)?;
    Ok(parser.acl)
}

struct Parser<'a> {
    includes: Includes<'a>,
    caller: &'a Caller,
    acl: Acl,
}

impl Parser<'_> {
    /// `allows_count`: whether the caller could read every included file on the way here.
    fn file(
        &mut self,
        path: &Path,
        data: &FileData,
        depth: usize,
        allows_count: bool,
    ) -> Result<(), PolicyError> {
        check_trusted(path, data)?;
        let allows_count = allows_count && (depth == 0 || self.caller.can_read(&data.file));
        self.includes.enter(path);
        for (at, content) in located_lines(path, &data.text) {
            let content = content.map_err(|problem| PolicyError::Acl {
                at: at.clone(),
                problem,
            })?;
            self.line(at, content, depth, allows_count)?;
        }
        self.includes.leave();
        Ok(())
    }

    fn line(
        &mut self,
        at: Location,
        content: &str,
        depth: usize,
        allows_count: bool,
    ) -> Result<(), PolicyError> {
        let wrap = |problem| PolicyError::Acl {
            at: at.clone(),
            problem,
        };
        let tokens = tokens(content);
        let verb = match tokens.first().copied() {
            Some("allow") => AclVerb::Allow,
            Some("deny") => AclVerb::Deny,
            Some("include") => {
                let (target, data) = self.includes.open(&at, content, depth + 1, &wrap)?;
                return self.file(&target, &data, depth + 1, allows_count);
            }
            Some(word) => {
                return Err(wrap(LineError::UnknownKeyword {
                    word: word.to_owned(),
                    expected: "allow, deny or include",
                }))
            }
            None => return Ok(()),
        };
        let keyword = if verb == AclVerb::Allow {
            "allow"
        } else {
            "deny"
        };
        let arg = *tokens.get(1).ok_or(wrap(LineError::MissingArgument {
            keyword,
            what: "a bridge name or \"all\"",
        }))?;
        if let Some(extra) = tokens.get(2) {
            return Err(wrap(LineError::Unexpected {
                found: (*extra).to_owned(),
                after: "the bridge name",
            }));
        }
        let target = if arg == "all" {
            AclTarget::All
        } else {
            AclTarget::Name(
                IfName::parse(arg)
                    .map_err(LineError::BadName)
                    .map_err(wrap)?,
            )
        };
        if verb == AclVerb::Deny || allows_count {
            self.acl.rules.push(AclRule { verb, target, at });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::source::{FileMeta, MemSource, S_IFDIR, S_IFREG};
    use crate::{NameError, TrustProblem};
    use std::io;

    const MAIN: &str = "/etc/qemu/bridge.conf";

    fn name(s: &str) -> IfName {
        IfName::parse(s).unwrap()
    }

    fn alice() -> Caller {
        Caller {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 100],
        }
    }

    fn bob() -> Caller {
        Caller {
            uid: 1001,
            gid: 1001,
            groups: vec![1001],
        }
    }

    fn acl_src(src: &MemSource, caller: &Caller) -> Result<Acl, PolicyError> {
        parse_acl(Path::new(MAIN), src, caller)
    }

    fn acl(text: &str) -> Result<Acl, PolicyError> {
        let mut src = MemSource::new();
        src.insert_text(MAIN, text);
        acl_src(&src, &alice())
    }

    fn permits(text: &str, bridge: &str) -> bool {
        acl(text).unwrap().permits(&name(bridge))
    }

    #[track_caller]
    fn line_err(text: &str, line: usize) -> LineError {
        match acl(text) {
            Err(e @ PolicyError::Acl { .. }) => {
                assert!(!e.is_usage());
                let PolicyError::Acl { at, problem } = e else {
                    unreachable!()
                };
                assert_eq!(at.file, Path::new(MAIN));
                assert_eq!(at.line, line);
                problem
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn root_file(mode: u32, gid: u32, text: &str) -> FileData {
        FileData {
            text: text.into(),
            file: FileMeta {
                uid: 0,
                gid,
                mode: S_IFREG | mode,
            },
            dir: MemSource::ROOT_DIR,
        }
    }

    #[test]
    fn allow_name() {
        assert!(permits("allow br0\n", "br0"));
        assert!(!permits("allow br0\n", "br1"));
        assert!(!permits("allow br0\n", "br00"));
    }

    #[test]
    fn allow_all() {
        assert!(permits("allow all\n", "br0"));
        assert!(permits("allow all\n", "anything"));
    }

    #[test]
    fn no_match_denies() {
        assert!(!permits("", "br0"));
        assert!(!permits("# only comments\n\n", "br0"));
        assert!(!permits("deny br1\n", "br0"));
        assert_eq!(acl("").unwrap().verdict(&name("br0")), AclVerdict::NoMatch);
        assert!(!Acl::default().permits(&name("br0")));
    }

    #[test]
    fn deny_beats_allow_regardless_of_order() {
        for text in [
            "allow br0\ndeny br0\n",
            "deny br0\nallow br0\n",
            "allow all\ndeny br0\n",
            "deny br0\nallow all\n",
            "allow br0\ndeny all\n",
            "deny all\nallow br0\n",
            "deny all\nallow all\n",
        ] {
            assert!(!permits(text, "br0"), "{text:?}");
        }
        assert!(permits("allow all\ndeny br0\n", "br1"));
        assert!(!permits("deny all\nallow br1\n", "br1"));
        let a = acl("allow br0\n\ndeny br0\n").unwrap();
        assert_eq!(
            a.verdict(&name("br0")),
            AclVerdict::Denied {
                at: Location {
                    file: MAIN.into(),
                    line: 3
                }
            }
        );
    }

    #[test]
    fn verdict_names_the_allow_line() {
        let a = acl("# c\nallow br0 # the lab\n").unwrap();
        assert_eq!(
            a.verdict(&name("br0")),
            AclVerdict::Allowed {
                at: Location {
                    file: MAIN.into(),
                    line: 2
                }
            }
        );
        assert_eq!(a.rules().len(), 1);
    }

    #[test]
    fn whitespace_tolerated() {
        assert!(permits("  \tallow\t br0  \r\n", "br0"));
    }

    #[test]
    fn missing_main_file() {
        let src = MemSource::new();
        let e = acl_src(&src, &alice()).unwrap_err();
        assert!(matches!(e, PolicyError::AclMissing { ref path } if path == Path::new(MAIN)));
        assert!(!e.is_usage());
        assert!(e.to_string().contains(MAIN));
    }

    #[test]
    fn unreadable_main_file() {
        let mut src = MemSource::new();
        src.insert_error(MAIN, io::ErrorKind::PermissionDenied);
        assert!(matches!(
            acl_src(&src, &alice()),
            Err(PolicyError::AclRead { .. })
        ));
    }

    #[test]
    fn sixteen_byte_name_is_error() {
        assert_eq!(
            line_err("allow br0\nallow 1234567890123456\n", 2),
            LineError::BadName(NameError::TooLong {
                name: "1234567890123456".into(),
                len: 16
            })
        );
        assert!(matches!(
            line_err("deny 1234567890123456789", 1),
            LineError::BadName(NameError::TooLong { .. })
        ));
        // 15 is fine.
        assert!(permits("allow 123456789012345\n", "123456789012345"));
    }

    #[test]
    fn syntax_errors() {
        assert!(matches!(
            line_err("allow", 1),
            LineError::MissingArgument {
                keyword: "allow",
                ..
            }
        ));
        assert!(matches!(
            line_err("\ndeny   # nothing", 2),
            LineError::MissingArgument {
                keyword: "deny",
                ..
            }
        ));
        assert_eq!(
            line_err("allow br0 br1", 1),
            LineError::Unexpected {
                found: "br1".into(),
                after: "the bridge name"
            }
        );
        assert_eq!(
            line_err("allow br0\npermit br0", 2),
            LineError::UnknownKeyword {
                word: "permit".into(),
                expected: "allow, deny or include"
            }
        );
        assert!(matches!(
            line_err("Allow br0", 1),
            LineError::UnknownKeyword { .. }
        ));
        assert!(matches!(
            line_err("allow a/b", 1),
            LineError::BadName(NameError::BadChar { ch: '/', .. })
        ));
        assert!(matches!(
            line_err("allow ..", 1),
            LineError::BadName(NameError::Dot { .. })
        ));
        assert!(matches!(
            line_err("include", 1),
            LineError::MissingArgument {
                keyword: "include",
                ..
            }
        ));
        let e = acl("allow br0\nallw br1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/qemu/bridge.conf:2: unknown keyword \"allw\" (expected allow, deny or include)"
        );
    }

    #[test]
    fn main_file_must_be_trusted() {
        for (file, dir) in [
            (
                FileMeta {
                    uid: 0,
                    gid: 0,
                    mode: S_IFREG | 0o664,
                },
                MemSource::ROOT_DIR,
            ),
            (
                FileMeta {
                    uid: 1000,
                    gid: 0,
                    mode: S_IFREG | 0o644,
                },
                MemSource::ROOT_DIR,
            ),
            (
                MemSource::ROOT_FILE,
                FileMeta {
                    uid: 0,
                    gid: 0,
                    mode: S_IFDIR | 0o777,
                },
            ),
        ] {
            let mut src = MemSource::new();
            src.insert(
                MAIN,
                FileData {
                    text: "allow all\n".into(),
                    file,
                    dir,
                },
            );
            let e = acl_src(&src, &alice()).unwrap_err();
            assert!(matches!(e, PolicyError::Untrusted { .. }), "{e:?}");
            assert!(!e.is_usage());
        }
    }

    #[test]
    fn included_file_must_be_trusted() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow br0\ninclude alice.conf\n")
            .insert(
                "/etc/qemu/alice.conf",
                FileData {
                    text: "allow br1\n".into(),
                    file: FileMeta {
                        uid: 1000,
                        gid: 1000,
                        mode: S_IFREG | 0o600,
                    },
                    dir: MemSource::ROOT_DIR,
                },
            );
        assert!(matches!(
            acl_src(&src, &alice()),
            Err(PolicyError::Untrusted {
                problem: TrustProblem::FileOwner { uid: 1000, .. },
                ..
            })
        ));
    }

    /// The man page's example: `include /etc/qemu/alice.conf`, mode 0640 root:alice.
    #[test]
    fn include_allows_count_only_when_readable() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow br0\ninclude alice.conf\n")
            .insert(
                "/etc/qemu/alice.conf",
                root_file(0o640, 1000, "allow br-alice\n"),
            );
        let a = acl_src(&src, &alice()).unwrap();
        assert!(a.permits(&name("br-alice")));
        assert!(a.permits(&name("br0")));
        let b = acl_src(&src, &bob()).unwrap();
        assert!(!b.permits(&name("br-alice")));
        assert!(b.permits(&name("br0")));
        assert_eq!(b.verdict(&name("br-alice")), AclVerdict::NoMatch);
    }

    #[test]
    fn include_readability_by_mode_bits() {
        // (mode, uid, gid, alice may use it, bob may use it)
        let cases = [
            (0o644, 0, 0, true, true),      // other-readable
            (0o640, 0, 0, false, false),    // root group only
            (0o640, 0, 100, true, false),   // alice's supplementary group
            (0o640, 0, 1001, false, true),  // bob's primary group
            (0o600, 0, 1000, false, false), // owner root only
            (0o604, 0, 1000, false, true),  // group alice excluded, others (bob) read
            (0o000, 0, 0, false, false),
        ];
        for (mode, uid, gid, for_alice, for_bob) in cases {
            let mut src = MemSource::new();
            src.insert_text(MAIN, "include /etc/qemu/inc.conf\n")
                .insert(
                    "/etc/qemu/inc.conf",
                    FileData {
                        text: "allow br1\n".into(),
                        file: FileMeta {
                            uid,
                            gid,
                            mode: S_IFREG | mode,
                        },
                        dir: MemSource::ROOT_DIR,
                    },
                );
            let br1 = name("br1");
            assert_eq!(
                acl_src(&src, &alice()).unwrap().permits(&br1),
                for_alice,
                "alice {mode:o} {gid}"
            );
            assert_eq!(
                acl_src(&src, &bob()).unwrap().permits(&br1),
                for_bob,
                "bob {mode:o} {gid}"
            );
        }
    }

    #[test]
    fn main_file_allows_count_even_if_unreadable_by_caller() {
        let mut src = MemSource::new();
        src.insert(MAIN, root_file(0o600, 0, "allow br0\n"));
        assert!(acl_src(&src, &bob()).unwrap().permits(&name("br0")));
    }

    #[test]
    fn deny_in_unreadable_include_still_counts() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow all\ninclude secret.conf\n")
            .insert(
                "/etc/qemu/secret.conf",
                root_file(0o600, 0, "deny br-secret\nallow br-x\n"),
            );
        let b = acl_src(&src, &bob()).unwrap();
        assert!(!b.permits(&name("br-secret")));
        assert!(b.permits(&name("br0")));
        // The allow line of the unreadable file is not kept.
        assert_eq!(b.rules().len(), 2);
    }

    #[test]
    fn readability_applies_along_the_include_chain() {
        // alice.conf (alice only) includes common.conf (world-readable): through alice.conf,
        // common.conf's allows count for alice only.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include alice.conf\n")
            .insert(
                "/etc/qemu/alice.conf",
                root_file(0o640, 1000, "include common.conf\n"),
            )
            .insert(
                "/etc/qemu/common.conf",
                root_file(0o644, 0, "allow br-c\ndeny br-d\n"),
            );
        assert!(acl_src(&src, &alice()).unwrap().permits(&name("br-c")));
        let b = acl_src(&src, &bob()).unwrap();
        assert!(!b.permits(&name("br-c")));
        // ...but its deny lines still count for everyone.
        assert!(matches!(
            b.verdict(&name("br-d")),
            AclVerdict::Denied { .. }
        ));
    }

    #[test]
    fn relative_include_and_errors() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include bridge.conf.d/lab.conf\n")
            .insert_text("/etc/qemu/bridge.conf.d/lab.conf", "allow br-lab\n");
        assert!(acl_src(&src, &alice()).unwrap().permits(&name("br-lab")));

        // Missing include: error (denies everything).
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow all\ninclude nope.conf\n");
        let e = acl_src(&src, &alice()).unwrap_err();
        assert!(matches!(
            e,
            PolicyError::Acl {
                problem: LineError::IncludeMissing { .. },
                ..
            }
        ));
        assert!(!e.is_usage());
        assert_eq!(
            e.to_string(),
            "/etc/qemu/bridge.conf:2: included file /etc/qemu/nope.conf does not exist"
        );

        // Unreadable include (I/O error): error.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow all\ninclude x.conf\n")
            .insert_error("/etc/qemu/x.conf", io::ErrorKind::PermissionDenied);
        assert!(matches!(
            acl_src(&src, &alice()),
            Err(PolicyError::Acl {
                problem: LineError::IncludeUnreadable { .. },
                ..
            })
        ));

        // Syntax error in an include: error naming the included file and its line.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow all\ninclude x.conf\n")
            .insert_text("/etc/qemu/x.conf", "\n\nallow br0 br1\n");
        match acl_src(&src, &alice()) {
            Err(PolicyError::Acl { at, .. }) => {
                assert_eq!(
                    at,
                    Location {
                        file: "/etc/qemu/x.conf".into(),
                        line: 3
                    }
                )
            }
            other => panic!("{other:?}"),
        }

        // A syntax error in an include the caller cannot read still denies.
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow all\ninclude x.conf\n")
            .insert("/etc/qemu/x.conf", root_file(0o600, 0, "bogus\n"));
        assert!(acl_src(&src, &bob()).is_err());
    }

    #[test]
    fn include_loop_and_depth() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "allow all\ninclude a.conf\n")
            .insert_text("/etc/qemu/a.conf", "include /etc/qemu/bridge.conf\n");
        assert!(matches!(
            acl_src(&src, &alice()),
            Err(PolicyError::Acl {
                problem: LineError::IncludeLoop { .. },
                ..
            })
        ));

        let mut src = MemSource::new();
        src.insert_text(MAIN, "include /d/1\n");
        for i in 1..=9 {
            src.insert_text(format!("/d/{i}"), &format!("include /d/{}\n", i + 1));
        }
        src.insert_text("/d/10", "allow all\n");
        let e = acl_src(&src, &alice()).unwrap_err();
        assert!(matches!(
            e,
            PolicyError::Acl {
                problem: LineError::IncludeTooDeep { .. },
                ..
            }
        ));

        let mut src = MemSource::new();
        src.insert_text(MAIN, "include /d/1\n");
        for i in 1..=7 {
            src.insert_text(format!("/d/{i}"), &format!("include /d/{}\n", i + 1));
        }
        src.insert_text("/d/8", "allow all\n");
        assert!(acl_src(&src, &alice()).unwrap().permits(&name("br0")));
    }

    #[test]
    fn same_file_included_twice_is_fine() {
        let mut src = MemSource::new();
        src.insert_text(MAIN, "include a.conf\ninclude a.conf\n")
            .insert_text("/etc/qemu/a.conf", "allow br0\n");
        assert!(acl_src(&src, &alice()).unwrap().permits(&name("br0")));
    }
}
