//! Untrusted artifact input: a path read from an artifact (a manifest, a result, a plan, a
//! phase record) is confined to the root it was found in, and a file a command reads is opened
//! only if it is a regular file, without following a link, and read whole only up to a cap.
//!
//! The rules, in one place for every command that reads artifacts (`verify`, `report`,
//! `compare`, `diff`, `train`'s resume, `collect`, `run-job`):
//!
//! - a recorded path is taken only as `<recorded root>/<rel>`, where `rel` is made of plain
//!   names (no `..`, no `.`, not absolute), and read now as `<root>/<rel>`: the root as given
//!   now, never the current folder ([`within`], [`join`]);
//! - no component of `rel` may be a symbolic link ([`join`] checks each with `lstat`); the root
//!   itself is the caller's (a path the user gave, or one derived from it);
//! - a file is opened `O_NOFOLLOW | O_NONBLOCK` and used only if `fstat` says it is a regular
//!   file ([`open_regular`]): a FIFO, a device (`/dev/zero`) or a folder is refused at once,
//!   never read; a file read whole is read only up to a cap ([`read_capped`]).
//!
//! Received artifacts are static files: the checks are made when a path is used (`lstat` of
//! each component, then an `O_NOFOLLOW` open), which a process racing the command on the same
//! machine could outrun; that adversary is out of scope (the root lock keeps our own writers
//! apart).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Cap on a JSON artifact read whole (a job's `result.json` or `training_config.json`, a skip
/// summary, a phase record, `study.json`, a comparison manifest): far above what the toolkit
/// writes (a result of 100,000 epochs of loss history is a few MB).
pub const JSON_CAP: u64 = 64 << 20;

/// An error of kind `InvalidData` whose message names `path`.
fn refused(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

/// Checks that `rel` is a relative path of plain names (at least one): no `..`, no `.`, no
/// root or prefix. Returns why not.
pub fn plain_relative(rel: &Path) -> Result<(), String> {
    let mut any = false;
    for component in rel.components() {
        match component {
            Component::Normal(_) => any = true,
            Component::ParentDir => return Err("it climbs out with `..`".into()),
            Component::CurDir => return Err("it has a `.` component".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("it is absolute".into());
            }
        }
    }
    if any {
        Ok(())
    } else {
        Err("it is empty".into())
    }
}

/// `root/rel`, refused unless `rel` is made of plain names ([`plain_relative`]) and no
/// component of it that exists is a symbolic link. Components that do not exist yet are
/// allowed (a folder about to be created); the root itself is not checked.
pub fn join(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    plain_relative(rel).map_err(|why| {
        refused(
            rel,
            format_args!("not a path inside {}: {why}", root.display()),
        )
    })?;
    let mut path = root.to_path_buf();
    for component in rel.components() {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refused(
                    &path,
                    "is a symbolic link; a path read from an artifact is never followed \
                     through a link",
                ));
            }
            Ok(_) => {}
            // Nothing further down exists either: nothing to follow.
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(refused(&path, e)),
        }
    }
    Ok(root.join(rel))
}

/// The relocation rule, confined: a path recorded under `recorded_root` (the root a run was
/// given) is read under `root` (the root as given now) with [`join`]; any other path (outside
/// the recorded root, or climbing out of it) is refused.
pub fn within(recorded: &Path, recorded_root: &Path, root: &Path) -> io::Result<PathBuf> {
    let rel = recorded.strip_prefix(recorded_root).map_err(|_| {
        refused(
            recorded,
            format_args!(
                "outside the root {} it must be under",
                recorded_root.display()
            ),
        )
    })?;
    join(root, rel)
}

/// Opens `path` for reading only if it is a regular file, without following a link at its
/// last component and without blocking (a FIFO or a device is refused, never read).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
    );
    let file = options.open(path).map_err(|e| {
        // ELOOP: the last component is a link.
        if e.raw_os_error() == Some(libc::ELOOP) {
            refused(path, "is a symbolic link (not followed)")
        } else {
            io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "a device, FIFO or socket"
        };
        return Err(refused(
            path,
            format_args!("is not a regular file (it is {what}; not read)"),
        ));
    }
    Ok(file)
}

/// The bytes of the regular file `path` ([`open_regular`]), refused when it holds more than
/// `cap` bytes (checked before reading, and again while reading: a file may grow).
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        .len();
    let too_large = || {
        refused(
            path,
            format_args!("is larger than {cap} bytes, the limit for this file (not read)"),
        )
    };
    if len > cap {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The regular file `path` ([`open_regular`]) to read as a stream, refused when it holds more
/// than `cap` bytes (checked before reading; a file that grows past it reads as cut at `cap`
/// bytes, which a parser sees as truncated). For files too large to hold whole (a manifest of
/// 100,000 jobs).
pub fn open_capped(path: &Path, cap: u64) -> io::Result<io::Take<File>> {
    let file = open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        .len();
    if len > cap {
        return Err(refused(
            path,
            format_args!("is larger than {cap} bytes, the limit for this file (not read)"),
        ));
    }
    Ok(file.take(cap))
}

/// [`read_capped`] as UTF-8 text.
pub fn read_to_string_capped(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, cap)?).map_err(|_| refused(path, "is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_join() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(
            join(root, Path::new("a/b.json")).unwrap(),
            root.join("a/b.json")
        );
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "./a"] {
            assert!(join(root, Path::new(bad)).is_err(), "{bad}");
        }
        std::os::unix::fs::symlink("/tmp", root.join("link")).unwrap();
        let err = join(root, Path::new("link/x")).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(
            within(
                Path::new("/old/root/a/b"),
                Path::new("/old/root"),
                Path::new("/new")
            )
            .is_ok_and(|p| p == Path::new("/new/a/b"))
        );
        assert!(within(Path::new("/elsewhere/a"), Path::new("/old/root"), root).is_err());
    }

    #[test]
    fn only_regular_files_open_and_caps_hold() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.json");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_capped(&file, 10).unwrap(), b"0123456789");
        assert!(read_capped(&file, 9).is_err());
        let err = open_regular(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(open_regular(dir.path()).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let err = open_regular(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // A FIFO is refused at once, not waited on.
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = open_regular(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
