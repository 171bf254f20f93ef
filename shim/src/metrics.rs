//! Task metrics from `runc events --stats`, in the message types containerd decodes
//! (`io.containerd.cgroups.v1.Metrics` on cgroup v1 hosts, `io.containerd.cgroups.v2.Metrics` on v2).

use containerd_shim::protos::{
    cgroups::metrics as v1,
    cgroups_v2::metrics as v2,
    protobuf::{well_known_types::any::Any, MessageDyn},
};
use serde_json::Value;

fn u(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

fn entry(v: &Value, key: &str) -> v1::MemoryEntry {
    let mut e = v1::MemoryEntry::new();
    e.limit = u(v, &["memory", key, "limit"]);
    e.usage = u(v, &["memory", key, "usage"]);
    e.max = u(v, &["memory", key, "max"]);
    e.failcnt = u(v, &["memory", key, "failcnt"]);
    e
}

/// cgroup v1 metrics from the `data` object of a runc stats event.
pub fn v1_metrics(data: &Value) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    let mut pids = v1::PidsStat::new();
    pids.current = u(data, &["pids", "current"]);
    pids.limit = u(data, &["pids", "limit"]);
    m.pids = Some(pids).into();

    let mut usage = v1::CPUUsage::new();
    usage.total = u(data, &["cpu", "usage", "total"]);
    usage.kernel = u(data, &["cpu", "usage", "kernel"]);
    usage.user = u(data, &["cpu", "usage", "user"]);
    usage.per_cpu = data
        .pointer("/cpu/usage/percpu")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let mut throttle = v1::Throttle::new();
    throttle.periods = u(data, &["cpu", "throttling", "periods"]);
    throttle.throttled_periods = u(data, &["cpu", "throttling", "throttled_periods"]);
    throttle.throttled_time = u(data, &["cpu", "throttling", "throttled_time"]);
    let mut cpu = v1::CPUStat::new();
    cpu.usage = Some(usage).into();
    cpu.throttling = Some(throttle).into();
    m.cpu = Some(cpu).into();

    let mut mem = v1::MemoryStat::new();
    mem.cache = u(data, &["memory", "cache"]);
    let raw = |k: &str| u(data, &["memory", "raw", k]);
    mem.rss = raw("rss");
    mem.rss_huge = raw("rss_huge");
    mem.mapped_file = raw("mapped_file");
    mem.dirty = raw("dirty");
    mem.writeback = raw("writeback");
    mem.pg_fault = raw("pgfault");
    mem.pg_maj_fault = raw("pgmajfault");
    mem.inactive_anon = raw("inactive_anon");
    mem.active_anon = raw("active_anon");
    mem.inactive_file = raw("inactive_file");
    mem.active_file = raw("active_file");
    mem.unevictable = raw("unevictable");
    mem.hierarchical_memory_limit = raw("hierarchical_memory_limit");
    mem.total_cache = raw("total_cache");
    mem.total_rss = raw("total_rss");
    mem.total_inactive_file = raw("total_inactive_file");
    mem.usage = Some(entry(data, "usage")).into();
    mem.swap = Some(entry(data, "swap")).into();
    mem.kernel = Some(entry(data, "kernel")).into();
    mem.kernel_tcp = Some(entry(data, "kernelTCP")).into();
    m.memory = Some(mem).into();

    if let Some(h) = data.get("hugetlb").and_then(Value::as_object) {
        for (size, stat) in h {
            let mut s = v1::HugetlbStat::new();
            s.pagesize = size.clone();
            s.usage = u(stat, &["usage"]);
            s.max = u(stat, &["max"]);
            s.failcnt = u(stat, &["failcnt"]);
            m.hugetlb.push(s);
        }
    }
    m
}

