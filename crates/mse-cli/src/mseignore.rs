//! What of the code folder is shipped: `.mseignore` (the original's fnmatch-on-basename
//! semantics, mse-protocol.md §1.4) plus hidden entries. The matching itself is mse-crypto's, the
//! same code `encrypt_tree` uses, so what the checks say is what ships.

use std::path::Path;

pub use mse_crypto::ignore::{FILE_NAME, parse_mseignore as parse};

/// Why `relpath` (relative to the code folder) is not shipped: the `.mseignore` pattern that
/// excludes one of its components, or `.*` for a hidden component. `None` if it is shipped.
pub fn excluded_by<'a>(patterns: &'a [String], relpath: &Path) -> Option<&'a str> {
    relpath.components().find_map(|c| {
        let name = c.as_os_str().to_string_lossy();
        if name.starts_with('.') {
            return Some(".* (hidden files are never shipped)");
        }
        patterns
            .iter()
            .find(|p| mse_crypto::ignore::fnmatch(&name, p))
            .map(String::as_str)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_match_excludes_the_whole_subtree() {
        let pats = parse("venv\n*.pyc\n# comment\n__pycache__/\n");
        assert_eq!(excluded_by(&pats, Path::new("venv/lib/x.py")), Some("venv"));
        assert_eq!(excluded_by(&pats, Path::new("pkg/m.pyc")), Some("*.pyc"));
        assert_eq!(excluded_by(&pats, Path::new("pkg/m.py")), None);
        // The original's quirk, kept: a trailing slash never matches.
        assert_eq!(excluded_by(&pats, Path::new("__pycache__/m.py")), None);
        assert!(excluded_by(&pats, Path::new(".hidden/m.py")).is_some());
    }
}
