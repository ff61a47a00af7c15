//! Where clamd's plaintext lands. clamd's INSTREAM writes each whole upload to its
//! TemporaryDirectory before scanning it, and a clamd killed mid-scan leaves that copy behind:
//! on a disk, the plaintext outlives the upload. When clamd is a process on this machine,
//! reached over a Unix socket, we find it in /proc, read its TemporaryDirectory, and look in
//! clamd's own mount namespace (where systemd gives it a private tmpfs) for the filesystem
//! under that directory. Whatever we cannot read means "cannot tell", never a warning.

mod clamd_conf;
mod procfs;

use std::collections::HashSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use upgate_config::ClamdAddr;

use procfs::Mount;

/// clamd's config file when its command line names none (Debian's build).
const DEFAULT_CONFIG: &str = "/etc/clamav/clamd.conf";
/// clamd's temporary directory when neither TemporaryDirectory nor its TMPDIR names one.
const DEFAULT_TMPDIR: &str = "/tmp";
/// Filesystems whose files are in memory only.
const IN_MEMORY: &[&str] = &["tmpfs", "ramfs"];
/// Symbolic links followed in one path before it counts as a loop, as in the kernel.
const MAX_LINKS: usize = 40;

/// "Cannot tell" is said once per process: it is the normal case for a clamd on another
/// machine, and saying it at every proof would be noise.
static SAID_CANNOT_TELL: AtomicBool = AtomicBool::new(false);

/// The readiness warning when clamd's temporary files are not in memory; `None` when they
/// are, or when we cannot tell. Reads a few small /proc files: a few milliseconds.
pub fn warning(addr: &ClamdAddr) -> Option<String> {
    match placement(addr) {
        Ok(p) if IN_MEMORY.contains(&p.fstype.as_str()) => {
            tracing::debug!(placement = %p, "clamd's temporary files are in memory");
            None
        }
        Ok(p) => Some(format!(
            "{p}, not tmpfs: clamd writes every scanned file there in plaintext, and a clamd stopped \
             mid-scan leaves that copy on the disk. Give clamd a private tmpfs: \
             config/clamav/clamd-upgate.conf and config/clamav/clamav-daemon.service.d/upgate-tmpfs.conf, \
             see \"Setting up clamd\" in docs/operations.md"
        )),
        Err(why) => {
            if !SAID_CANNOT_TELL.swap(true, Ordering::Relaxed) {
                tracing::debug!(%why, "cannot tell whether clamd's TemporaryDirectory is on tmpfs");
            }
            None
        }
    }
}

/// Where clamd's temporary files go.
struct Placement {
    /// The directory as clamd names it.
    dir: PathBuf,
    source: Source,
    /// `dir` with its symbolic links resolved, as clamd sees it.
    resolved: PathBuf,
    fstype: String,
    mount_point: PathBuf,
}

/// Where clamd got its temporary directory from.
enum Source {
    /// TemporaryDirectory in this config file.
    Config(PathBuf),
    /// clamd's $TMPDIR, this config file naming none.
    Tmpdir(PathBuf),
    /// The default, this config file naming none and clamd having no $TMPDIR.
    Default(PathBuf),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.dir.display();
        match &self.source {
            Source::Config(conf) => write!(f, "clamd's TemporaryDirectory {dir} (in {})", conf.display())?,
            Source::Tmpdir(conf) => write!(
                f,
                "clamd's temporary directory {dir} (its TMPDIR: {} sets no TemporaryDirectory)",
                conf.display()
            )?,
            Source::Default(conf) => write!(
                f,
                "clamd's temporary directory {dir} ({} sets no TemporaryDirectory)",
                conf.display()
            )?,
        }
        if self.resolved != self.dir {
            write!(f, ", that is {},", self.resolved.display())?;
        }
        write!(
            f,
            " is on {} (mounted at {})",
            self.fstype,
            self.mount_point.display()
        )
    }
}

