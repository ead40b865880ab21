//! A model file's bytes, mapped from the page cache rather than copied.
//!
//! Reading the 100 MB 68-point shape predictor with `read` costs about 65 ms (a copy into
//! freshly zeroed pages); mapping it with `MAP_POPULATE` about 6 ms. The mapping is private
//! and read-only and lives only while a model is being parsed. If the file is changed while
//! it is mapped the parse may see the change (as a `read` racing a writer would); truncating
//! it then could fault, as with any mapped file. Where mapping fails, the file is read.

use crate::reader::DatError;
use std::path::Path;

/// The whole contents of a file: mapped where possible, else read into memory.
pub struct FileBytes {
    inner: Inner,
}

enum Inner {
    Read(Vec<u8>),
    #[cfg(unix)]
    Mapped {
        ptr: *mut libc::c_void,
        len: usize,
    },
}

// SAFETY: the mapping is private, read-only and owned by this value alone.
unsafe impl Send for FileBytes {}
unsafe impl Sync for FileBytes {}

impl FileBytes {
    /// Opens `path` and maps (or reads) all of it, naming the file in any error.
    pub fn open(path: &Path) -> Result<Self, DatError> {
        let io = |source| DatError::Io {
            file: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        #[cfg(unix)]
        if len > 0 && len <= isize::MAX as u64 {
            use std::os::unix::io::AsRawFd;
            // SAFETY: a fresh private read-only mapping of an open file; checked for failure.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len as usize,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | populate(),
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                return Ok(FileBytes {
                    inner: Inner::Mapped {
                        ptr,
                        len: len as usize,
                    },
                });
            }
        }
        use std::io::Read;
        let mut data = Vec::with_capacity(len as usize);
        (&file).read_to_end(&mut data).map_err(io)?;
        Ok(FileBytes {
            inner: Inner::Read(data),
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.inner {
            Inner::Read(v) => v,
            // SAFETY: `ptr` maps `len` readable bytes until `drop`.
            #[cfg(unix)]
            Inner::Mapped { ptr, len } => unsafe {
                std::slice::from_raw_parts(*ptr as *const u8, *len)
            },
        }
    }
}

/// Pre-fault the whole mapping in one call where the platform can.
#[cfg(unix)]
fn populate() -> libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        libc::MAP_POPULATE
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        0
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Drop for FileBytes {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Inner::Mapped { ptr, len } = self.inner {
            // SAFETY: unmapping the mapping this value created, once.
            unsafe { libc::munmap(ptr, len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_reads_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("facelike-dat-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.dat");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(&*FileBytes::open(&p).unwrap(), &data[..]);
        let empty = dir.join("empty.dat");
        std::fs::write(&empty, b"").unwrap();
        assert!(FileBytes::open(&empty).unwrap().is_empty());
        let e = FileBytes::open(&dir.join("missing.dat")).err().unwrap();
        assert!(e.to_string().contains("missing.dat"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
