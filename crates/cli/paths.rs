//! Paths the user gives that end up in JSON artifacts must be UTF-8: checked before any work,
//! naming the flag the user gave (not one a later phase derives from it).

use std::path::Path;

/// Refuses a non-UTF-8 `path` given with `flag`.
pub fn require_utf8(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.to_str().is_none() {
        anyhow::bail!(
            "{flag} {} is not valid UTF-8: the study's JSON artifacts record its paths; use a \
             path made of valid characters",
            path.display()
        );
    }
    Ok(())
}
