//! How the parsers read files, who is asking, and when a file may be trusted.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::config::Location;
use crate::error::{parent_dir, LineError, PolicyError, TrustProblem};

/// File type mask of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
/// Regular file.
pub const S_IFREG: u32 = 0o100_000;
/// Directory.
pub const S_IFDIR: u32 = 0o040_000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120_000;

/// The parts of `stat` this crate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    /// Full `st_mode`, file type bits included.
    pub mode: u32,
}

/// A file's bytes and metadata, and the metadata of the directory holding it. The parsers decode
/// the text line by line, so a byte that is not UTF-8 is an error on its own line (or nothing, in
/// a comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileData {
    pub text: Vec<u8>,
    pub file: FileMeta,
    pub dir: FileMeta,
}

/// Reads files for the parsers.
pub trait FileSource {
    /// Ok(None) when the file does not exist (ENOENT); Err for any other failure.
    fn read(&self, path: &Path) -> Result<Option<FileData>, io::Error>;
}

/// Who is asking: real uid, real gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Caller {
    /// Whether the caller is in group `gid` (primary or supplementary).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// Whether this caller could read a file with this metadata, by mode bits only, as the
    /// kernel decides: the owner bits if the uid matches, else the group bits if the primary or a
    /// supplementary group matches, else the other bits. uid 0 can read anything.
    /// (POSIX ACLs and the directories on the way are not considered.)
    pub fn can_read(&self, meta: &FileMeta) -> bool {
        if self.uid == 0 {
            return true;
        }
        let bit = if self.uid == meta.uid {
            0o400
        } else if self.in_group(meta.gid) {
            0o040
        } else {
            0o004
        };
        meta.mode & bit != 0
    }
}

/// Whether files must be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Run by root (or unprivileged without gained privilege): any file is used.
    Any,
    /// Privileged mode: every file must pass [`check_trusted`].
    RootOwnedOnly,
}

/// Check that only root can change the file at `path`: it must be a regular file owned by uid 0
/// and not writable by group or others, and its directory must be owned by uid 0 and not
/// writable by group or others. The error names the path and the fix.
pub fn check_trusted(path: &Path, data: &FileData) -> Result<(), PolicyError> {
    let untrusted = |problem| PolicyError::Untrusted {
        path: path.to_path_buf(),
        problem,
    };
    let file = &data.file;
    if file.mode & S_IFMT == S_IFLNK {
        return Err(untrusted(TrustProblem::Symlink));
    }
    if file.mode & S_IFMT != S_IFREG {
        return Err(untrusted(TrustProblem::NotRegular { mode: file.mode }));
    }
    if file.uid != 0 {
        return Err(untrusted(TrustProblem::FileOwner {
            file: path.to_path_buf(),
            uid: file.uid,
        }));
    }
    if file.mode & 0o022 != 0 {
        return Err(untrusted(TrustProblem::FileWritable {
            file: path.to_path_buf(),
            mode: file.mode,
        }));
    }
    let dir = &data.dir;
    if dir.uid != 0 {
        return Err(untrusted(TrustProblem::DirOwner {
            dir: parent_dir(path),
            uid: dir.uid,
        }));
    }
    if dir.mode & 0o022 != 0 {
        return Err(untrusted(TrustProblem::DirWritable {
            dir: parent_dir(path),
            mode: dir.mode,
        }));
    }
    Ok(())
}

/// Where an `include` names: relative paths are taken from the including file's directory.
fn resolve_include(from: &Path, target: &str) -> PathBuf {
    let target = Path::new(target);
    match from.parent() {
        Some(dir) if target.is_relative() => dir.join(target),
        _ => target.to_path_buf(),
    }
}

/// `path` with `.` removed and `..` applied lexically, for loop detection only (the file is
/// read by the path as written, so symlinks keep their meaning; a loop through symlinks is
/// caught by the depth limit).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// The argument of `include`: the rest of the line after the keyword, without the spaces and
/// tabs around it (so, as in qemu-bridge-helper, a path may contain spaces), or None when there
/// is none.
fn include_arg(content: &str) -> Option<&str> {
    let rest = content
        .trim_start_matches(SEPARATORS)
        .strip_prefix("include")?;
    if !rest.starts_with(SEPARATORS) {
        return None;
    }
    let rest = rest.trim_matches(SEPARATORS);
    (!rest.is_empty()).then_some(rest)
}

