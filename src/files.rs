//! The real filesystem behind the policy crate's [`FileSource`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use ifup_policy::{Caller, FileData, FileMeta, FileSource};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::libc;
use nix::sys::stat::{fstatat, Mode};

/// Config and ACL files are small; anything larger is refused rather than read.
const MAX_FILE: u64 = 1 << 20;

/// Reads files without blocking on a FIFO, and reports the owner and mode of the file and of its
/// directory, both from open descriptors: the file is opened relative to the directory
/// descriptor whose metadata is reported, so what was checked is what was read, even if a path
/// component is renamed meanwhile.
pub enum SystemFiles {
    /// Privileged mode: a symlink in the last component is refused (its target's owner and
    /// directory are not what would be checked).
    NoFollow,
    /// Root or a plain user: symlinks are followed, as any program reading its config would.
    Follow,
}

impl FileSource for SystemFiles {
    fn read(&self, path: &Path) -> Result<Option<FileData>, io::Error> {
        let (dir_path, name) = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => (dir, name),
            (_, Some(name)) => (Path::new("."), name),
            (_, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "does not name a file",
                ))
            }
        };
        // O_PATH: search permission on the directory is enough, as for a plain open by path.
        let dir = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir_path)
        {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut flags = OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        if let SystemFiles::NoFollow = self {
            flags |= OFlag::O_NOFOLLOW;
        }
        let file = match openat(&dir, name, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::ENOENT) => return Ok(None),
            // A symlink, not followed: its own metadata (a symlink, which the trust check
            // refuses), and nothing to read.
            Err(Errno::ELOOP) => {
                let link = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
                return Ok(Some(FileData {
                    text: Vec::new(),
                    file: FileMeta {
                        uid: link.st_uid,
                        gid: link.st_gid,
                        mode: link.st_mode,
                    },
                    dir: meta_of(&dir.metadata()?),
                }));
            }
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is not a regular file",
            ));
        }
        Ok(Some(FileData {
            text: read_limited(file)?,
            file: meta_of(&meta),
            dir: meta_of(&dir.metadata()?),
        }))
    }
}

/// Owner, group and mode, as the trust and readability checks take them.
fn meta_of(m: &std::fs::Metadata) -> FileMeta {
    FileMeta {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode(),
    }
}

fn read_limited(file: File) -> io::Result<Vec<u8>> {
    let mut text = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "is larger than 1 MiB",
        ));
    }
    Ok(text)
}

/// Could `caller` read `path` by its mode bits? False when it cannot be examined.
pub fn caller_can_read(caller: &Caller, path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| caller.can_read(&meta_of(&m)))
}
