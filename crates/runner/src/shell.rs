//! Paths and arguments written as `sh` words: in logged command lines, in the commands that
//! messages tell a person to run, and in the SLURM batch script.

use std::path::Path;

/// `text` in single quotes, `'` spelled `'\''`: one `sh` word whatever it holds.
pub fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` as one `sh` word: as it is when every character is one the shell leaves alone
/// (`artifacts/plan.json`), else [`single_quoted`] (`'my runs/plan.json'`), so that a command
/// copied from a message or a log runs as shown.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=+:,@%".contains(c));
    if plain {
        text.to_string()
    } else {
        single_quoted(text)
    }
}

/// [`shell_word`] of a path (not UTF-8 parts shown lossily).
pub fn shell_path(path: &Path) -> String {
    shell_word(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(single_quoted("a b'c"), r"'a b'\''c'");
        assert_eq!(single_quoted("plain"), "'plain'");
        assert_eq!(shell_word("artifacts/plan.json"), "artifacts/plan.json");
        assert_eq!(shell_word("--gres=gpu:1"), "--gres=gpu:1");
        assert_eq!(shell_word("my runs/plan.json"), "'my runs/plan.json'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_path(Path::new("a b")), "'a b'");
    }
}