/// The lines of `text` that say something: (1-based line number, the text before any `#`, or
/// `None` when that text is not UTF-8), blank lines and comment-only lines skipped. A line ends at
/// `\n`; one `\r` before it is dropped.
fn content_lines(text: &[u8]) -> impl Iterator<Item = (usize, Option<&str>)> {
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let content = match line.iter().position(|&b| b == b'#') {
                Some(at) => &line[..at],
                None => line,
            };
            let content = std::str::from_utf8(content).ok();
            match content {
                Some(c) if c.trim_start_matches(SEPARATORS).is_empty() => None,
                other => Some((i + 1, other)),
            }
        })
}

/// What separates the words of a line: spaces and tabs only (any other character, a no-break
/// space included, is part of a word).
const SEPARATORS: [char; 2] = [' ', '\t'];

/// The words of a line, split at [`SEPARATORS`].
pub(crate) fn tokens(content: &str) -> Vec<&str> {
    content
        .split(SEPARATORS)
        .filter(|t| !t.is_empty())
        .collect()
}

/// [`content_lines`] of the file at `path`, each with its [`Location`]; a line that is not
/// UTF-8 is [`LineError::NotUtf8`] at its location.
pub(crate) fn located_lines<'t>(
    path: &'t Path,
    text: &'t [u8],
) -> impl Iterator<Item = (Location, Result<&'t str, LineError>)> + 't {
    content_lines(text).map(move |(line, content)| {
        let at = Location {
            file: path.to_path_buf(),
            line,
        };
        (at, content.ok_or(LineError::NotUtf8))
    })
}

/// Read the main file of a config or ACL: Ok(None) when it does not exist (each parser decides
/// what that means), `unreadable` (the parser's error) for any other failure.
pub(crate) fn read_main(
    src: &dyn FileSource,
    path: &Path,
    unreadable: fn(PathBuf, io::Error) -> PolicyError,
) -> Result<Option<FileData>, PolicyError> {
    src.read(path)
        .map_err(|source| unreadable(path.to_path_buf(), source))
}

/// The files one parse is reading, for the config and ACL parsers alike: where they come from,
/// and which are open (so an `include` can be checked for loops).
pub(crate) struct Includes<'a> {
    src: &'a dyn FileSource,
    /// Normalized paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
}

impl<'a> Includes<'a> {
    pub(crate) fn new(src: &'a dyn FileSource) -> Includes<'a> {
        Includes {
            src,
            stack: Vec::new(),
        }
    }

    /// Start reading the file at `path`; [`Includes::leave`] when done with it.
    pub(crate) fn enter(&mut self, path: &Path) {
        self.stack.push(normalize(path));
    }

    /// Done with the file entered last.
    pub(crate) fn leave(&mut self) {
        self.stack.pop();
    }

    /// Follow the `include` line `content` at `at`: take its argument relative to the
    /// including file, check `depth` (the included file's) and loops against the files being
    /// read, then read it. `wrap` turns a line problem into the crate error for the kind of file
    /// (config or ACL) at the include line.
    pub(crate) fn open(
        &self,
        at: &Location,
        content: &str,
        depth: usize,
        wrap: &dyn Fn(LineError) -> PolicyError,
    ) -> Result<(PathBuf, FileData), PolicyError> {
        let arg = include_arg(content).ok_or(wrap(LineError::MissingArgument {
            keyword: "include",
            what: "a file name",
        }))?;
        let target = resolve_include(&at.file, arg);
        if depth > crate::MAX_INCLUDE_DEPTH {
            return Err(wrap(LineError::IncludeTooDeep { path: target }));
        }
        if self.stack.contains(&normalize(&target)) {
            return Err(wrap(LineError::IncludeLoop { path: target }));
        }
        match self.src.read(&target) {
            Ok(Some(data)) => Ok((target, data)),
            Ok(None) => Err(wrap(LineError::IncludeMissing { path: target })),
            Err(source) => Err(wrap(LineError::IncludeUnreadable {
                path: target,
                reason: source.to_string(),
            })),
        }
    }
}

/// An in-memory [`FileSource`], for tests and fuzzing.
#[derive(Debug, Clone, Default)]
pub struct MemSource {
    files: HashMap<PathBuf, FileData>,
    errors: HashMap<PathBuf, io::ErrorKind>,
}

impl MemSource {
    /// Metadata of a root-owned 0644 regular file.
    pub const ROOT_FILE: FileMeta = FileMeta {
        uid: 0,
        gid: 0,
        mode: S_IFREG | 0o644,
    };
    /// Metadata of a root-owned 0755 directory.
    pub const ROOT_DIR: FileMeta = FileMeta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o755,
    };

    pub fn new() -> MemSource {
        MemSource::default()
    }