fn placement(addr: &ClamdAddr) -> Result<Placement, String> {
    let ClamdAddr::Unix(socket) = addr else {
        return Err("clamd is reached over TCP: its files may be on another machine".into());
    };
    let socket = std::fs::canonicalize(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    let clamd = find(&socket)?;
    let (dir, source) = match clamd_conf::option(&clamd.conf, "TemporaryDirectory") {
        Some(dir) => (PathBuf::from(dir), Source::Config(clamd.config.clone())),
        // Without one, libclamav takes $TMPDIR, then /tmp. An environment we may not read is
        // taken to have no TMPDIR, as a service's has unless its unit sets one.
        None => match std::fs::read(format!("/proc/{}/environ", clamd.pid))
            .ok()
            .and_then(|env| procfs::env_var(&procfs::nul_separated(&env), "TMPDIR"))
        {
            Some(tmpdir) => (PathBuf::from(tmpdir), Source::Tmpdir(clamd.config.clone())),
            None => (
                PathBuf::from(DEFAULT_TMPDIR),
                Source::Default(clamd.config.clone()),
            ),
        },
    };
    let resolved = clamd
        .view
        .resolve(&dir)
        .ok_or_else(|| format!("clamd's temporary directory {} cannot be resolved", dir.display()))?;
    let mount = procfs::mount_of(&clamd.mounts, &resolved)
        .ok_or_else(|| format!("no mount holds {} for clamd", resolved.display()))?;
    Ok(Placement {
        dir,
        source,
        fstype: mount.fstype.clone(),
        mount_point: mount.point.clone(),
        resolved,
    })
}

/// A clamd process and what we could read about it.
struct Process {
    pid: u32,
    view: View,
    /// Its mounts, as its mount namespace has them.
    mounts: Vec<Mount>,
    /// Its config file and the text in it.
    config: PathBuf,
    conf: String,
}

/// The one clamd process on this machine that serves `socket` (canonical). Only processes
/// named `clamd` are candidates: the socket's other holder, systemd's socket activation,
/// is not the scanner.
fn find(socket: &Path) -> Result<Process, String> {
    let sockets = std::fs::read_to_string("/proc/net/unix").map_err(|e| format!("/proc/net/unix: {e}"))?;
    let inodes: HashSet<u64> = procfs::unix_sockets(&sockets)
        .into_iter()
        .filter(|s| s.path.file_name() == socket.file_name())
        .filter(|s| std::fs::canonicalize(&s.path).is_ok_and(|p| p == socket))
        .map(|s| s.inode)
        .collect();
    let mut found = Vec::new();
    let procs = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read(format!("/proc/{pid}/comm")).ok().as_deref() != Some(b"clamd\n") {
            continue;
        }
        if let Some(clamd) = serving(pid, socket, &inodes) {
            found.push(clamd);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "no clamd process here is known to serve {}",
            socket.display()
        )),
        n => Err(format!("{n} clamd processes here claim {}", socket.display())),
    }
}

/// `Some` when clamd process `pid` serves `socket`: it holds one of the socket's `inodes` (a
/// listening socket or a connection it accepted, such as the watch's session) or, when its
/// descriptors are not ours to see, its config names that socket.
fn serving(pid: u32, socket: &Path, inodes: &HashSet<u64>) -> Option<Process> {
    let mounts = procfs::mountinfo(&std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?);
    let view = View::of(pid, &mounts)?;
    let holds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok().map(|fds| {
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|link| procfs::socket_inode(&link))
                .is_some_and(|inode| inodes.contains(&inode))
        })
    });
    if holds == Some(false) {
        return None;
    }
    let argv = procfs::nul_separated(&std::fs::read(format!("/proc/{pid}/cmdline")).ok()?);
    let config = procfs::config_file(&argv).unwrap_or_else(|| DEFAULT_CONFIG.into());
    let conf = view.read_to_string(&config)?;
    // The config must be the one this clamd runs with: one that names another socket is a
    // wrong guess at the default, or another clamd's. One that names none (socket activation
    // only) ties nothing to our socket unless the descriptors did.
    match clamd_conf::option(&conf, "LocalSocket") {
        Some(named) if view.resolve(Path::new(&named)).as_deref() != Some(socket) => return None,
        None if holds.is_none() => return None,
        _ => {}
    }
    Some(Process {
        pid,
        view,
        mounts,
        config,
        conf,
    })
}

/// How the files clamd sees are read from here.
enum View {
    /// Through /proc/PID/root: clamd's own root and mount namespace (we may look into it).
    Own(PathBuf),
    /// Our own paths: we may not look into clamd's, but its root is the filesystem ours is.
    Shared,
}

impl View {
    fn of(pid: u32, mounts: &[Mount]) -> Option<View> {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        if std::fs::read_link(&root).is_ok() {
            return Some(View::Own(root));
        }
        let ours = procfs::mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").ok()?);
        let top =
            |m: &[Mount]| procfs::mount_of(m, Path::new("/")).map(|m| (m.device.clone(), m.root.clone()));
        (top(mounts).is_some() && top(mounts) == top(&ours)).then_some(View::Shared)
    }

