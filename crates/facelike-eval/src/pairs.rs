//! Verification pairs: LFW's `pairs.txt`/`people.txt`, a plain tab-separated pairs format, and
//! deterministic sampling of pairs from a folder of identity sub-folders.

use crate::error::{EvalError, Result};
use crate::rng::SplitMix64;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One verification question: are the faces in `a` and `b` the same person?
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Pair {
    /// Image path relative to the pairs root (LFW: `Name/Name_0001.jpg`).
    pub a: String,
    /// The other image, in the same form.
    pub b: String,
    /// Ground truth: same identity.
    pub same: bool,
    /// Cross-validation fold, `0..folds`.
    pub fold: usize,
}

/// A list of pairs split into folds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairList {
    /// Number of folds; every pair's `fold` is below it.
    pub folds: usize,
    /// The pairs, in file (or sampling) order.
    pub pairs: Vec<Pair>,
    /// True when no identity appears in two folds (LFW View 2 and folder sampling with enough
    /// identities); thresholds chosen on the other folds are then tested on unseen people.
    pub identity_disjoint: bool,
}

/// First line of the plain format written by [`PairList::write_tsv`].
pub const TSV_HEADER: &str = "# facelike pairs v1: fold\tsame\timage_a\timage_b";

/// LFW's path for image `num` of `name`.
pub fn lfw_image_path(name: &str, num: usize) -> String {
    format!("{name}/{name}_{num:04}.jpg")
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse_err(path: &Path, line: usize, problem: impl Into<String>) -> EvalError {
    EvalError::Parse {
        path: path.to_owned(),
        line,
        problem: problem.into(),
    }
}

fn parse_num(path: &Path, line: usize, field: &str) -> Result<usize> {
    field.trim().parse().map_err(|_| {
        parse_err(
            path,
            line,
            format!("expected a whole number, found {field:?}"),
        )
    })
}

impl PairList {
    /// Reads LFW's `pairs.txt` (header `folds n`, then per fold `n` matched lines
    /// `name i j` and `n` mismatched lines `name1 i name2 j`; a one-number header means one
    /// fold, as in `pairsDevTrain.txt`), or the plain format of [`PairList::write_tsv`].
    pub fn read(path: &Path) -> Result<PairList> {
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// [`PairList::read`] on text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PairList> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty());
        let (first_no, first) = lines
            .next()
            .ok_or_else(|| parse_err(path, 1, "empty pairs file"))?;
        if first.starts_with("# facelike pairs") {
            return Self::parse_tsv(lines, path);
        }
        let header: Vec<&str> = first.split_whitespace().collect();
        let (folds, per_half) = match header.as_slice() {
            [n] => (1, parse_num(path, first_no, n)?),
            [f, n] => (parse_num(path, first_no, f)?, parse_num(path, first_no, n)?),
            _ => {
                return Err(parse_err(
                    path,
                    first_no,
                    "expected the LFW header `folds pairs_per_half` or `# facelike pairs v1`",
                ))
            }
        };
        if folds == 0 || per_half == 0 {
            return Err(parse_err(path, first_no, "header declares no pairs"));
        }
        let mut pairs = Vec::with_capacity(folds * 2 * per_half);
        for (no, line) in lines {
            let idx = pairs.len();
            if idx == folds * 2 * per_half {
                return Err(parse_err(
                    path,
                    no,
                    format!("more pairs than the header's {folds} x 2 x {per_half}"),
                ));
            }
            let fold = idx / (2 * per_half);
            let expect_same = idx % (2 * per_half) < per_half;
            let f: Vec<&str> = line.split_whitespace().collect();
            let pair = match (expect_same, f.as_slice()) {
                (true, [name, i, j]) => Pair {
                    a: lfw_image_path(name, parse_num(path, no, i)?),
                    b: lfw_image_path(name, parse_num(path, no, j)?),
                    same: true,
                    fold,
                },
                (false, [n1, i, n2, j]) => Pair {
                    a: lfw_image_path(n1, parse_num(path, no, i)?),
                    b: lfw_image_path(n2, parse_num(path, no, j)?),
                    same: false,
                    fold,
                },
                (true, _) => {
                    return Err(parse_err(
                        path,
                        no,
                        "expected a matched pair `name i j` (3 fields)",
                    ))
                }
                (false, _) => {
                    return Err(parse_err(
                        path,
                        no,
                        "expected a mismatched pair `name1 i name2 j` (4 fields)",
                    ))
                }
            };
            pairs.push(pair);
        }
        if pairs.len() != folds * 2 * per_half {
            return Err(parse_err(
                path,
                first_no,
                format!(
                    "header declares {folds} x 2 x {per_half} pairs, file has {}",
                    pairs.len()
                ),
            ));
        }
        Ok(PairList {
            folds,
            pairs,
            identity_disjoint: true,
        })
    }

    fn parse_tsv<'a>(
        lines: impl Iterator<Item = (usize, &'a str)>,
        path: &Path,
    ) -> Result<PairList> {
        let mut pairs = Vec::new();
        let mut disjoint = true;
        for (no, line) in lines {
            if let Some(rest) = line.strip_prefix('#') {
                if rest.trim() == "folds share identities" {
                    disjoint = false;
                }
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let [fold, same, a, b] = f.as_slice() else {
                return Err(parse_err(
                    path,
                    no,
                    "expected 4 tab-separated fields: fold same image_a image_b",
                ));
            };
            let same = match same.trim() {
                "1" => true,
                "0" => false,
                s => {
                    return Err(parse_err(
                        path,
                        no,
                        format!("same must be 0 or 1, found {s:?}"),
                    ))
                }
            };
            pairs.push(Pair {
                a: a.to_string(),
                b: b.to_string(),
                same,
                fold: parse_num(path, no, fold)?,
            });
        }
        if pairs.is_empty() {
            return Err(parse_err(path, 1, "no pairs"));
        }
        let folds = pairs.iter().map(|p| p.fold).max().unwrap_or(0) + 1;
        Ok(PairList {
            folds,
            pairs,
            identity_disjoint: disjoint,
        })
    }

    /// The plain tab-separated form, readable by [`PairList::read`].
    pub fn to_tsv(&self) -> String {
        let mut s = String::from(TSV_HEADER);
        s.push('\n');
        if !self.identity_disjoint {
            s.push_str("# folds share identities\n");
        }
        for p in &self.pairs {
            s.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                p.fold,
                u8::from(p.same),
                p.a,
                p.b
            ));
        }
        s
    }

    /// Writes [`PairList::to_tsv`] to `path`.
    pub fn write_tsv(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_tsv()).map_err(|source| EvalError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Every image the pairs refer to, once, in first-use order.
    pub fn unique_images(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for p in &self.pairs {
            for im in [&p.a, &p.b] {
                if seen.insert(im.as_str()) {
                    out.push(im.as_str());
                }
            }
        }
        out
    }
}

/// LFW's `people.txt`: the people of each View-2 fold with their image counts.
#[derive(Clone, Debug, PartialEq)]
pub struct PeopleFolds {
    /// Per fold, in file order: `(name, number of images)`.
    pub folds: Vec<Vec<(String, usize)>>,
}

impl PeopleFolds {
    /// Reads `people.txt` (a fold count, then per fold a person count and `name count`
    /// lines) or a one-fold file such as `peopleDevTrain.txt` (a count, then the lines).
    pub fn read(path: &Path) -> Result<PeopleFolds> {
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// [`PeopleFolds::read`] on text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PeopleFolds> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let Some(&(no0, first)) = lines.first() else {
            return Err(parse_err(path, 1, "empty people file"));
        };
        let n0 = parse_num(path, no0, first)?;
        let one_fold = lines
            .get(1)
            .is_some_and(|(_, l)| l.split_whitespace().count() == 2);
        let mut at = 1;
        let fold_count = if one_fold { 1 } else { n0 };
        let mut folds = Vec::with_capacity(fold_count);
        for _ in 0..fold_count {
            let n = if one_fold {
                n0
            } else {
                let &(no, l) = lines
                    .get(at)
                    .ok_or_else(|| parse_err(path, no0, "file ends before all folds"))?;
                at += 1;
                parse_num(path, no, l)?
            };
            let mut people = Vec::with_capacity(n);
            for _ in 0..n {
                let &(no, l) = lines
                    .get(at)
                    .ok_or_else(|| parse_err(path, no0, "file ends inside a fold"))?;
                at += 1;
                let f: Vec<&str> = l.split_whitespace().collect();
                let [name, count] = f.as_slice() else {
                    return Err(parse_err(path, no, "expected `name count`"));
                };
                people.push((name.to_string(), parse_num(path, no, count)?));
            }
            folds.push(people);
        }
        if let Some(&(no, _)) = lines.get(at) {
            return Err(parse_err(path, no, "unexpected lines after the last fold"));
        }
        Ok(PeopleFolds { folds })
    }

    /// The fold of each person.
    pub fn fold_of(&self) -> std::collections::HashMap<&str, usize> {
        self.folds
            .iter()
            .enumerate()
            .flat_map(|(k, people)| people.iter().map(move |(n, _)| (n.as_str(), k)))
            .collect()
    }
}