    /// Add a file with the given metadata.
    pub fn insert(&mut self, path: impl Into<PathBuf>, data: FileData) -> &mut MemSource {
        self.files.insert(path.into(), data);
        self
    }

    /// Add a root-owned 0644 file in a root-owned 0755 directory.
    pub fn insert_text(&mut self, path: impl Into<PathBuf>, text: &str) -> &mut MemSource {
        self.insert_bytes(path, text.as_bytes())
    }

    /// Like [`MemSource::insert_text`], with any bytes.
    pub fn insert_bytes(&mut self, path: impl Into<PathBuf>, bytes: &[u8]) -> &mut MemSource {
        self.insert(
            path,
            FileData {
                text: bytes.to_vec(),
                file: MemSource::ROOT_FILE,
                dir: MemSource::ROOT_DIR,
            },
        )
    }

    /// Make reading `path` fail with `kind`.
    pub fn insert_error(
        &mut self,
        path: impl Into<PathBuf>,
        kind: io::ErrorKind,
    ) -> &mut MemSource {
        self.errors.insert(path.into(), kind);
        self
    }
}

impl FileSource for MemSource {
    fn read(&self, path: &Path) -> Result<Option<FileData>, io::Error> {
        if let Some(kind) = self.errors.get(path) {
            return Err(io::Error::from(*kind));
        }
        Ok(self.files.get(path).cloned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn data(file: FileMeta, dir: FileMeta) -> FileData {
        FileData {
            text: Vec::new(),
            file,
            dir,
        }
    }

    fn meta(uid: u32, gid: u32, mode: u32) -> FileMeta {
        FileMeta { uid, gid, mode }
    }

    fn problem(file: FileMeta, dir: FileMeta) -> TrustProblem {
        match check_trusted(Path::new("/etc/qemu/x.conf"), &data(file, dir)) {
            Err(PolicyError::Untrusted { path, problem }) => {
                assert_eq!(path, Path::new("/etc/qemu/x.conf"));
                problem
            }
            other => panic!("{other:?}"),
        }
    }

    const DIR: FileMeta = MemSource::ROOT_DIR;

    #[test]
    fn trusted() {
        for mode in [0o644, 0o600, 0o400, 0o640, 0o4755, 0o000] {
            check_trusted(Path::new("/x"), &data(meta(0, 7, S_IFREG | mode), DIR)).unwrap();
        }
        // Group ownership does not matter when the group cannot write.
        check_trusted(
            Path::new("/x"),
            &data(
                meta(0, 1000, S_IFREG | 0o640),
                meta(0, 1000, S_IFDIR | 0o1755),
            ),
        )
        .unwrap();
    }

    #[test]
    fn group_writable_file() {
        let p = problem(meta(0, 0, S_IFREG | 0o664), DIR);
        assert!(matches!(p, TrustProblem::FileWritable { .. }));
        let msg = PolicyError::Untrusted {
            path: "/etc/qemu/x.conf".into(),
            problem: p,
        }
        .to_string();
        assert!(msg.contains("/etc/qemu/x.conf"), "{msg}");
        assert!(msg.contains("chown root"), "{msg}");
        assert!(msg.contains("chmod go-w /etc/qemu/x.conf"), "{msg}");
        assert!(msg.contains("0664"), "{msg}");
        assert!(!PolicyError::Untrusted {
            path: "/x".into(),
            problem: TrustProblem::NotRegular { mode: 0 }
        }
        .is_usage());
    }

    #[test]
    fn world_writable_file() {
        assert!(matches!(
            problem(meta(0, 0, S_IFREG | 0o646), DIR),
            TrustProblem::FileWritable { .. }
        ));
    }

    #[test]
    fn non_root_owner() {
        assert_eq!(
            problem(meta(1000, 0, S_IFREG | 0o644), DIR),
            TrustProblem::FileOwner {
                file: "/etc/qemu/x.conf".into(),
                uid: 1000
            }
        );
    }

    #[test]
    fn non_regular_file() {
        assert_eq!(
            problem(meta(0, 0, S_IFLNK | 0o777), DIR),
            TrustProblem::Symlink
        );
        for kind in [S_IFDIR, 0o010_000 /* fifo */, 0o020_000, 0] {
            assert!(matches!(
                problem(meta(0, 0, kind | 0o644), DIR),
                TrustProblem::NotRegular { .. }
            ));
        }
    }

    #[test]
    fn world_writable_dir() {
        let file = MemSource::ROOT_FILE;
        let p = problem(file, meta(0, 0, S_IFDIR | 0o777));
        assert_eq!(
            p,
            TrustProblem::DirWritable {
                dir: "/etc/qemu".into(),
                mode: S_IFDIR | 0o777
            }
        );
        assert!(p.to_string().contains("chmod go-w /etc/qemu"), "{p}");
        // Sticky /tmp is still writable by others: not trusted.
        assert!(matches!(
            problem(file, meta(0, 0, S_IFDIR | 0o1777)),
            TrustProblem::DirWritable { .. }
        ));
        assert!(matches!(
            problem(file, meta(0, 0, S_IFDIR | 0o775)),
            TrustProblem::DirWritable { .. }
        ));
    }

    #[test]
    fn non_root_dir() {
        assert_eq!(
            problem(MemSource::ROOT_FILE, meta(1000, 0, S_IFDIR | 0o755)),
            TrustProblem::DirOwner {
                dir: "/etc/qemu".into(),
                uid: 1000
            }
        );
    }

    #[test]
    fn can_read() {
        let alice = Caller {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 27],
        };
        let root = Caller {
            uid: 0,
            gid: 0,
            groups: vec![],
        };
        // Owner bits decide for the owner, even when group/other bits would allow.
        assert!(alice.can_read(&meta(1000, 0, S_IFREG | 0o400)));
        assert!(!alice.can_read(&meta(1000, 1000, S_IFREG | 0o044)));
        // Group bits: primary and supplementary groups.
        assert!(alice.can_read(&meta(0, 1000, S_IFREG | 0o640)));
        assert!(alice.can_read(&meta(0, 27, S_IFREG | 0o640)));
        assert!(!alice.can_read(&meta(0, 27, S_IFREG | 0o604)));
        // Other bits.
        assert!(!alice.can_read(&meta(0, 5, S_IFREG | 0o640)));
        assert!(alice.can_read(&meta(0, 5, S_IFREG | 0o604)));
        assert!(alice.can_read(&meta(0, 5, S_IFREG | 0o644)));
        assert!(!alice.can_read(&meta(0, 0, S_IFREG | 0o600)));
        // Root reads anything.
        assert!(root.can_read(&meta(5, 5, S_IFREG)));
    }

    #[test]
    fn include_paths() {
        assert_eq!(
            resolve_include(Path::new("/etc/qemu/bridge.conf"), "alice.conf"),
            Path::new("/etc/qemu/alice.conf")
        );
        assert_eq!(
            resolve_include(Path::new("/etc/qemu/bridge.conf"), "/etc/other.conf"),
            Path::new("/etc/other.conf")
        );
        assert_eq!(
            resolve_include(Path::new("bridge.conf"), "a.conf"),
            Path::new("a.conf")
        );
        assert_eq!(
            normalize(Path::new("/etc/qemu/./d/../x.conf")),
            Path::new("/etc/qemu/x.conf")
        );
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
        assert_eq!(normalize(Path::new("../a/../../x")), Path::new("../../x"));
    }

    #[test]
    fn content_lines_strip_comments() {
        let text = b"# c\n\nallow br0 # x\n   \n\tdeny all\r\n#\n";
        let got: Vec<_> = content_lines(text).collect();
        assert_eq!(got, vec![(3, Some("allow br0 ")), (5, Some("\tdeny all"))]);
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        // In a comment: nothing. In a line's content: that line, and only it.
        let text = b"allow br0 # caf\xe9\n\xff\xfe\ndeny all\n";
        let got: Vec<_> = content_lines(text).collect();
        assert_eq!(
            got,
            vec![(1, Some("allow br0 ")), (2, None), (3, Some("deny all"))]
        );
        let at: Vec<_> = located_lines(Path::new("/x"), text).collect();
        assert_eq!(at[1].0.line, 2);
        assert_eq!(at[1].1, Err(LineError::NotUtf8));
    }

    #[test]
    fn only_spaces_and_tabs_separate_words() {
        assert_eq!(tokens(" a\tb  c\t"), ["a", "b", "c"]);
        // A no-break space, a vertical tab, a form feed: part of the word.
        assert_eq!(tokens("bridge\u{a0}br0"), ["bridge\u{a0}br0"]);
        assert_eq!(tokens("a\u{b}b\u{c}"), ["a\u{b}b\u{c}"]);
        // A line of only such characters says something (and is then an error).
        assert_eq!(content_lines("\u{a0}\n".as_bytes()).count(), 1);
        assert_eq!(
            include_arg("include  my file.conf \t"),
            Some("my file.conf")
        );
        assert_eq!(include_arg("include\u{a0}x"), None);
        assert_eq!(include_arg("include"), None);
    }
}
