//! `diskspace.<mount>.*`: bytes and inodes of mounted filesystems, from /proc/mounts and
//! statvfs(3), with Diamond's DiskSpaceCollector names and mount naming.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::collectors::{Batch, Pattern};

/// One /proc/mounts line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
}

/// Undo the octal escapes /proc/mounts uses for space, tab, newline and backslash.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Parse /proc/mounts (`device mount_point fs_type options dump pass`).
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_ascii_whitespace();
            Some(Mount {
                device: unescape(cols.next()?),
                mount_point: unescape(cols.next()?),
                fs_type: cols.next()?.to_string(),
            })
        })
        .collect()
}

/// Diamond's rule for which mounts are real filesystems worth reporting: the type is in
/// `filesystems`, the mount point is absolute and not excluded, and the device is a path, a
/// network source (`host:/export`) or `tmpfs`.
pub fn selected(m: &Mount, filesystems: &[String], exclude: &[Pattern]) -> bool {
    filesystems.contains(&m.fs_type)
        && m.mount_point.starts_with('/')
        && !exclude.iter().any(|p| p.0.is_match(&m.mount_point))
        && (m.device.contains('/') || m.device.contains(':') || m.device == "tmpfs")
}

/// The path segment for a mount: its filesystem label when it has one, else the mount point
/// with `/` and `.` turned into `_` (`/` → `root`, `/tmp` → `tmp`, `/var/log` → `_var_log`).
pub fn mount_name(mount_point: &str, label: Option<&str>) -> String {
    if let Some(label) = label {
        return label.replace(['/', '.'], "_");
    }
    let name = mount_point.replace(['/', '.'], "_").replace('\\', "");
    match name.as_str() {
        "_" => "root".to_string(),
        "_tmp" => "tmp".to_string(),
        _ => name,
    }
}

/// One measured filesystem: its path segment and its figures.
pub type Measured = (String, Vec<(&'static str, f64)>);

/// The statvfs(3) fields used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vfs {
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
}

/// The published figures for one filesystem, in publishing order. Like Diamond, the percent
/// free counts blocks free to root (`f_bfree`); `byte_avail` is what other users can use.
/// `inodes_percentfree` is left out for filesystems without an inode count (btrfs, vfat).
pub fn figures(v: &Vfs) -> Vec<(&'static str, f64)> {
    let pct = |part: u64, whole: u64| part as f64 * 100.0 / whole as f64;
    let mut out = Vec::with_capacity(8);
    out.push((
        "byte_percentfree",
        if v.blocks > 0 {
            pct(v.bfree, v.blocks)
        } else {
            0.0
        },
    ));
    let bytes = |blocks: u64| blocks as f64 * v.frsize as f64;
    out.push(("byte_used", bytes(v.blocks.saturating_sub(v.bfree))));
    out.push(("byte_free", bytes(v.bfree)));
    out.push(("byte_avail", bytes(v.bavail)));
    if v.files > 0 {
        out.push(("inodes_percentfree", pct(v.ffree, v.files)));
    }
    out.push(("inodes_used", v.files.saturating_sub(v.ffree) as f64));
    out.push(("inodes_free", v.ffree as f64));
    out.push(("inodes_avail", v.favail as f64));
    out
}

/// statvfs(3) of a path.
pub fn statvfs(path: &Path) -> std::io::Result<Vfs> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `c` is a valid NUL-terminated string and `buf` a properly sized out-parameter
    // that statvfs fully initialises on success (checked before use).
    let mut buf: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(Vfs {
        frsize: buf.f_frsize as u64,
        blocks: buf.f_blocks as u64,
        bfree: buf.f_bfree as u64,
        bavail: buf.f_bavail as u64,
        files: buf.f_files as u64,
        ffree: buf.f_ffree as u64,
        favail: buf.f_favail as u64,
    })
}

/// Map device paths to filesystem labels from /dev/disk/by-label (empty when absent).
pub fn labels() -> HashMap<PathBuf, String> {
    let mut map = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/dev/disk/by-label") else {
        return map;
    };
    for entry in dir.flatten() {
        if let Ok(dev) = std::fs::canonicalize(entry.path()) {
            let label = entry.file_name().to_string_lossy().replace("\\x2f", "/");
            map.insert(dev, label);
        }
    }
    map
}