/// One identity of a labelled gallery and its images (paths relative to the gallery root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The identity's name (its sub-folder's name when scanned).
    pub name: String,
    /// Its images as `<name>/<file>` paths relative to the gallery root.
    pub images: Vec<String>,
}

/// Scans `root/<identity>/<image>`: each sub-folder is an identity, each image file in it (by
/// extension, [`facelike_image::IMAGE_EXTENSIONS`], not recursing) one face; hidden entries are
/// skipped, and a folder reached twice (a second link to it) counts once. Sorted by name so
/// the result does not depend on the file system's order.
pub fn scan_labelled_folder(root: &Path) -> Result<Vec<Identity>> {
    let read_err = |path: PathBuf, source| EvalError::Read { path, source };
    let meta = std::fs::metadata(root).map_err(|e| read_err(root.to_owned(), e))?;
    if !meta.is_dir() {
        return Err(EvalError::Invalid(format!(
            "{} is not a folder",
            root.display()
        )));
    }
    let opts = facelike_image::WalkOptions {
        max_depth: Some(2),
        ..Default::default()
    };
    let files =
        facelike_image::image_files(&[root], &opts).map_err(|e| read_err(e.path, e.source))?;
    // The walk lists each folder's files together: one identity per run of the same parent.
    let mut out: Vec<(PathBuf, Identity)> = Vec::new();
    for path in files {
        let rel: Vec<String> = path
            .strip_prefix(root)
            .expect("the walk stays under its folder")
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        // Photos directly in `root` belong to nobody; dangling links are not photos.
        let [name, file] = rel.as_slice() else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let dir = path.parent().expect("under root").to_path_buf();
        let image = format!("{name}/{file}");
        match out.last_mut() {
            Some((d, id)) if *d == dir => id.images.push(image),
            _ => out.push((
                dir,
                Identity {
                    name: name.clone(),
                    images: vec![image],
                },
            )),
        }
    }
    let mut out: Vec<Identity> = out.into_iter().map(|(_, id)| id).collect();
    for id in &mut out {
        id.images.sort();
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.is_empty() {
        return Err(EvalError::Invalid(format!(
            "{}: no identity sub-folders with images (expected ROOT/<person>/<image>)",
            root.display()
        )));
    }
    Ok(out)
}

/// How to sample pairs from a labelled gallery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SampleConfig {
    /// Number of folds to deal the pairs to (at least 1).
    pub folds: usize,
    /// Matched pairs wanted per fold (fewer when the fold has fewer distinct ones).
    pub matched_per_fold: usize,
    /// Mismatched pairs wanted per fold.
    pub mismatched_per_fold: usize,
    /// Seeds the shuffle of identities and the drawing of pairs.
    pub seed: u64,
}

