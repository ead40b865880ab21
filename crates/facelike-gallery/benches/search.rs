//! Search benchmark: real LFW descriptors and N synthetic dlib-like descriptors.
//!
//! For each set: exact top-10 latency (p50/p99), HNSW build time and memory, HNSW top-10
//! latency and recall@10 against exact search at several `ef`. Synthetic descriptors follow
//! the between- and within-identity spread measured on LFW (see `synthetic`).
//!
//! ```text
//! FACELIKE_SHARED=/path/to/shared cargo bench -p facelike-gallery --bench search -- \
//!     [--n 1000000] [--queries 200] [--threads 2] [--ef 32,64,96,128] [--m 16] [--efc 100] \
//!     [--no-ann] [--no-lfw] [--store-n 100000]
//! ```
//! `bench/gallery_search.sh` runs the standard configuration.

use facelike_gallery::{HnswParams, SearchIndex, SearchMode, SearchOptions};
use facelike_testdata::synthetic::{lfw_identity, pair_distance_stats, SpreadModel};
use facelike_types::{Descriptor, Metric};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

struct Args {
    n: usize,
    queries: usize,
    threads: usize,
    efs: Vec<usize>,
    m: usize,
    efc: usize,
    ann: bool,
    lfw: bool,
    store_n: usize,
    ivf: Vec<usize>,
    lists: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        n: 1_000_000,
        queries: 200,
        threads: 2,
        efs: vec![32, 64, 96, 128],
        m: 16,
        efc: 100,
        ann: true,
        lfw: true,
        store_n: 100_000,
        ivf: vec![],
        lists: 0,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = |i: usize| v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--n" => a.n = next(i).parse().expect("--n"),
            "--queries" => a.queries = next(i).parse().expect("--queries"),
            "--threads" => a.threads = next(i).parse().expect("--threads"),
            "--ef" => {
                a.efs = next(i)
                    .split(',')
                    .map(|s| s.parse().expect("--ef"))
                    .collect()
            }
            "--m" => a.m = next(i).parse().expect("--m"),
            "--efc" => a.efc = next(i).parse().expect("--efc"),
            "--store-n" => a.store_n = next(i).parse().expect("--store-n"),
            "--nprobe" => {
                a.ivf = next(i)
                    .split(',')
                    .map(|s| s.parse().expect("--nprobe"))
                    .collect()
            }
            "--lists" => a.lists = next(i).parse().expect("--lists"),
            "--no-ann" => {
                a.ann = false;
                i -= 1
            }
            "--no-lfw" => {
                a.lfw = false;
                i -= 1
            }
            // cargo bench passes --bench to harness-less benchmarks.
            _ => i -= 1,
        }
        i += 2;
    }
    a
}

