//! The few /proc formats the temp-dir check reads, as pure functions over their text so
//! each can be tested without a process to look at.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// One line of /proc/PID/mountinfo, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    /// `major:minor` of the filesystem.
    pub device: String,
    /// The directory of that filesystem mounted here (not `/` for bind mounts).
    pub root: PathBuf,
    /// Where it is mounted, as the process whose mountinfo this is sees it.
    pub point: PathBuf,
    pub fstype: String,
}

/// Parses /proc/PID/mountinfo: `id parent major:minor root point options [optional...] -
/// fstype source super-options`. Lines that do not have that shape are skipped: a line we
/// cannot read must not decide anything.
pub fn mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(mount_line).collect()
}

fn mount_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    // The optional fields end at a lone "-", which can only come after the sixth field.
    let dash = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    Some(Mount {
        id: fields.first()?.parse().ok()?,
        parent: fields.get(1)?.parse().ok()?,
        device: fields.get(2)?.to_string(),
        root: PathBuf::from(unescape(fields.get(3)?)),
        point: PathBuf::from(unescape(fields.get(4)?)),
        fstype: unescape(fields.get(dash + 1)?).to_string_lossy().into_owned(),
    })
}

/// The kernel writes space, tab, newline and backslash in mountinfo paths as `\ooo` (octal),
/// so that the fields stay separated by single spaces.
fn unescape(field: &str) -> OsString {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                // Three octal digits can exceed a byte; the kernel never writes those.
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

/// The mount that holds `path`: the longest mount point that is a prefix of it. Of two
/// mounts on the same point the one on top counts: the child of the other or, failing that,
/// the later line.
pub fn mount_of<'m>(mounts: &'m [Mount], path: &Path) -> Option<&'m Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts.iter().filter(|m| path.starts_with(&m.point)) {
        let depth = m.point.components().count();
        best = match best {
            Some(b) => {
                let b_depth = b.point.components().count();
                if depth > b_depth || (depth == b_depth && b.parent != m.id) {
                    Some(m)
                } else {
                    Some(b)
                }
            }
            None => Some(m),
        };
    }
    best
}

/// A Unix socket bound to a filesystem path, from /proc/net/unix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    pub inode: u64,
    pub path: PathBuf,
}

