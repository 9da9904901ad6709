//! The files of the browsers' build directory (`<target>/web`): what the `kinema` build script
//! compresses and embeds, and what `cargo xtask bench bundle` measures. Shared by including
//! this file.

use std::path::{Path, PathBuf};

/// Whether a browser downloads `file` (so a compressed copy is worth having).
pub(crate) fn served(file: &Path) -> bool {
    file.extension().is_some_and(|e| ["wasm", "js", "html", "css"].iter().any(|s| e == *s))
}

/// Every file under `dir`, sorted.
pub(crate) fn files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
