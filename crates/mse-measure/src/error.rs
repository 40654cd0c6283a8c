use std::io;
use std::path::PathBuf;

/// Result of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the path involved.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing, e.g. "reading".
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// An entry that is neither a regular file, a directory nor (in a runtime tree) a symlink.
    #[error("{0}: unsupported file type (sockets, FIFOs and devices cannot be measured)")]
    UnsupportedFileType(PathBuf),

    /// A symlink in the application directory: what ships must be plain files.
    #[error("{0}: symlink in the application directory; ship regular files only")]
    SymlinkInCode(PathBuf),

    /// A shipped file name is not valid UTF-8.
    #[error("{0}: file name is not valid UTF-8; rename it")]
    NonUtf8Path(PathBuf),

    /// Canonical manifest bytes that do not parse.
    #[error("malformed canonical manifest at byte {offset}: {reason}")]
    Malformed {
        /// Where parsing stopped.
        offset: usize,
        /// What was expected.
        reason: &'static str,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
