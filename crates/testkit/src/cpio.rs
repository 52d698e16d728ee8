//! A minimal writer for the cpio "newc" format (the one the kernel unpacks as an initramfs).
//!
//! Each entry: the magic `070701`, thirteen 8-digit hex fields, the NUL-terminated name padded to
//! 4 bytes (counting the 110-byte header), then the data padded to 4 bytes. Ends with an entry
//! named `TRAILER!!!`. Every entry is owned by root; mtime is 0, so equal inputs give equal bytes.

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

#[derive(Default)]
pub(crate) struct Cpio {
    buf: Vec<u8>,
    next_ino: u32,
}

impl Cpio {
    pub(crate) fn dir(&mut self, path: &str, perm: u32) {
        self.entry(path, S_IFDIR | perm, 2, (0, 0), &[]);
    }

    pub(crate) fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, S_IFREG | perm, 1, (0, 0), data);
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    pub(crate) fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | perm, 1, (major, minor), &[]);
    }

    /// Appends the trailer and returns the archive.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.buf
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        assert!(
            !name.starts_with('/') && !name.contains('\0'),
            "cpio names are relative: {name:?}"
        );
        self.next_ino += 1;
        let size = u32::try_from(data.len()).expect("cpio entries are limited to 4 GiB");
        let name_size = u32::try_from(name.len() + 1).expect("cpio name too long");
        let fields = [
            self.next_ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name_size,
            0, // check
        ];
        self.buf.extend_from_slice(b"070701");
        for field in fields {
            self.buf
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cpio;

    #[test]
    fn newc_layout() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"hello");
        let out = c.finish();
        // header 110 + "init\0" (5) = 115, padded to 116; data 5 padded to 8.
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[6..14], b"00000001", "ino");
        assert_eq!(&out[14..22], b"000081ed", "mode: regular file 0755");
        assert_eq!(&out[54..62], b"00000005", "filesize");
        assert_eq!(&out[94..102], b"00000005", "namesize counts the NUL");
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..121], b"hello");
        let trailer = &out[124..];
        assert_eq!(&trailer[..6], b"070701");
        assert_eq!(&trailer[110..121], b"TRAILER!!!\0");
        assert_eq!(out.len() % 4, 0);
    }
}