/// Parses /proc/net/unix: `Num RefCount Protocol Flags Type St Inode Path`. The path is the
/// rest of the line after one space and may hold spaces; unnamed and abstract (`@`) sockets
/// are left out. A listening socket and every connection it accepted carry its path.
pub fn unix_sockets(text: &str) -> Vec<UnixSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut rest = line;
            let mut fields = Vec::with_capacity(7);
            for _ in 0..7 {
                let trimmed = rest.trim_start_matches(' ');
                let end = trimmed.find(' ').unwrap_or(trimmed.len());
                fields.push(&trimmed[..end]);
                rest = &trimmed[end..];
            }
            let path = rest.strip_prefix(' ')?;
            if !path.starts_with('/') {
                return None;
            }
            Some(UnixSocket {
                inode: fields[6].parse().ok()?,
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// The inode in a /proc/PID/fd link that is a socket: `socket:[12345]`.
pub fn socket_inode(link: &Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The arguments in /proc/PID/cmdline (or the entries of /proc/PID/environ): NUL-separated,
/// the last one NUL-terminated.
pub fn nul_separated(bytes: &[u8]) -> Vec<OsString> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// The value of `name` in an environment as /proc/PID/environ lists it, the first one as
/// getenv(3) returns it; an empty value counts as unset.
pub fn env_var(environ: &[OsString], name: &str) -> Option<OsString> {
    environ.iter().find_map(|entry| {
        let value = entry
            .as_bytes()
            .strip_prefix(name.as_bytes())?
            .strip_prefix(b"=")?;
        (!value.is_empty()).then(|| OsStr::from_bytes(value).to_os_string())
    })
}

/// clamd's long options that take an argument (`clamd --help`, 1.4); a prefix of one is
/// accepted by getopt as that option.
const LONG_WITH_ARGUMENT: &[&str] = &["config-file", "log", "pid", "datadir", "fail-if-cvd-older-than"];
/// Its short options that take one: `-c FILE`, `-l FILE`, `-p FILE`.
const SHORT_WITH_ARGUMENT: &[u8] = b"clp";

/// The config file clamd was started with, from its argv: `-c FILE`, `-cFILE`, `-FcFILE`,
/// `--config-file FILE`, `--config-file=FILE` (or any prefix of the name getopt accepts).
/// The first one counts, as clamd's own parser takes it. `None`: clamd reads its default.
pub fn config_file(argv: &[OsString]) -> Option<PathBuf> {
    let mut args = argv.iter().skip(1).map(|a| a.as_bytes());
    while let Some(arg) = args.next() {
        if arg == b"--" {
            return None;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, value) = match long.iter().position(|b| *b == b'=') {
                Some(eq) => (&long[..eq], Some(&long[eq + 1..])),
                None => (long, None),
            };
            let takes = |full: &str| !name.is_empty() && full.as_bytes().starts_with(name);
            if !LONG_WITH_ARGUMENT.iter().any(|o| takes(o)) {
                continue;
            }
            let value = match value {
                Some(v) => Some(v),
                None => args.next(),
            };
            if takes("config-file") {
                return value.map(|v| PathBuf::from(OsStr::from_bytes(v)));
            }
        } else if let Some(short) = arg.strip_prefix(b"-") {
            // A cluster of short options; the first that takes an argument takes the rest of
            // the word, or the next word.
            if let Some(at) = short.iter().position(|b| SHORT_WITH_ARGUMENT.contains(b)) {
                let rest = &short[at + 1..];
                let value = if rest.is_empty() { args.next() } else { Some(rest) };
                if short[at] == b'c' {
                    return value.map(|v| PathBuf::from(OsStr::from_bytes(v)));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn mountinfo_lines_with_escaped_spaces_and_optional_fields() {
        let text = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 27 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683568k
61 27 0:52 /upgate\\040data /srv/my\\040files\\011x rw master:3 propagate_from:2 - ext4 /dev/vdb rw
not a mountinfo line
62 61 0:53 / /srv/back\\134slash rw - fuse.sshfs host:/ rw
";
        let mounts = mountinfo(text);
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[0].point, Path::new("/"));
        assert_eq!(mounts[0].fstype, "ext4");
        assert_eq!(mounts[1].fstype, "tmpfs");
        assert_eq!(mounts[2].point, Path::new("/srv/my files\tx"));
        assert_eq!(mounts[2].root, Path::new("/upgate data"));
        assert_eq!(
            (mounts[2].id, mounts[2].parent, mounts[2].device.as_str()),
            (61, 27, "0:52")
        );
        assert_eq!(mounts[3].point, Path::new("/srv/back\\slash"));
        assert_eq!(mounts[3].fstype, "fuse.sshfs");
    }

    #[test]
    fn a_path_is_held_by_the_longest_mount_point_over_it() {
        let mounts = mountinfo(
            "\
27 1 254:0 / / rw - ext4 /dev/vda rw
40 27 0:30 / /run rw - tmpfs tmpfs rw
41 40 0:31 / /run/clamav-scan rw - tmpfs tmpfs rw
42 27 254:1 / /var rw - xfs /dev/vdb rw
43 27 0:32 / /srv/my\\040tmp rw - tmpfs tmpfs rw
",
        );
        let fs = |p: &str| mount_of(&mounts, Path::new(p)).map(|m| m.id);
        assert_eq!(fs("/run/clamav-scan/clamav-1.tmp"), Some(41));
        assert_eq!(
            fs("/run/clamav-scanner"),
            Some(40),
            "a prefix of the name is not a prefix of the path"
        );
        assert_eq!(fs("/var/tmp"), Some(42));
        assert_eq!(fs("/tmp"), Some(27));
        assert_eq!(fs("/srv/my tmp/x"), Some(43));
        assert_eq!(fs("/srv/my"), Some(27));
    }

    #[test]
    fn of_two_mounts_on_one_point_the_one_on_top_counts() {
        // As /dev/shm shows in some containers: a tmpfs mounted over another.
        let stacked = mountinfo(
            "\
27 1 254:0 / / rw - ext4 /dev/vda rw
30 25 0:27 / /dev/shm rw - tmpfs shm rw
25 27 0:23 / /dev/shm rw - ext4 /dev/vdc rw
",
        );
        assert_eq!(
            mount_of(&stacked, Path::new("/dev/shm/x")).map(|m| m.id),
            Some(30)
        );
        let in_order = mountinfo(
            "\
27 1 254:0 / / rw - ext4 /dev/vda rw
25 27 0:23 / /dev/shm rw - ext4 /dev/vdc rw
30 25 0:27 / /dev/shm rw - tmpfs shm rw
",
        );
        assert_eq!(
            mount_of(&in_order, Path::new("/dev/shm/x")).map(|m| m.id),
            Some(30)
        );
        assert_eq!(mount_of(&[], Path::new("/x")), None);
    }

    #[test]
    fn unix_sockets_with_their_paths() {
        let text = "\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01  1234 /run/clamav/clamd.ctl
0000000000000000: 00000003 00000000 00000000 0001 03 92098 /run/clamav/clamd.ctl
0000000000000000: 00000003 00000000 00000000 0001 03 92099
0000000000000000: 00000002 00000000 00010000 0001 01 92100 @/tmp/.X11-unix/X0
0000000000000000: 00000002 00000000 00010000 0001 01 92101 /tmp/with space/s.sock
";
        assert_eq!(
            unix_sockets(text),
            vec![
                UnixSocket {
                    inode: 1234,
                    path: "/run/clamav/clamd.ctl".into()
                },
                UnixSocket {
                    inode: 92098,
                    path: "/run/clamav/clamd.ctl".into()
                },
                UnixSocket {
                    inode: 92101,
                    path: "/tmp/with space/s.sock".into()
                },
            ]
        );
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(Path::new("socket:[92098]")), Some(92098));
        assert_eq!(socket_inode(Path::new("pipe:[92098]")), None);
        assert_eq!(socket_inode(Path::new("/run/clamav/clamd.ctl")), None);
        assert_eq!(socket_inode(Path::new("socket:[]")), None);
    }

    #[test]
    fn cmdline_and_environ_are_nul_separated() {
        assert_eq!(
            nul_separated(b"/usr/sbin/clamd\0-c\0/etc/x y.conf\0"),
            os(&["/usr/sbin/clamd", "-c", "/etc/x y.conf"])
        );
        assert_eq!(nul_separated(b"clamd"), os(&["clamd"]));
        assert_eq!(nul_separated(b""), Vec::<OsString>::new());
        assert_eq!(nul_separated(b"a\0\0b\0"), os(&["a", "", "b"]));
        let env = nul_separated(b"HOME=/root\0TMPDIR=/run/t\0TMPDIR=/other\0EMPTY=\0");
        assert_eq!(env_var(&env, "TMPDIR"), Some("/run/t".into()));
        assert_eq!(env_var(&env, "EMPTY"), None);
        assert_eq!(env_var(&env, "TMP"), None);
        assert_eq!(env_var(&env, "PATH"), None);
    }

    #[test]
    fn the_config_file_in_clamds_arguments() {
        let conf = |args: &[&str]| config_file(&os(args)).map(|p| p.display().to_string());
        assert_eq!(conf(&["/usr/sbin/clamd", "--foreground=true"]), None);
        assert_eq!(conf(&["clamd", "-c", "/a.conf"]), Some("/a.conf".into()));
        assert_eq!(conf(&["clamd", "-c/a.conf"]), Some("/a.conf".into()));
        assert_eq!(conf(&["clamd", "-Fc", "/a.conf"]), Some("/a.conf".into()));
        assert_eq!(conf(&["clamd", "-Fc/a.conf"]), Some("/a.conf".into()));
        assert_eq!(conf(&["clamd", "--config-file=/a.conf"]), Some("/a.conf".into()));
        assert_eq!(
            conf(&["clamd", "--config-file", "/a.conf"]),
            Some("/a.conf".into())
        );
        assert_eq!(conf(&["clamd", "--config-f=/a.conf"]), Some("/a.conf".into()));
        // The first one counts, as in clamd's own parser.
        assert_eq!(
            conf(&["clamd", "-c", "/a.conf", "-c", "/b.conf"]),
            Some("/a.conf".into())
        );
        // Other options' arguments are not config files.
        assert_eq!(conf(&["clamd", "-l", "-c", "--pid", "-c"]), None);
        assert_eq!(
            conf(&["clamd", "--log", "-c", "-c", "/b.conf"]),
            Some("/b.conf".into())
        );
        assert_eq!(conf(&["clamd", "-lc", "-c", "/b.conf"]), Some("/b.conf".into()));
        assert_eq!(conf(&["clamd", "--", "-c", "/a.conf"]), None);
        assert_eq!(conf(&["clamd", "-c"]), None);
        assert_eq!(conf(&["clamd"]), None);
    }
}
