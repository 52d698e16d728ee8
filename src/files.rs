//! The real filesystem behind the policy crate's [`FileSource`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use ifup_policy::{FileData, FileMeta, FileSource};
use nix::libc;

/// Config and ACL files are small; anything larger is refused rather than read.
const MAX_FILE: u64 = 1 << 20;

/// Reads files without following a symlink in the last component, without blocking on a FIFO,
/// and reports the owner and mode of the file (from the open descriptor, so what was checked is
/// what was read) and of its directory.
pub struct SystemFiles;

impl FileSource for SystemFiles {
    fn read(&self, path: &Path) -> Result<Option<FileData>, io::Error> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symbolic link (not followed)",
                ))
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let file_meta = FileMeta {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode(),
        };
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is not a regular file",
            ));
        }
        let text = read_limited(file)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dmeta = std::fs::metadata(dir)?;
        Ok(Some(FileData {
            text,
            file: file_meta,
            dir: FileMeta {
                uid: dmeta.uid(),
                gid: dmeta.gid(),
                mode: dmeta.mode(),
            },
        }))
    }
}

fn read_limited(file: File) -> io::Result<String> {
    let mut text = String::new();
    file.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "is larger than 1 MiB",
        ));
    }
    Ok(text)
}
