use std::io;
use std::path::PathBuf;

/// Result of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with enough context for the user to act. Messages never contain secret bytes.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key had the wrong length or encoding.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// Which key, e.g. "code key".
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },

    /// An encrypted file is shorter than nonce + tag.
    #[error(
        "{what}: {len} bytes is too short for an encrypted file (at least 40 bytes: nonce 24 + tag 16); \
         was it produced by `mse` encryption?"
    )]
    Truncated {
        /// Which file (relative path or label).
        what: String,
        /// Its length in bytes.
        len: usize,
    },

    /// Authentication failed: wrong key, or the bytes were modified.
    #[error("{what}: decryption failed: wrong code key, or the file was modified after encryption")]
    Decrypt {
        /// Which file (relative path or label).
        what: String,
    },

    /// A sealed box could not be opened.
    #[error("sealed box: {reason}")]
    Sealed {
        /// Why it was refused.
        reason: &'static str,
    },

    /// A Fernet key or token was refused.
    #[error("fernet: {reason}")]
    Fernet {
        /// Why it was refused.
        reason: &'static str,
    },

    /// HKDF cannot produce that much output.
    #[error("HKDF-SHA256 cannot produce {len} bytes (at most 8160)")]
    KdfLength {
        /// Requested output length.
        len: usize,
    },

    /// Re-encryption with a stored nonce map met a file the map does not know.
    #[error(
        "no nonce for '{path}' in the nonce map: the code directory differs from the one the map was made for \
         (a file was added or renamed)"
    )]
    NonceNotFound {
        /// POSIX relative path of the file.
        path: String,
    },

    /// A nonce map gives the same nonce to two files, which would leak their plaintexts.
    #[error(
        "the nonce map gives the same nonce to '{first}' and '{second}'; refusing to encrypt (nonce reuse)"
    )]
    NonceReused {
        /// First file.
        first: String,
        /// Second file.
        second: String,
    },

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

    /// A path would leave the tree it belongs to, or is otherwise unusable.
    #[error("refusing path {path}: {reason}")]
    UnsafePath {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },

    /// The output directory of a tree operation already has content.
    #[error(
        "destination {0} already exists and is not an empty directory; remove it or choose another"
    )]
    DestinationNotEmpty(PathBuf),

    /// A file name is not valid UTF-8 (relative paths are carried as strings in the nonce map).
    #[error("{0}: file name is not valid UTF-8; rename it")]
    NonUtf8Path(PathBuf),

    /// Only regular files, directories and (in-tree) symlinks can be encrypted.
    #[error("{0}: unsupported file type (only regular files and directories are shipped)")]
    UnsupportedFileType(PathBuf),

    /// The `.mseignore` file could not be used.
    #[error("{path}: {reason}")]
    IgnoreFile {
        /// Path of the `.mseignore`.
        path: PathBuf,
        /// Why.
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
