//! Files and folders that hold stored data (the SQLite database and its WAL, the usage spool):
//! readable by the service's own user only, whatever the umask.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of a data file tollgate creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a data folder tollgate creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) when missing; a folder created here is made 0700. A folder that
/// already exists keeps its mode: the operator chose it.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The highest missing ancestor: every folder from it down is ours.
    let mut first_new = dir;
    while let Some(parent) = first_new.parent() {
        if parent.as_os_str().is_empty() || parent.exists() {
            break;
        }
        first_new = parent;
    }
    fs::create_dir_all(dir)?;
    for folder in dir.ancestors() {
        set_mode(folder, DIR_MODE)?;
        if folder == first_new {
            break;
        }
    }
    Ok(())
}

/// Creates `path` when missing, made 0600 explicitly (umask-independent). An existing file is left
/// as it is.
pub fn create_file(path: &Path) -> io::Result<()> {
    match new_file(path, OpenOptions::new().write(true)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a new file with `options` (`create_new` is added), 0600 from its first byte.
pub fn new_file(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    options.create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, FILE_MODE);
    let file = options.open(path)?;
    // The mode given at creation passes through the umask; a wider umask cannot loosen it, but a
    // narrower one is the operator's: set it exactly either way.
    set_mode(path, FILE_MODE)?;
    Ok(file)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default()
    }

    #[test]
    fn new_folders_and_files_are_private_and_old_ones_untouched() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755))?;
        let deep = root.path().join("a/b/c");
        create_dir(&deep)?;
        for dir in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&root.path().join(dir)), DIR_MODE, "{dir}");
        }
        assert_eq!(
            mode(root.path()),
            0o755,
            "an existing folder keeps its mode"
        );
        let file = deep.join("x.db");
        create_file(&file)?;
        assert_eq!(mode(&file), FILE_MODE);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640))?;
        create_file(&file)?;
        assert_eq!(mode(&file), 0o640, "an existing file keeps its mode");
        Ok(())
    }
}