impl Default for SampleConfig {
    /// LFW View 2's shape: 10 folds of 300 + 300.
    fn default() -> Self {
        SampleConfig {
            folds: 10,
            matched_per_fold: 300,
            mismatched_per_fold: 300,
            seed: 0,
        }
    }
}

/// Samples verification pairs from a labelled gallery, deterministically for a given seed
/// and gallery (identities and images are sorted first).
///
/// Like LFW View 2, identities are dealt to folds (after a seeded shuffle) so that no person
/// is in two folds; this needs at least two identities per fold, one of them with two
/// images. With fewer, pairs are drawn from the whole gallery and dealt to folds round-robin,
/// and [`PairList::identity_disjoint`] is false. Matched pairs: a person with 2+ images
/// uniformly, then two distinct images; mismatched: two distinct people uniformly, one image
/// each; no pair is repeated (in either order).
pub fn sample_pairs(gallery: &[Identity], cfg: &SampleConfig) -> Result<PairList> {
    if cfg.folds == 0 {
        return Err(EvalError::Invalid(
            "sample_pairs: folds must be at least 1".into(),
        ));
    }
    let mut ids: Vec<Identity> = gallery
        .iter()
        .filter(|i| !i.images.is_empty())
        .cloned()
        .map(|mut i| {
            i.images.sort();
            i.images.dedup();
            i
        })
        .collect();
    ids.sort_by(|a, b| a.name.cmp(&b.name));
    if ids.len() < 2 || !ids.iter().any(|i| i.images.len() >= 2) {
        return Err(EvalError::Invalid(format!(
            "sample_pairs: need at least 2 identities and one with 2+ images (have {} identities)",
            ids.len()
        )));
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let mut order: Vec<usize> = (0..ids.len()).collect();
    rng.shuffle(&mut order);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); cfg.folds];
    for (k, &i) in order.iter().enumerate() {
        groups[k % cfg.folds].push(i);
    }
    let disjoint = groups
        .iter()
        .all(|g| g.len() >= 2 && g.iter().any(|&i| ids[i].images.len() >= 2));
    let mut pairs = Vec::new();
    if disjoint {
        for (fold, g) in groups.iter().enumerate() {
            sample_group(
                &ids,
                g,
                cfg.matched_per_fold,
                cfg.mismatched_per_fold,
                &mut rng,
            )
            .into_iter()
            .for_each(|(a, b, same)| pairs.push(Pair { a, b, same, fold }));
        }
    } else {
        let all: Vec<usize> = (0..ids.len()).collect();
        let m = sample_group(&ids, &all, cfg.matched_per_fold * cfg.folds, 0, &mut rng);
        let n = sample_group(&ids, &all, 0, cfg.mismatched_per_fold * cfg.folds, &mut rng);
        for (k, (a, b, same)) in m.into_iter().enumerate() {
            pairs.push(Pair {
                a,
                b,
                same,
                fold: k % cfg.folds,
            });
        }
        for (k, (a, b, same)) in n.into_iter().enumerate() {
            pairs.push(Pair {
                a,
                b,
                same,
                fold: k % cfg.folds,
            });
        }
        pairs.sort_by_key(|p| (p.fold, !p.same));
    }
    Ok(PairList {
        folds: cfg.folds,
        pairs,
        identity_disjoint: disjoint,
    })
}

