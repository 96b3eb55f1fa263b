//! The bearer token Argo's agent sends, checked against the token file.
//!
//! The file is stat'ed on every request and re-read when its size, inode or modification time
//! changes (the agent can rotate it). Tokens are compared as SHA-256 digests with a
//! constant-time equality, so the comparison time says nothing about the token. An unreadable or
//! empty file never lets a request through: the caller answers 503 and logs why.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the agent token {path}: {reason}")]
pub struct TokenUnavailable {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    cached: RwLock<Option<(Stamp, [u8; 32])>>,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>) -> TokenFile {
        TokenFile {
            path: path.into(),
            cached: RwLock::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `presented` (the text after `Bearer `) is the token in the file.
    pub fn accepts(&self, presented: &[u8]) -> Result<bool, TokenUnavailable> {
        let expected = self.digest()?;
        Ok(constant_time_eq(
            &Sha256::digest(presented).into(),
            &expected,
        ))
    }

    fn digest(&self) -> Result<[u8; 32], TokenUnavailable> {
        let unavailable = |reason: String| TokenUnavailable {
            path: self.path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(&self.path).map_err(|e| unavailable(e.to_string()))?;
        let stamp = Stamp {
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        };
        if let Ok(guard) = self.cached.read()
            && let Some((s, d)) = *guard
            && s == stamp
        {
            return Ok(d);
        }
        let bytes = std::fs::read(&self.path).map_err(|e| unavailable(e.to_string()))?;
        let token = bytes.trim_ascii();
        if token.is_empty() {
            return Err(unavailable("the file is empty".into()));
        }
        let digest: [u8; 32] = Sha256::digest(token).into();
        if let Ok(mut guard) = self.cached.write() {
            *guard = Some((stamp, digest));
        }
        Ok(digest)
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_token_and_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let file = TokenFile::new(&path);
        assert!(
            file.accepts(b"x")
                .unwrap_err()
                .reason
                .contains("No such file")
        );
        std::fs::write(&path, "").unwrap();
        assert!(file.accepts(b"").is_err());
        std::fs::write(&path, "secret-1\n").unwrap();
        assert!(file.accepts(b"secret-1").unwrap());
        assert!(!file.accepts(b"secret-2").unwrap());
        assert!(!file.accepts(b"").unwrap());
        // Rotation: a new file (new inode) with another token.
        let tmp = dir.path().join("token.new");
        std::fs::write(&tmp, "secret-2").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(file.accepts(b"secret-2").unwrap());
        assert!(!file.accepts(b"secret-1").unwrap());
    }
}
