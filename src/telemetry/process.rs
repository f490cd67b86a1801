//! The standard `process_*` metrics, read from procfs at scrape time.
//!
//! Names and meanings are those of the Prometheus client libraries' process
//! collectors, so the usual dashboards work. Where /proc is missing (an empty
//! root without a proc mount) the metrics are left out rather than faked.

use std::{
    fs,
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// Linux reports /proc times in USER_HZ, fixed at 100 by the kernel ABI on every
/// architecture we build for (the Go procfs library makes the same assumption).
const USER_HZ: f64 = 100.0;

/// Emits process metrics on each scrape.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    start_time: f64,
}

impl ProcessCollector {
    /// Captures the start time once: it cannot change.
    pub(crate) fn new() -> Self {
        let start_time = start_time_from_proc().unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default()
        });
        Self { start_time }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

/// Fields of /proc/self/stat after the command name, 0-based from `state`.
struct Stat {
    utime: f64,
    stime: f64,
    starttime: f64,
    vsize: f64,
}

fn read_stat() -> Option<Stat> {
    let text = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses; it ends at the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    Some(Stat {
        utime: field(11)?,
        stime: field(12)?,
        starttime: field(19)?,
        vsize: field(20)?,
    })
}

fn start_time_from_proc() -> Option<f64> {
    let stat = read_stat()?;
    let boot = fs::read_to_string("/proc/stat").ok()?;
    let btime: f64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime + stat.starttime / USER_HZ)
}

fn open_fds() -> Option<f64> {
    Some(fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

fn max_fds() -> Option<f64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Resident set size in bytes, from `VmRSS` (reported in kB, so no page size
/// is needed).
fn resident_bytes() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(stat) = read_stat() {
            let cpu = ConstCounter::new((stat.utime + stat.stime) / USER_HZ);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                cpu.metric_type(),
            )?)?;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.vsize,
            )?;
        }
        if let Some(rss) = resident_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss,
            )?;
        }
        if let Some(open) = open_fds() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                open,
            )?;
        }
        if let Some(max) = max_fds() {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                max,
            )?;
        }
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.start_time,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_read_on_linux() {
        let stat = read_stat().expect("/proc/self/stat parses");
        assert!(stat.vsize > 0.0);
        assert!(resident_bytes().unwrap() > 0.0);
        assert!(open_fds().unwrap() >= 3.0);
        assert!(max_fds().unwrap() >= 3.0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = ProcessCollector::new().start_time;
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "start {start} now {now}"
        );
    }
}
