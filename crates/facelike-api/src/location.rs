//! Where a gallery lives — a folder (the embedded store) or a PostgreSQL schema — and the
//! read side shared by the jobs over a whole gallery (map, PCA, projector, training).

use crate::error::Result;
use facelike_gallery::{FaceRecord, Gallery, SearchIndex};
use facelike_pg::{PgGallery, PgLocation};
use facelike_types::DescriptorKind;
use std::path::{Path, PathBuf};

/// A gallery's location: `--gallery G` of every gallery command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GalleryLocation {
    /// A folder holding the embedded redb store.
    Dir(PathBuf),
    /// A PostgreSQL database with pgvector: `postgres://USER[:PASSWORD]@HOST:PORT/DB?schema=NAME`
    /// (see [`facelike_pg::PgLocation`]).
    Postgres(String),
}

impl GalleryLocation {
    /// A location from a `--gallery` string: a `postgres://` or `postgresql://` URL names
    /// the database, anything else a folder.
    pub fn parse(s: &str) -> GalleryLocation {
        if facelike_pg::is_postgres_url(s) {
            GalleryLocation::Postgres(s.trim().to_string())
        } else {
            GalleryLocation::Dir(PathBuf::from(s))
        }
    }

    /// The folder, for the embedded store.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            GalleryLocation::Dir(d) => Some(d),
            GalleryLocation::Postgres(_) => None,
        }
    }

    /// The parsed PostgreSQL location (an error naming a bad URL).
    pub fn postgres(&self) -> Result<Option<PgLocation>> {
        match self {
            GalleryLocation::Dir(_) => Ok(None),
            GalleryLocation::Postgres(u) => Ok(Some(PgLocation::parse(u)?)),
        }
    }
}

impl std::fmt::Display for GalleryLocation {
    /// The folder, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GalleryLocation::Dir(d) => write!(f, "{}", d.display()),
            GalleryLocation::Postgres(u) => f.write_str(&facelike_pg::redact(u)),
        }
    }
}

impl std::str::FromStr for GalleryLocation {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(GalleryLocation::parse(s))
    }
}

impl From<&Path> for GalleryLocation {
    fn from(p: &Path) -> Self {
        match p.to_str() {
            Some(s) if facelike_pg::is_postgres_url(s) => GalleryLocation::Postgres(s.into()),
            _ => GalleryLocation::Dir(p.to_path_buf()),
        }
    }
}

impl From<&PathBuf> for GalleryLocation {
    fn from(p: &PathBuf) -> Self {
        p.as_path().into()
    }
}

impl From<PathBuf> for GalleryLocation {
    fn from(p: PathBuf) -> Self {
        p.as_path().into()
    }
}

impl From<&str> for GalleryLocation {
    fn from(s: &str) -> Self {
        GalleryLocation::parse(s)
    }
}

impl From<&GalleryLocation> for GalleryLocation {
    fn from(l: &GalleryLocation) -> Self {
        l.clone()
    }
}

/// A gallery opened for reading, whichever backend holds it.
pub enum OpenGallery {
    /// The embedded store.
    Embedded(Gallery),
    /// A PostgreSQL schema.
    Postgres(Box<PgGallery>),
}

impl OpenGallery {
    /// Opens an existing gallery for reading (an error naming it when there is none).
    pub fn open_read_only(loc: &GalleryLocation) -> Result<OpenGallery> {
        Ok(match loc {
            GalleryLocation::Dir(d) => OpenGallery::Embedded(Gallery::open_read_only(d)?),
            GalleryLocation::Postgres(u) => {
                OpenGallery::Postgres(Box::new(PgGallery::open(&PgLocation::parse(u)?)?))
            }
        })
    }

    /// The folder or URL (without password), for titles and messages.
    pub fn name(&self) -> String {
        match self {
            OpenGallery::Embedded(g) => g.dir().display().to_string(),
            OpenGallery::Postgres(g) => g.location().to_string(),
        }
    }

    /// The descriptor space; `None` for an empty gallery.
    pub fn kind(&self) -> Result<Option<DescriptorKind>> {
        Ok(match self {
            OpenGallery::Embedded(g) => g.kind().cloned(),
            OpenGallery::Postgres(g) => g.kind()?,
        })
    }

    /// Every face: (ids, dense identity ids into [`OpenGallery::identity_names`], 128
    /// floats per face).
    pub fn load_vectors(&self) -> Result<(Vec<u64>, Vec<u32>, Vec<f32>)> {
        Ok(match self {
            OpenGallery::Embedded(g) => g.load_vectors(0)?,
            OpenGallery::Postgres(g) => g.load_vectors()?,
        })
    }

    /// Identity names, indexed by the dense ids of [`OpenGallery::load_vectors`].
    pub fn identity_names(&self) -> Result<Vec<String>> {
        Ok(match self {
            OpenGallery::Embedded(g) => g.identity_names()?,
            OpenGallery::Postgres(g) => g.identity_names()?,
        })
    }

    /// The records of these faces.
    pub fn faces(&self, ids: &[u64]) -> Result<Vec<FaceRecord>> {
        Ok(match self {
            OpenGallery::Embedded(g) => g.faces(ids)?,
            OpenGallery::Postgres(g) => g.faces(ids)?,
        })
    }

    /// A face's thumbnail (PNG bytes), if stored.
    pub fn thumbnail(&self, id: u64) -> Result<Option<Vec<u8>>> {
        Ok(match self {
            OpenGallery::Embedded(g) => g.thumbnail(id)?,
            OpenGallery::Postgres(g) => g.thumbnail(id)?,
        })
    }

    /// An in-memory exact search index over every face (the embedded store's own loader;
    /// PostgreSQL's descriptors read once).
    pub fn search_index(&self) -> Result<SearchIndex> {
        Ok(match self {
            OpenGallery::Embedded(g) => {
                SearchIndex::load(g, &facelike_gallery::LoadOptions::default())?
            }
            OpenGallery::Postgres(g) => {
                let (ids, idents, data) = g.load_vectors()?;
                SearchIndex::from_parts(ids, idents, data, g.identity_names()?, g.kind()?)?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searchers_and_galleries_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<crate::gallery::Searcher>();
        shared::<OpenGallery>();
    }

    #[test]
    fn paths_and_urls_become_the_right_location() {
        assert_eq!(
            GalleryLocation::from(Path::new("celebs.g")),
            GalleryLocation::Dir("celebs.g".into())
        );
        let l = GalleryLocation::from(&PathBuf::from("postgres://u:pw@127.0.0.1:5432/db?schema=x"));
        assert!(matches!(l, GalleryLocation::Postgres(_)));
        assert_eq!(l.to_string(), "postgres://u@127.0.0.1:5432/db?schema=x");
        assert_eq!(l.postgres().unwrap().unwrap().schema(), "x");
        assert!(GalleryLocation::parse("postgresql://h/db").dir().is_none());
        let bad = GalleryLocation::parse("postgres://u@h:port/db")
            .postgres()
            .unwrap_err();
        assert!(
            bad.to_string().starts_with("invalid PostgreSQL URL"),
            "{bad}"
        );
    }
}