/// Measure the selected mounts (blocking: statvfs on a hung network mount blocks, so the
/// caller runs this off the async threads). Several mounts of one filesystem (bind mounts)
/// are reported once, under the first mount point. Returns `(name, figures)` and the mounts
/// that could not be measured, with the error.
pub fn measure(mounts: Vec<Mount>) -> (Vec<Measured>, Vec<String>) {
    use std::os::unix::fs::MetadataExt;
    let labels = labels();
    let mut seen = std::collections::HashSet::new();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for m in mounts {
        let path = Path::new(&m.mount_point);
        let Ok(meta) = std::fs::metadata(path) else {
            continue; // not mounted any more
        };
        if !seen.insert(meta.dev()) {
            continue;
        }
        match statvfs(path) {
            Ok(v) => {
                let dev =
                    std::fs::canonicalize(&m.device).unwrap_or_else(|_| PathBuf::from(&m.device));
                let name = mount_name(&m.mount_point, labels.get(&dev).map(String::as_str));
                results.push((name, figures(&v)));
            }
            Err(e) => errors.push(format!("statvfs {}: {e}", m.mount_point)),
        }
    }
    (results, errors)
}

/// Publish measured figures.
pub fn publish(results: Vec<Measured>, out: &mut Batch) {
    for (name, figures) in results {
        for (metric, v) in figures {
            out.gauge(format!("diskspace.{name}.{metric}"), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12334492k 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
/dev/vda / ext4 rw,relatime,discard 0 0
/dev/vdb1 /var/log xfs rw 0 0
/dev/vdc1 /mnt/my\\040disk ext4 rw 0 0
overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
nas:/export /srv/nfs nfs4 rw 0 0
/dev/vdd1 /export/home ext4 rw 0 0
";

    fn default_fs() -> Vec<String> {
        ["ext4", "xfs", "nfs4"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn parse_and_select() {
        let mounts = parse_mounts(MOUNTS);
        assert_eq!(mounts.len(), 11);
        assert_eq!(mounts[6].mount_point, "/mnt/my disk");
        let exclude = vec![Pattern(regex_lite::Regex::new("^/export/home").unwrap())];
        let picked: Vec<&str> = mounts
            .iter()
            .filter(|m| selected(m, &default_fs(), &exclude))
            .map(|m| m.mount_point.as_str())
            .collect();
        assert_eq!(picked, ["/", "/var/log", "/mnt/my disk", "/srv/nfs"]);
        // tmpfs is a real device name for Diamond, when asked for.
        let tmpfs = vec!["tmpfs".to_string()];
        assert!(selected(&mounts[3], &tmpfs, &[]));
    }

    #[test]
    fn mount_names() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("/", None, "root"),
            ("/tmp", None, "tmp"),
            ("/var/log", None, "_var_log"),
            ("/srv/www.example", None, "_srv_www_example"),
            ("/mnt/my disk", None, "_mnt_my disk"),
            ("/data", Some("DATA.1"), "DATA_1"),
        ];
        for (mount, label, want) in cases {
            assert_eq!(mount_name(mount, *label), *want, "{mount}");
        }
    }

    #[test]
    fn figures_cases() {
        let v = Vfs {
            frsize: 4096,
            blocks: 1000,
            bfree: 250,
            bavail: 200,
            files: 100,
            ffree: 40,
            favail: 30,
        };
        assert_eq!(
            figures(&v),
            [
                ("byte_percentfree", 25.0),
                ("byte_used", 750.0 * 4096.0),
                ("byte_free", 250.0 * 4096.0),
                ("byte_avail", 200.0 * 4096.0),
                ("inodes_percentfree", 40.0),
                ("inodes_used", 60.0),
                ("inodes_free", 40.0),
                ("inodes_avail", 30.0),
            ]
        );
        // No inode count (btrfs), empty filesystem.
        let names: Vec<&str> = figures(&Vfs::default()).iter().map(|(n, _)| *n).collect();
        assert!(!names.contains(&"inodes_percentfree"));
        assert_eq!(figures(&Vfs::default())[0], ("byte_percentfree", 0.0));
    }

    #[test]
    fn statvfs_of_root_is_sane() {
        let v = statvfs(Path::new("/")).unwrap();
        assert!(v.frsize > 0 && v.blocks > 0 && v.bfree <= v.blocks && v.bavail <= v.bfree);
        assert!(statvfs(Path::new("/no/such/dir")).is_err());
    }

    #[test]
    fn bind_mounts_are_reported_once() {
        let twice = vec![
            Mount {
                device: "/dev/x".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
            },
            Mount {
                device: "/dev/x".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
            },
            Mount {
                device: "/dev/x".into(),
                mount_point: "/gone/away".into(),
                fs_type: "ext4".into(),
            },
        ];
        let (results, errors) = measure(twice);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].0, "root");
        assert!(errors.is_empty());
    }
}
