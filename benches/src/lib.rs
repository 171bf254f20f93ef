//! Benchmarks of vouch live in `benches/` (criterion: `cargo bench -p vouch-benches`) and in
//! `hack/bench.sh` (container start and shim memory against the stock runc shim).
