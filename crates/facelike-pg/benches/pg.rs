//! PostgreSQL + pgvector gallery benchmark (`bench/pg_bench.sh`): ingest through binary COPY,
//! HNSW build, exact and HNSW search latency and recall@10, next to the embedded store's
//! exact and IVF figures on the same descriptors in the same run.
//!
//! `cargo bench -p facelike-pg --bench pg -- [--n 100000] [--queries 100] [--ef 40,100,200,400]
//!  [--m 16] [--efc 64] [--exact-queries 30]`; needs FACELIKE_TEST_PG_URL and the shared
//! folder (LFW descriptors, to fit the synthetic generator).

use facelike_gallery::{IvfParams, SearchIndex, SearchMode, SearchOptions};
use facelike_pg::{PgGallery, PgHnswParams, PgLocation};
use facelike_testdata::synthetic::{lfw_identity, SpreadModel};
use facelike_types::{Descriptor, DescriptorKind, Metric};
use std::collections::HashSet;
use std::time::Instant;

struct Args {
    n: usize,
    queries: usize,
    exact_queries: usize,
    ef: Vec<usize>,
    m: u32,
    efc: u32,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        n: 100_000,
        queries: 100,
        exact_queries: 30,
        ef: vec![40, 100, 200, 400],
        m: 16,
        efc: 64,
        keep: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = || v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--n" => a.n = val().parse().expect("--n"),
            "--queries" => a.queries = val().parse().expect("--queries"),
            "--exact-queries" => a.exact_queries = val().parse().expect("--exact-queries"),
            "--ef" => a.ef = val().split(',').map(|x| x.parse().expect("--ef")).collect(),
            "--m" => a.m = val().parse().expect("--m"),
            "--efc" => a.efc = val().parse().expect("--efc"),
            "--keep" => {
                a.keep = true;
                i -= 1;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// p50, p99 (ms) and the results of each query.
fn timed(
    queries: &[[f32; 128]],
    mut f: impl FnMut(&Descriptor) -> Vec<u64>,
) -> (f64, f64, Vec<Vec<u64>>) {
    for q in queries.iter().take(2) {
        f(&Descriptor(*q));
    }
    let mut lat = Vec::new();
    let mut res = Vec::new();
    for q in queries {
        let t = Instant::now();
        res.push(f(&Descriptor(*q)));
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (pct(&mut lat, 0.5), pct(&mut lat, 0.99), res)
}

fn recall(got: &[Vec<u64>], truth: &[HashSet<u64>]) -> f64 {
    let found: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| g.iter().filter(|x| t.contains(x)).count())
        .sum();
    found as f64 / (10 * got.len()) as f64
}

fn main() {
    let a = args();
    let Ok(url) = std::env::var("FACELIKE_TEST_PG_URL") else {
        eprintln!("needs FACELIKE_TEST_PG_URL: start a server with scripts/pg-dev.sh start");
        std::process::exit(2);
    };
    let (paths, desc) = facelike_testdata::lfw_descriptors();
    let names: Vec<String> = paths.iter().map(|p| lfw_identity(p).to_owned()).collect();
    let model = SpreadModel::fit(&names, &desc);
    // n gallery faces plus held-out queries: other faces of gallery identities.
    let total = a.n + a.queries;
    let (ident_all, data_all) = model.generate(total, 11);
    let step = total / a.queries;
    let (mut ident, mut data, mut queries) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..total {
        let row = &data_all[i * 128..(i + 1) * 128];
        if i % step == step / 2 && queries.len() < a.queries {
            queries.push(<[f32; 128]>::try_from(row).unwrap());
        } else {
            ident.push(ident_all[i]);
            data.extend_from_slice(row);
        }
    }
    let n = ident.len();
    let n_ident = *ident.iter().max().unwrap() as usize + 1;
    let id_names: Vec<String> = (0..n_ident).map(|i| format!("id{i:07}")).collect();
    println!(
        "# PostgreSQL gallery benchmark: {n} synthetic faces ({n_ident} identities), {} queries",
        queries.len()
    );

    // Embedded store, same descriptors: exact and IVF.
    let mut emb = SearchIndex::from_parts(
        (0..n as u64).collect(),
        ident.clone(),
        data.clone(),
        id_names.clone(),
        Some(DescriptorKind::dlib_raw()),
    )
    .unwrap();
    let exact_o = SearchOptions {
        k: 10,
        mode: SearchMode::Exact,
        ..Default::default()
    };
    let (p50, p99, truth_rows) = timed(&queries, |q| {
        emb.search(q, &exact_o)
            .unwrap()
            .iter()
            .map(|m| m.face_id)
            .collect()
    });
    let truth: Vec<HashSet<u64>> = truth_rows
        .iter()
        .map(|r| r.iter().copied().collect())
        .collect();
    println!("| embedded | exact | – | {p50:.2} ms | {p99:.2} ms | 1 |");
    let t = Instant::now();
    emb.build_ivf(Metric::L2, IvfParams::default());
    let ivf_build = t.elapsed().as_secs_f64();
    let ann_o = SearchOptions {
        mode: SearchMode::Ann,
        ..exact_o.clone()
    };
    let (p50, p99, got) = timed(&queries, |q| {
        emb.search(q, &ann_o)
            .unwrap()
            .iter()
            .map(|m| m.face_id)
            .collect()
    });
    println!(
        "| embedded | IVF auto nprobe | {ivf_build:.1} s | {p50:.2} ms | {p99:.2} ms | {:.3} |",
        recall(&got, &truth)
    );

    // PostgreSQL.
    let loc = PgLocation::parse(&url)
        .unwrap()
        .with_schema(&format!("bench_{}", std::process::id()))
        .unwrap();
    let g = PgGallery::open_or_create(&loc).unwrap();
    let t = Instant::now();
    let stored = g
        .ingest(
            &DescriptorKind::dlib_raw(),
            "bench",
            &id_names,
            &ident,
            &data,
            10_000,
        )
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ingest: {stored} faces by binary COPY in {secs:.1} s = {:.0} faces/s",
        stored as f64 / secs
    );
    // Face ids in PostgreSQL follow the load order: id = first id + row.
    let (pg_ids, _, _) = g.load_vectors().unwrap();
    let row_of = |id: u64| (id - pg_ids[0]) as usize;
    let eq = &queries[..a.exact_queries.min(queries.len())];
    let (p50, p99, got) = timed(eq, |q| {
        g.search(q, &exact_o)
            .unwrap()
            .iter()
            .map(|m| row_of(m.face_id) as u64)
            .collect()
    });
    println!(
        "| PostgreSQL | exact (seq scan, {} queries) | – | {p50:.2} ms | {p99:.2} ms | {:.3} |",
        eq.len(),
        recall(&got, &truth[..eq.len()])
    );
    let t = Instant::now();
    g.ensure_hnsw(PgHnswParams {
        m: a.m,
        ef_construction: a.efc,
    })
    .unwrap();
    let build = t.elapsed().as_secs_f64();
    println!(
        "HNSW build (m {}, ef_construction {}): {build:.1} s",
        a.m, a.efc
    );
    for &ef in &a.ef {
        let o = SearchOptions {
            ef,
            ..ann_o.clone()
        };
        let (p50, p99, got) = timed(&queries, |q| {
            g.search(q, &o)
                .unwrap()
                .iter()
                .map(|m| row_of(m.face_id) as u64)
                .collect()
        });
        println!("| PostgreSQL | HNSW ef_search {ef} | {build:.1} s | {p50:.2} ms | {p99:.2} ms | {:.3} |", recall(&got, &truth));
    }
    if !a.keep {
        g.drop_gallery().unwrap();
    }
}
