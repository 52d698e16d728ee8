//! `/proc/self/status`: the kernel's own account of ids, capability sets and no-new-privs.

use std::fmt::Write as _;

use crate::PrivilegeError;

/// The current process's credentials as the kernel reports them in `/proc/self/status`.
///
/// The capability fields are the main thread's (that is what `/proc/self/status` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcState {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub cap_eff: u64,
    pub cap_prm: u64,
    pub cap_inh: u64,
    pub cap_bnd: u64,
    pub cap_amb: u64,
    pub no_new_privs: bool,
}

impl ProcState {
    /// One line, `key=value` separated by spaces, masks as 16 hex digits as in
    /// `/proc/self/status`:
    /// `uid=1000/1000/1000 gid=1000/1000/1000 cap_eff=0000000000001000 cap_prm=0000000000001000
    /// cap_inh=0000000000000000 cap_bnd=0000000000001000 cap_amb=0000000000000000 no_new_privs=1`.
    pub fn summary(&self) -> String {
        let mut s = String::with_capacity(200);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "uid={}/{}/{} gid={}/{}/{} cap_eff={:016x} cap_prm={:016x} cap_inh={:016x} \
             cap_bnd={:016x} cap_amb={:016x} no_new_privs={}",
            self.ruid,
            self.euid,
            self.suid,
            self.rgid,
            self.egid,
            self.sgid,
            self.cap_eff,
            self.cap_prm,
            self.cap_inh,
            self.cap_bnd,
            self.cap_amb,
            u8::from(self.no_new_privs),
        );
        s
    }
}

/// Reads `/proc/self/status` in full.
pub(crate) fn read_status() -> Result<String, PrivilegeError> {
    std::fs::read_to_string("/proc/self/status")
        .map_err(|source| PrivilegeError::ReadStatus { source })
}

/// The value of the `Name:` line, with surrounding whitespace removed.
fn field<'a>(status: &'a str, name: &'static str) -> Result<&'a str, PrivilegeError> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .ok_or(PrivilegeError::ParseStatus { field: name })
}

/// `Uid:`/`Gid:` carry real, effective, saved and filesystem ids; the first three are returned.
fn ids(status: &str, name: &'static str) -> Result<(u32, u32, u32), PrivilegeError> {
    let bad = || PrivilegeError::ParseStatus { field: name };
    let mut it = field(status, name)?
        .split_whitespace()
        .map(str::parse::<u32>);
    let mut next = || it.next().ok_or_else(bad)?.map_err(|_| bad());
    Ok((next()?, next()?, next()?))
}

fn mask(status: &str, name: &'static str) -> Result<u64, PrivilegeError> {
    u64::from_str_radix(field(status, name)?, 16)
        .map_err(|_| PrivilegeError::ParseStatus { field: name })
}

fn number(status: &str, name: &'static str) -> Result<u32, PrivilegeError> {
    field(status, name)?
        .parse()
        .map_err(|_| PrivilegeError::ParseStatus { field: name })
}

/// Parses the text of a `/proc/<pid>/status` file.
pub(crate) fn parse(status: &str) -> Result<ProcState, PrivilegeError> {
    let (ruid, euid, suid) = ids(status, "Uid")?;
    let (rgid, egid, sgid) = ids(status, "Gid")?;
    let no_new_privs = match number(status, "NoNewPrivs")? {
        0 => false,
        1 => true,
        _ => {
            return Err(PrivilegeError::ParseStatus {
                field: "NoNewPrivs",
            })
        }
    };
    Ok(ProcState {
        ruid,
        euid,
        suid,
        rgid,
        egid,
        sgid,
        cap_eff: mask(status, "CapEff")?,
        cap_prm: mask(status, "CapPrm")?,
        cap_inh: mask(status, "CapInh")?,
        cap_bnd: mask(status, "CapBnd")?,
        cap_amb: mask(status, "CapAmb")?,
        no_new_privs,
    })
}

/// The `Threads:` count of a status text.
pub(crate) fn threads(status: &str) -> Result<u32, PrivilegeError> {
    number(status, "Threads")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Name:\tdrop_probe\nUmask:\t0022\nState:\tR (running)\nTgid:\t42\n\
        Uid:\t12345\t12345\t12345\t12345\nGid:\t12346\t12346\t12346\t12346\n\
        Groups:\t10 20 \nThreads:\t1\n\
        CapInh:\t0000000000000000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\n\
        CapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t0\n";

    #[test]
    fn parses_a_status_file() {
        let st = parse(SAMPLE).unwrap();
        assert_eq!(
            st,
            ProcState {
                ruid: 12345,
                euid: 12345,
                suid: 12345,
                rgid: 12346,
                egid: 12346,
                sgid: 12346,
                cap_eff: 1 << 12,
                cap_prm: 1 << 12,
                cap_inh: 0,
                cap_bnd: 0x1ff_feff_ffff,
                cap_amb: 0,
                no_new_privs: true,
            }
        );
        assert_eq!(threads(SAMPLE).unwrap(), 1);
        assert_eq!(
            st.summary(),
            "uid=12345/12345/12345 gid=12346/12346/12346 cap_eff=0000000000001000 \
             cap_prm=0000000000001000 cap_inh=0000000000000000 cap_bnd=000001fffeffffff \
             cap_amb=0000000000000000 no_new_privs=1"
        );
    }

    #[test]
    fn does_not_confuse_prefixes() {
        // "Uid" must not match a hypothetical "Uidx:" line, nor "CapEff" a "CapEffX:" one.
        let text = SAMPLE.replace("Uid:", "Uidx:\t1 2 3 4\nUid:");
        assert_eq!(parse(&text).unwrap().ruid, 12345);
    }

    #[test]
    fn names_the_missing_or_bad_field() {
        let text = SAMPLE.replace("CapAmb:", "CapAmbient:");
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(err, PrivilegeError::ParseStatus { field: "CapAmb" }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "cannot parse /proc/self/status: the CapAmb line is missing or malformed"
        );

        let text = SAMPLE.replace("Gid:\t12346\t12346\t12346", "Gid:\t12346\tx\t12346");
        assert!(matches!(
            parse(&text),
            Err(PrivilegeError::ParseStatus { field: "Gid" })
        ));

        let text = SAMPLE.replace("Uid:\t12345\t12345\t12345\t12345", "Uid:\t12345\t12345");
        assert!(matches!(
            parse(&text),
            Err(PrivilegeError::ParseStatus { field: "Uid" })
        ));

        let text = SAMPLE.replace("NoNewPrivs:\t1", "NoNewPrivs:\t2");
        assert!(matches!(
            parse(&text),
            Err(PrivilegeError::ParseStatus {
                field: "NoNewPrivs"
            })
        ));

        let text = SAMPLE.replace("CapEff:\t0000000000001000", "CapEff:\tzz");
        assert!(matches!(
            parse(&text),
            Err(PrivilegeError::ParseStatus { field: "CapEff" })
        ));
    }

    #[test]
    fn reads_this_process() {
        let text = read_status().unwrap();
        let st = parse(&text).unwrap();
        assert_eq!(st.ruid, nix::unistd::getuid().as_raw());
        assert_eq!(st.egid, nix::unistd::getegid().as_raw());
        assert!(threads(&text).unwrap() >= 1);
    }
}
