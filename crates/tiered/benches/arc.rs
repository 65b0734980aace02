//! ARC against LRU and 2Q: hit ratios on the standard traces (printed as a table before the
//! timings), then requests per second single-threaded and with two threads.
//!
//! `cargo bench -p ipfs-kit-tiered --bench arc` (add `-- --quick` for a shorter run). The
//! hit-ratio table alone: `cargo bench -p ipfs-kit-tiered --bench arc -- --list`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ipfs_kit_tiered::arc::{self, ArcCache, ArcCore};
use ipfs_kit_tiered::sim::{
    replay, size_of, standard_traces, Concurrent, Lru, Policy, Sharded, Trace, TwoQ,
};

fn policies(capacity: u64) -> Vec<Box<dyn Policy>> {
    vec![
        Box::new(ArcCore::<u64, ()>::new(capacity)),
        Box::new(Lru::new(capacity)),
        Box::new(TwoQ::new(capacity)),
    ]
}

fn hit_ratio_table(traces: &[(Trace, u64)]) {
    println!("| trace | cache | ARC | LRU | 2Q | ARC byte hits | LRU byte hits | 2Q byte hits |");
    println!("|---|---|---|---|---|---|---|---|");
    for (trace, capacity) in traces {
        let outcomes: Vec<_> = policies(*capacity)
            .iter_mut()
            .map(|p| replay(p.as_mut(), trace))
            .collect();
        let pct = |x: f64| format!("{:.1} %", x * 100.0);
        println!(
            "| {} | {} MiB | {} | {} | {} | {} | {} | {} |",
            trace.name,
            capacity >> 20,
            pct(outcomes[0].hit_ratio()),
            pct(outcomes[1].hit_ratio()),
            pct(outcomes[2].hit_ratio()),
            pct(outcomes[0].byte_hit_ratio()),
            pct(outcomes[1].byte_hit_ratio()),
            pct(outcomes[2].byte_hit_ratio()),
        );
    }
}

/// Shards of the concurrent caches: the node's default for a 256 MiB cache.
const SHARDS: usize = 16;

fn concurrent(name: &str, capacity: u64) -> Box<dyn Concurrent> {
    match name {
        "ARC" => Box::new(ArcCache::<u64, ()>::with_config(
            arc::Config::default()
                .with_capacity(capacity)
                .with_shards(SHARDS)
                .with_min_shard(1),
        )),
        "LRU" => Box::new(Sharded::new(capacity, SHARDS, Lru::new)),
        _ => Box::new(Sharded::new(capacity, SHARDS, TwoQ::new)),
    }
}

/// Runs `requests` through `cache` on `threads` threads, each taking every `threads`-th request
/// from its own offset; returns the wall time.
fn drive(cache: &dyn Concurrent, requests: &[(u64, u64)], threads: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut hits = 0u64;
                for (k, size) in requests.iter().skip(t).step_by(threads) {
                    hits += u64::from(cache.request(*k, *size));
                }
                std::hint::black_box(hits);
            });
        }
    });
    start.elapsed()
}

fn throughput(c: &mut Criterion, trace: &Trace, capacity: u64) {
    let requests: Vec<(u64, u64)> = trace.requests.iter().map(|k| (*k, size_of(*k))).collect();
    // Single-threaded: the unsharded policies, one request at a time.
    let mut g = c.benchmark_group(format!("one thread, {}", trace.name));
    g.throughput(Throughput::Elements(requests.len() as u64));
    g.sample_size(10);
    for name in ["ARC", "LRU", "2Q"] {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut p = policies(capacity)
                        .into_iter()
                        .find(|p| p.name() == name)
                        .expect("policy");
                    let start = Instant::now();
                    let mut hits = 0u64;
                    for (k, size) in &requests {
                        if p.get(*k) {
                            hits += 1;
                        } else {
                            p.insert(*k, *size);
                        }
                    }
                    std::hint::black_box(hits);
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
    // The sharded, lock-per-shard forms, on one and on two threads.
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("sharded, {threads} thread(s), {}", trace.name));
        g.throughput(Throughput::Elements(requests.len() as u64));
        g.sample_size(10);
        for name in ["ARC", "LRU", "2Q"] {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| drive(&*concurrent(name, capacity), &requests, threads))
                        .sum()
                })
            });
        }
        g.finish();
    }
}

/// Hit ratios of one trace over a range of cache sizes (fractions of the working set's bytes).
fn sweep(trace: &Trace, working_set: u64) {
    println!();
    println!(
        "{}, by cache size (share of the working set's bytes):",
        trace.name
    );
    println!();
    println!("| cache | ARC | LRU | 2Q |");
    println!("|---|---|---|---|");
    for share in [0.05, 0.1, 0.2, 0.3, 0.5] {
        let capacity = (working_set as f64 * share) as u64;
        let r: Vec<f64> = policies(capacity)
            .iter_mut()
            .map(|p| replay(p.as_mut(), trace).hit_ratio() * 100.0)
            .collect();
        println!(
            "| {:.0} % | {:.1} % | {:.1} % | {:.1} % |",
            share * 100.0,
            r[0],
            r[1],
            r[2]
        );
    }
}

fn main() {
    let traces = standard_traces(1.0);
    hit_ratio_table(&traces);
    // The standard caches are a tenth of the 20,000 keys' bytes.
    let working_set = traces[0].1 * 10;
    sweep(&traces[1].0, working_set);
    sweep(&traces[6].0, working_set);
    println!();
    let mut c = Criterion::default().configure_from_args();
    // Timings on the zipf 0.8 trace (mostly hits) and on the scan mix (many misses).
    for i in [1, 5] {
        throughput(&mut c, &traces[i].0, traces[i].1);
    }
    c.final_summary();
}