    /// Where clamd's absolute path `path` is for us.
    fn here(&self, path: &Path) -> PathBuf {
        match self {
            View::Own(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            View::Shared => path.to_path_buf(),
        }
    }

    fn read_to_string(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(self.here(path)).ok()
    }

    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        resolve(path, |p| std::fs::read_link(self.here(p)).ok())
    }
}

/// `path` with each symbolic link replaced by its target, one component at a time, so that
/// every link is read in clamd's view and `..` after a link climbs from its target.
/// `read_link` gives a link's target, `None` for anything else (a missing part included:
/// the rest is taken as written). `None` for a relative path or a loop.
fn resolve(path: &Path, mut read_link: impl FnMut(&Path) -> Option<PathBuf>) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut done = PathBuf::from("/");
    // What is left to walk, last component first.
    let mut todo: Vec<PathBuf> = path
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        match part.components().next() {
            Some(Component::RootDir) => done = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                done.pop();
            }
            Some(Component::Normal(name)) => {
                let next = done.join(name);
                match read_link(&next) {
                    Some(target) => {
                        links += 1;
                        if links > MAX_LINKS {
                            return None;
                        }
                        todo.extend(target.components().rev().map(|c| PathBuf::from(c.as_os_str())));
                    }
                    None => done = next,
                }
            }
            Some(Component::CurDir | Component::Prefix(_)) | None => {}
        }
    }
    Some(done)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolved(path: &str, links: &[(&str, &str)]) -> Option<String> {
        let links: HashMap<PathBuf, PathBuf> = links.iter().map(|(l, t)| (l.into(), t.into())).collect();
        resolve(Path::new(path), |p| links.get(p).cloned()).map(|p| p.display().to_string())
    }

    #[test]
    fn symbolic_links_are_followed_as_clamd_would() {
        assert_eq!(
            resolved("/run/clamav-scan", &[]).as_deref(),
            Some("/run/clamav-scan")
        );
        // Debian's /var/run is a link to /run: the mount is looked up where the files go.
        let var_run = [("/var/run", "/run")];
        assert_eq!(
            resolved("/var/run/clamav-scan", &var_run).as_deref(),
            Some("/run/clamav-scan")
        );
        let relative = [("/srv/scan", "../run/scan")];
        assert_eq!(resolved("/srv/scan/x", &relative).as_deref(), Some("/run/scan/x"));
        // `..` climbs from a link's target, not from the link.
        let deep = [("/a/link", "/x/y/z")];
        assert_eq!(resolved("/a/link/../w", &deep).as_deref(), Some("/x/y/w"));
        assert_eq!(resolved("/./a/./b/", &[]).as_deref(), Some("/a/b"));
        assert_eq!(resolved("/../..", &[]).as_deref(), Some("/"));
        // A chain of links, and a loop.
        let chain = [("/a", "/b"), ("/b", "c"), ("/c", "/d/e")];
        assert_eq!(resolved("/a/f", &chain).as_deref(), Some("/d/e/f"));
        assert_eq!(resolved("/l/x", &[("/l", "/l")]), None);
        assert_eq!(resolved("relative/tmp", &[]), None);
    }

    #[test]
    fn the_warning_names_the_directory_the_filesystem_and_the_fix() {
        let p = Placement {
            dir: "/var/tmp/clamd".into(),
            source: Source::Config("/etc/clamav/clamd.conf".into()),
            resolved: "/var/tmp/clamd".into(),
            fstype: "ext4".into(),
            mount_point: "/".into(),
        };
        assert_eq!(
            p.to_string(),
            "clamd's TemporaryDirectory /var/tmp/clamd (in /etc/clamav/clamd.conf) is on ext4 (mounted at /)"
        );
        let p = Placement {
            dir: "/tmp".into(),
            source: Source::Default("/etc/clamav/clamd.conf".into()),
            resolved: "/private/tmp".into(),
            ..p
        };
        assert_eq!(
            p.to_string(),
            "clamd's temporary directory /tmp (/etc/clamav/clamd.conf sets no TemporaryDirectory), \
             that is /private/tmp, is on ext4 (mounted at /)"
        );
    }

    #[test]
    fn a_clamd_over_tcp_is_not_judged() {
        let addr = ClamdAddr::Tcp("127.0.0.1:3310".parse().unwrap());
        assert_eq!(warning(&addr), None);
    }
}