fn rss_mib() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// p50 and p99 latency (ms) and recall@10 against `truth` of approximate searches.
fn measure(
    idx: &SearchIndex,
    queries: &[[f32; 128]],
    truth: &[HashSet<u64>],
    o: &SearchOptions,
) -> (f64, f64, f64) {
    for q in queries.iter().take(3) {
        idx.search(&Descriptor(*q), o).unwrap();
    }
    let mut lat = Vec::new();
    let mut found = 0usize;
    for (q, want) in queries.iter().zip(truth) {
        let t = Instant::now();
        let r = idx.search(&Descriptor(*q), o).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        found += r.iter().filter(|m| want.contains(&m.face_id)).count();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    (
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        recall,
    )
}

fn bench_set(label: &str, idx: &mut SearchIndex, queries: &[[f32; 128]], args: &Args) {
    println!(
        "\n## {label}: {} faces, {} queries, {} threads",
        idx.len(),
        queries.len(),
        args.threads
    );
    println!(
        "matrix memory {:.1} MiB; kernel {}",
        idx.matrix().memory_bytes() as f64 / (1 << 20) as f64,
        facelike_gallery::kernels::simd_level()
    );
    let exact = SearchOptions {
        k: 10,
        mode: SearchMode::Exact,
        ..Default::default()
    };
    // Warm-up (page faults, caches).
    for q in queries.iter().take(3) {
        idx.search(&Descriptor(*q), &exact).unwrap();
    }
    let mut lat = Vec::new();
    let mut truth: Vec<HashSet<u64>> = Vec::new();
    for q in queries {
        let t = Instant::now();
        let r = idx.search(&Descriptor(*q), &exact).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        truth.push(r.iter().map(|m| m.face_id).collect());
    }
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    println!("exact top-10 L2: p50 {p50:.2} ms, p99 {p99:.2} ms");

    if !args.ivf.is_empty() {
        let t = Instant::now();
        idx.build_ivf(
            Metric::L2,
            facelike_gallery::IvfParams {
                lists: args.lists,
                ..Default::default()
            },
        );
        let build = t.elapsed().as_secs_f64();
        let cells = match idx.ann() {
            Some(facelike_gallery::Ann::Ivf(i)) => i.lists(),
            _ => unreachable!(),
        };
        println!(
            "IVF build ({cells} cells, 8-bit codes): {build:.1} s; index {:.1} MiB; auto nprobe {}",
            idx.ann().unwrap().memory_bytes() as f64 / (1 << 20) as f64,
            facelike_gallery::auto_nprobe(cells)
        );
        println!("| nprobe | p50 ms | p99 ms | recall@10 |\n|---|---|---|---|");
        for &np in &args.ivf {
            let o = SearchOptions {
                mode: SearchMode::Ann,
                nprobe: np,
                ..exact.clone()
            };
            let (p50, p99, recall) = measure(idx, queries, &truth, &o);
            println!(
                "| {} | {p50:.3} | {p99:.3} | {recall:.4} |",
                if np == 0 {
                    "auto".to_string()
                } else {
                    np.to_string()
                }
            );
        }
    }
    if !args.ann {
        return;
    }
    let (rss0, _) = rss_mib();
    let t = Instant::now();
    idx.build_hnsw(
        Metric::L2,
        HnswParams {
            m: args.m,
            ef_construction: args.efc,
            ..HnswParams::default()
        },
    );
    let build = t.elapsed().as_secs_f64();
    let (rss1, hwm) = rss_mib();
    println!(
        "HNSW build (m={}, ef_construction={}): {build:.1} s; graph {:.1} MiB (RSS +{:.0} MiB, peak RSS {hwm:.0} MiB)",
        args.m,
        args.efc,
        idx.ann().unwrap().memory_bytes() as f64 / (1 << 20) as f64,
        rss1 - rss0
    );
    println!("| ef | p50 ms | p99 ms | recall@10 |\n|---|---|---|---|");
    for &ef in &args.efs {
        let o = SearchOptions {
            mode: SearchMode::Ann,
            ef,
            ..exact.clone()
        };
        let (p50, p99, recall) = measure(idx, queries, &truth, &o);
        println!("| {ef} | {p50:.3} | {p99:.3} | {recall:.4} |");
    }
}

/// Store throughput: commits `n` synthetic faces (1 KiB thumbnails) in batches of 500 files
/// into a fresh gallery, then loads them back for search.
fn bench_store(model: &SpreadModel, n: usize) {
    use facelike_gallery::{
        DescriptorKind, EncodedImage, Gallery, LoadOptions, NewFace, SearchIndex,
    };
    use facelike_types::{Point, Rect};
    let (ident, data) = model.generate(n, 11);
    let tmp = std::env::temp_dir().join(format!("facelike-gallery-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut g = Gallery::open_or_create(&tmp).unwrap();
    let t = Instant::now();
    let kind = DescriptorKind::dlib_raw();
    let mut batch = Vec::with_capacity(500);
    for i in 0..n {
        batch.push(EncodedImage {
            path: format!("/photos/id{}/{i}.jpg", ident[i]),
            identity: format!("id{}", ident[i]),
            sha256: format!("{i:064x}"),
            outcome: Ok(vec![NewFace {
                rect: Rect::new(10, 20, 110, 120),
                landmarks: (0..5).map(|k| Point::new(30 + k, 40 + k)).collect(),
                descriptor: Descriptor(data[i * 128..(i + 1) * 128].try_into().unwrap()),
                thumbnail_png: Some(vec![0x89; 1024]),
            }]),
        });
        if batch.len() == 500 || i + 1 == n {
            g.commit_batch(&kind, &batch).unwrap();
            batch.clear();
        }
    }
    let commit = t.elapsed().as_secs_f64();
    let bytes = g.stats().unwrap().store_bytes;
    let t = Instant::now();
    let idx = SearchIndex::load(
        &g,
        &LoadOptions {
            ann: facelike_gallery::AnnPolicy::Never,
            ..Default::default()
        },
    )
    .unwrap();
    let load = t.elapsed().as_secs_f64();
    println!(
        "\n## store: {n} faces committed in batches of 500 in {commit:.1} s ({:.0} faces/s); \
         file {:.0} MiB; loading the {} descriptors for search: {load:.2} s",
        n as f64 / commit,
        bytes as f64 / (1 << 20) as f64,
        idx.len()
    );
    drop(g);
    let _ = std::fs::remove_dir_all(&tmp);
}

fn main() {
    let args = parse_args();
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .unwrap();
    let (paths, desc) = facelike_testdata::lfw_descriptors();
    let names: Vec<String> = paths.iter().map(|p| lfw_identity(p).to_owned()).collect();
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let ident: Vec<u32> = names
        .iter()
        .map(|n| {
            let l = ids.len() as u32;
            *ids.entry(n).or_insert(l)
        })
        .collect();
    let flat: Vec<f32> = desc.iter().flatten().copied().collect();
    let real = pair_distance_stats(&ident, &flat, 20_000, 1);
    let model = SpreadModel::fit(&names, &desc);
    println!(
        "LFW: {} faces, {} identities; total variance between identities {:.4}, within {:.4}; \
         per-face noise scale sigma {:.3}, gain {:.3}",
        desc.len(),
        ids.len(),
        model.between_trace,
        model.within_trace,
        model.scale_sigma,
        model.noise_gain
    );

    if args.lfw {
        // Every 20th LFW face is a query; the rest is the gallery.
        let (mut g_ids, mut g_ident, mut g_data, mut qs) = (vec![], vec![], vec![], vec![]);
        for (i, d) in desc.iter().enumerate() {
            if i % 20 == 0 {
                qs.push(*d);
            } else {
                g_ids.push(i as u64);
                g_ident.push(ident[i]);
                g_data.extend_from_slice(d);
            }
        }
        let mut lfw_names = vec![String::new(); ids.len()];
        for (n, &i) in &ids {
            lfw_names[i as usize] = n.to_string();
        }
        let mut idx = SearchIndex::from_parts(g_ids, g_ident, g_data, lfw_names, None).unwrap();
        qs.truncate(args.queries);
        bench_set("LFW View-2 (real dlib descriptors)", &mut idx, &qs, &args);
    }

    if args.store_n > 0 {
        bench_store(&model, args.store_n);
    }

    let t = Instant::now();
    let q_n = args.queries;
    let (s_ident, mut s_data) = model.generate(args.n + q_n * 4, 7);
    if args.n == 0 {
        return;
    }
    println!(
        "\ngenerated {} synthetic descriptors in {:.1} s",
        s_ident.len(),
        t.elapsed().as_secs_f64()
    );
    let synth = pair_distance_stats(&s_ident, &s_data, 20_000, 2);
    println!(
        "| pairs (L2) | same mean | same std | diff mean | diff std | same ≤ 0.6 | diff ≤ 0.6 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (l, s) in [("LFW", real), ("synthetic", synth)] {
        println!(
            "| {l} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.5} |",
            s.same_mean, s.same_std, s.diff_mean, s.diff_std, s.same_within_06, s.diff_within_06
        );
    }
    // Queries: one face from each of q_n identities spread over the set (new photos of
    // people in the gallery), removed from the gallery.
    let total = s_ident.len();
    let mut is_query = vec![false; total];
    let mut qs = Vec::new();
    let mut last = u32::MAX;
    let stride = total / (q_n * 2);
    let mut i = 0;
    while qs.len() < q_n && i < total {
        if s_ident[i] != last && i + 1 < total && s_ident[i + 1] == s_ident[i] {
            is_query[i] = true;
            qs.push(<[f32; 128]>::try_from(&s_data[i * 128..(i + 1) * 128]).unwrap());
            last = s_ident[i];
            i += stride;
        } else {
            i += 1;
        }
    }
    let mut g_ids = Vec::with_capacity(args.n);
    let mut g_ident = Vec::with_capacity(args.n);
    let mut w = 0;
    for r in 0..total {
        if is_query[r] || g_ids.len() >= args.n {
            continue;
        }
        g_ids.push(r as u64);
        g_ident.push(s_ident[r]);
        s_data.copy_within(r * 128..(r + 1) * 128, w * 128);
        w += 1;
    }
    s_data.truncate(w * 128);
    let n_names = g_ident.iter().max().map_or(0, |m| *m as usize + 1);
    let names: Vec<String> = (0..n_names).map(|i| format!("id{i}")).collect();
    let mut idx = SearchIndex::from_parts(g_ids, g_ident, s_data, names, None).unwrap();
    bench_set("synthetic dlib-like", &mut idx, &qs, &args);
}
