//! Where nats-server's memory goes: its Go heap profile (`--profile <port>`,
//! `/debug/pprof/heap?debug=1`) read and added up by the server function that allocated.
//!
//! The text profile holds sampled allocations (one per `rate` bytes on average), not every
//! one; each record is scaled as `go tool pprof` scales it, so small objects are not
//! undercounted. What is in use is what the last garbage collection left alive.

use std::collections::HashMap;

/// The live heap of a Go process, by allocating function.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapProfile {
    /// Estimated live bytes per function, largest first.
    pub by_function: Vec<(String, f64)>,
    /// The runtime's own figures: `HeapInuse` and `Sys` (everything taken from the OS).
    pub heap_inuse: Option<u64>,
    pub sys: Option<u64>,
}

impl HeapProfile {
    /// Reads a `debug=1` heap profile. A record is counted under the first frame of its
    /// stack (innermost first) whose function name contains `within` (e.g. the server's
    /// package) and none of `helpers` (buffer pools, the subject tree's nodes: what
    /// allocates for whom), else under its innermost frame.
    pub fn parse(text: &str, within: &str, helpers: &[&str]) -> Option<Self> {
        let mut lines = text.lines();
        let header = lines.next()?;
        // "heap profile: 96: 1234 [2000: 9999] @ heap/1048576": the rate is half the number.
        let rate = header.rsplit("heap/").next()?.trim().parse::<f64>().ok()? / 2.0;
        let mut by_function: HashMap<String, f64> = HashMap::new();
        let mut current: Option<f64> = None;
        let mut attributed = false;
        let mut fallback: Option<String> = None;
        let mut heap_inuse = None;
        let mut sys = None;
        let flush = |by_function: &mut HashMap<String, f64>,
                     current: &mut Option<f64>,
                     attributed: &mut bool,
                     fallback: &mut Option<String>| {
            if let (Some(bytes), false) = (current.take(), *attributed)
                && let Some(name) = fallback.take()
            {
                *by_function.entry(name).or_default() += bytes;
            }
            *attributed = false;
            *fallback = None;
        };
        for line in lines {
            if let Some(stat) = line.strip_prefix("# ") {
                let mut parts = stat.splitn(2, " = ");
                match (parts.next(), parts.next()) {
                    (Some("HeapInuse"), Some(value)) => heap_inuse = value.trim().parse().ok(),
                    (Some("Sys"), Some(value)) => sys = value.trim().parse().ok(),
                    _ => {}
                }
                continue;
            }
            if let Some(frame) = line.strip_prefix("#\t") {
                // "#\t0x4b2c1a\tpkg.(*T).f+0x3a\t/path/file.go:123"
                let Some(function) = frame.split('\t').nth(1) else {
                    continue;
                };
                let function = function.split('+').next().unwrap_or(function).to_string();
                if current.is_some() && !attributed {
                    if function.contains(within)
                        && !helpers.iter().any(|helper| function.contains(helper))
                    {
                        *by_function.entry(function).or_default() += current.unwrap_or(0.0);
                        attributed = true;
                    } else if fallback.is_none() {
                        fallback = Some(function);
                    }
                }
                continue;
            }
            if let Some((counts, _)) = line.split_once(" @ ") {
                flush(
                    &mut by_function,
                    &mut current,
                    &mut attributed,
                    &mut fallback,
                );
                // "objects: bytes [allocated objects: allocated bytes]"
                let live = counts.split('[').next().unwrap_or("");
                let mut numbers = live.split(':').map(|n| n.trim().parse::<f64>());
                if let (Some(Ok(objects)), Some(Ok(bytes))) = (numbers.next(), numbers.next())
                    && objects > 0.0
                    && bytes > 0.0
                {
                    let average = bytes / objects;
                    let scale = 1.0 / (1.0 - (-average / rate).exp());
                    current = Some(bytes * scale);
                }
            }
        }
        flush(
            &mut by_function,
            &mut current,
            &mut attributed,
            &mut fallback,
        );
        let mut by_function: Vec<(String, f64)> = by_function.into_iter().collect();
        by_function.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(HeapProfile {
            by_function,
            heap_inuse,
            sys,
        })
    }

    /// The estimated live bytes of every function.
    pub fn total(&self) -> f64 {
        self.by_function.iter().map(|(_, bytes)| bytes).sum()
    }
}

/// The heap profile of the Go process whose profiling port is `port`.
pub async fn fetch(port: u16) -> anyhow::Result<String> {
    Ok(
        reqwest::get(format!("http://127.0.0.1:{port}/debug/pprof/heap?debug=1"))
            .await?
            .error_for_status()?
            .text()
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "heap profile: 3: 3145728 [10: 4000000] @ heap/1048576
1: 2097152 [1: 2097152] @ 0x1 0x2 0x3
#\t0x1\tbytes.growSlice+0x10\t/go/bytes/buffer.go:1
#\t0x2\tgithub.com/nats-io/nats-server/v2/server.(*msgBlock).loadBlock+0x3a\t/s/filestore.go:5
#\t0x3\tgithub.com/nats-io/nats-server/v2/server.(*fileStore).msgForSeq+0x1\t/s/filestore.go:9

2: 1048576 [5: 1500000] @ 0x4
#\t0x4\tgithub.com/nats-io/nats-server/v2/server/stree.(*SubjectTree[...]).Insert+0x2\t/s/stree.go:1

0: 0 [4: 402848] @ 0x5
#\t0x5\truntime.malg+0x1\t/go/proc.go:1


# runtime.MemStats
# Alloc = 3145728
# Sys = 8388608
# HeapInuse = 4194304
";

    #[test]
    fn live_bytes_are_counted_under_the_first_server_frame_and_scaled() {
        let profile =
            HeapProfile::parse(SAMPLE, "nats-server/v2/server", &["loadBlock"]).expect("parses");
        let names: Vec<&str> = profile
            .by_function
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "github.com/nats-io/nats-server/v2/server.(*fileStore).msgForSeq",
                "github.com/nats-io/nats-server/v2/server/stree.(*SubjectTree[...]).Insert",
            ],
            "the first server frame that is no helper names the record; nothing live, \
             nothing counted"
        );
        // One 2 MiB object at a 512 KiB rate: sampled almost surely, scaled by ~1.02.
        let block = profile.by_function[0].1;
        assert!(block > 2_097_152.0 && block < 2_200_000.0, "{block}");
        // Two 512 KiB objects: each sampled with probability 1 - 1/e, scaled up by ~1.58.
        let tree = profile.by_function[1].1;
        assert!(tree > 1_600_000.0 && tree < 1_700_000.0, "{tree}");
        assert_eq!(profile.heap_inuse, Some(4_194_304));
        assert_eq!(profile.sys, Some(8_388_608));
    }

    #[test]
    fn a_record_outside_the_server_is_counted_under_its_innermost_frame() {
        let text = "heap profile: 1: 1048576 [1: 1048576] @ heap/1048576
1: 1048576 [1: 1048576] @ 0x1
#\t0x1\tencoding/json.Marshal+0x1\t/go/json.go:1
";
        let profile = HeapProfile::parse(text, "nats-server/v2/server", &[]).expect("parses");
        assert_eq!(profile.by_function.len(), 1);
        assert_eq!(profile.by_function[0].0, "encoding/json.Marshal");
        assert!(HeapProfile::parse("not a profile", "x", &[]).is_none());
    }
}