/// cgroup v2 metrics from the `data` object of a runc stats event.
pub fn v2_metrics(data: &Value) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    let mut pids = v2::PidsStat::new();
    pids.current = u(data, &["pids", "current"]);
    pids.limit = u(data, &["pids", "limit"]);
    m.pids = Some(pids).into();
    let mut cpu = v2::CPUStat::new();
    // runc reports nanoseconds; cgroup v2 metrics are in microseconds.
    cpu.usage_usec = u(data, &["cpu", "usage", "total"]) / 1000;
    cpu.user_usec = u(data, &["cpu", "usage", "user"]) / 1000;
    cpu.system_usec = u(data, &["cpu", "usage", "kernel"]) / 1000;
    cpu.nr_periods = u(data, &["cpu", "throttling", "periods"]);
    cpu.nr_throttled = u(data, &["cpu", "throttling", "throttled_periods"]);
    cpu.throttled_usec = u(data, &["cpu", "throttling", "throttled_time"]) / 1000;
    m.cpu = Some(cpu).into();
    let mut mem = v2::MemoryStat::new();
    let raw = |k: &str| u(data, &["memory", "raw", k]);
    mem.anon = raw("anon");
    mem.file = raw("file");
    mem.inactive_file = raw("inactive_file");
    mem.active_file = raw("active_file");
    mem.usage = u(data, &["memory", "usage", "usage"]);
    mem.usage_limit = u(data, &["memory", "usage", "limit"]);
    mem.max_usage = u(data, &["memory", "usage", "max"]);
    mem.swap_usage = u(data, &["memory", "swap", "usage"]);
    mem.swap_limit = u(data, &["memory", "swap", "limit"]);
    m.memory = Some(mem).into();
    m
}

pub fn is_cgroup_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Packs the metrics for the host's cgroup version into an `Any`.
pub fn to_any(data: &Value) -> Result<Any, String> {
    let msg: Box<dyn MessageDyn> = if is_cgroup_v2() {
        Box::new(v2_metrics(data))
    } else {
        Box::new(v1_metrics(data))
    };
    let mut any = Any::new();
    any.type_url = msg.descriptor_dyn().full_name().to_string();
    any.value = msg.write_to_bytes_dyn().map_err(|e| e.to_string())?;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::Message;

    const SAMPLE: &str = r#"{"cpu":{"usage":{"total":123456,"percpu":[100,200],"kernel":10,"user":20},
        "throttling":{"periods":3}},"memory":{"cache":4096,"usage":{"usage":8192,"limit":1048576,"max":9000,"failcnt":1},
        "raw":{"rss":77,"total_inactive_file":5}},"pids":{"current":2,"limit":64},"hugetlb":{"2MB":{"usage":0,"failcnt":0}}}"#;

    #[test]
    fn runc_stats_map_to_v1_metrics() {
        let v: Value = serde_json::from_str(SAMPLE).unwrap();
        let m = v1_metrics(&v);
        assert_eq!(m.pids.current, 2);
        assert_eq!(m.pids.limit, 64);
        assert_eq!(m.cpu.usage.total, 123456);
        assert_eq!(m.cpu.usage.per_cpu, vec![100, 200]);
        assert_eq!(m.memory.usage.usage, 8192);
        assert_eq!(m.memory.usage.limit, 1048576);
        assert_eq!(m.memory.rss, 77);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
        let bytes = m.write_to_bytes().unwrap();
        assert_eq!(
            v1::Metrics::parse_from_bytes(&bytes).unwrap().pids.current,
            2
        );
        assert_eq!(
            m.descriptor_dyn().full_name(),
            "io.containerd.cgroups.v1.Metrics"
        );
    }

    #[test]
    fn runc_stats_map_to_v2_metrics_in_microseconds() {
        let v: Value = serde_json::from_str(SAMPLE).unwrap();
        let m = v2_metrics(&v);
        assert_eq!(m.cpu.usage_usec, 123);
        assert_eq!(m.memory.usage, 8192);
        assert_eq!(
            m.descriptor_dyn().full_name(),
            "io.containerd.cgroups.v2.Metrics"
        );
    }

    #[test]
    fn missing_fields_are_zero_not_errors() {
        let m = v1_metrics(&Value::Null);
        assert_eq!(m.pids.current, 0);
    }
}