fn sample_group(
    ids: &[Identity],
    group: &[usize],
    matched: usize,
    mismatched: usize,
    rng: &mut SplitMix64,
) -> Vec<(String, String, bool)> {
    let multi: Vec<usize> = group
        .iter()
        .copied()
        .filter(|&i| ids[i].images.len() >= 2)
        .collect();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut key = |a: &str, b: &str| {
        let k = if a <= b {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        };
        seen.insert(k)
    };
    let mut out = Vec::new();
    // Distinct pairs can run out; give up after this many draws per wanted pair.
    const TRIES: usize = 50;
    let mut got = 0;
    let mut tries = 0;
    while got < matched && !multi.is_empty() && tries < matched * TRIES {
        tries += 1;
        let id = &ids[multi[rng.below(multi.len())]];
        let i = rng.below(id.images.len());
        let mut j = rng.below(id.images.len() - 1);
        if j >= i {
            j += 1;
        }
        if key(&id.images[i], &id.images[j]) {
            out.push((id.images[i].clone(), id.images[j].clone(), true));
            got += 1;
        }
    }
    let (mut got, mut tries) = (0, 0);
    while got < mismatched && group.len() >= 2 && tries < mismatched * TRIES {
        tries += 1;
        let x = rng.below(group.len());
        let mut y = rng.below(group.len() - 1);
        if y >= x {
            y += 1;
        }
        let (p, q) = (&ids[group[x]], &ids[group[y]]);
        let a = &p.images[rng.below(p.images.len())];
        let b = &q.images[rng.below(q.images.len())];
        if key(a, b) {
            out.push((a.clone(), b.clone(), false));
            got += 1;
        }
    }
    out
}

/// Resolves a pair's image path against the pairs root.
pub fn resolve(root: &Path, image: &str) -> PathBuf {
    root.join(image)
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn labelled_folder_takes_one_level_of_images_per_identity() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for f in [
            "bob/2.JPG",
            "bob/1.png",
            "bob/notes.txt",
            "bob/scan.tif",
            "bob/deeper/3.jpg",
            "bob/.hidden.jpg",
            "alice/a.jpeg",
            "loose.jpg",
            ".git/x.jpg",
            "empty/readme.md",
        ] {
            let p = r.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(".", r.join("bob/self")).unwrap();
        let ids = scan_labelled_folder(r).unwrap();
        assert_eq!(
            ids,
            [
                Identity {
                    name: "alice".into(),
                    images: vec!["alice/a.jpeg".into()],
                },
                Identity {
                    name: "bob".into(),
                    images: vec!["bob/1.png".into(), "bob/2.JPG".into()],
                },
            ]
        );
        assert!(matches!(
            scan_labelled_folder(&r.join("loose.jpg")),
            Err(EvalError::Invalid(_))
        ));
        assert!(matches!(
            scan_labelled_folder(&r.join("missing")),
            Err(EvalError::Read { .. })
        ));
        assert!(matches!(
            scan_labelled_folder(&r.join("empty")),
            Err(EvalError::Invalid(_))
        ));
    }
}
