//! `bench replay`: an editing trace (the automerge-paper keystrokes) typed
//! through the ShareDB protocol by one client, one op in flight, each edit
//! its own op. Reports edits/s, ack latency and server CPU per op, and checks
//! the server's final text.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rt_protocol::delta::Delta;
use serde_json::Value;

use super::docclient::{DocClient, Event};
use super::net::Connector;
use super::report::{Counters, CpuMark, Latencies, Progress, Summary};
use super::{Common, MAX_SECONDS, Target};

/// `bench replay` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The trace: gzipped (or plain) JSON `{startContent, endContent,
    /// txns: [{patches: [[pos, delCount, insText]]}]}`. The default is the
    /// one in `shared/traces/` beside the project root, run from the root.
    #[arg(long, default_value = "../shared/traces/automerge-paper.json.gz")]
    pub trace: PathBuf,

    /// Replay at most this many edits (default: all).
    #[arg(long, value_name = "N")]
    pub edits: Option<usize>,

    /// Stop after this many seconds even if edits remain.
    #[arg(long, default_value_t = 120, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub duration: u64,

    #[command(flatten)]
    pub common: Common,
}

/// A loaded trace: the edits as Deltas, the start and the expected end.
#[derive(Debug)]
pub struct Trace {
    pub start: String,
    pub end: String,
    pub edits: Vec<Delta>,
}

/// Reads a trace file. Positions are in characters; they are converted to
/// UTF-16 units, so a non-ASCII trace works too.
pub fn load_trace(path: &std::path::Path) -> anyhow::Result<Trace> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut s)
            .context("bad gzip")?;
        s
    } else {
        raw
    };
    let v: Value = serde_json::from_slice(&json).context("bad trace JSON")?;
    let start = v["startContent"].as_str().context("no startContent")?;
    let end = v["endContent"].as_str().context("no endContent")?;
    let mut chars: Vec<char> = start.chars().collect();
    let mut edits = Vec::new();
    let units = |s: &[char]| s.iter().map(|c| c.len_utf16()).sum::<usize>();
    for txn in v["txns"].as_array().context("no txns")? {
        for p in txn["patches"].as_array().context("no patches")? {
            let pos = p[0].as_u64().context("bad pos")? as usize;
            let del = p[1].as_u64().context("bad delCount")? as usize;
            let ins = p[2].as_str().context("bad insText")?;
            anyhow::ensure!(pos + del <= chars.len(), "patch past the end");
            let mut d = Delta::new();
            d.retain(units(&chars[..pos]), None)
                .delete(units(&chars[pos..pos + del]))
                .insert(ins, None);
            chars.splice(pos..pos + del, ins.chars());
            edits.push(d);
        }
    }
    Ok(Trace {
        start: start.to_string(),
        end: end.to_string(),
        edits,
    })
}

/// Runs the scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<Summary> {
    let trace = load_trace(&args.trace)?;
    let total = args
        .edits
        .unwrap_or(trace.edits.len())
        .min(trace.edits.len());
    let doc_id = format!(
        "replay-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros()
    );
    let connector = Connector::new(target.addr, 1);
    let mut client = DocClient::connect(&connector, &doc_id)
        .await
        .map_err(anyhow::Error::msg)?;
    client
        .create(&trace.start)
        .await
        .map_err(anyhow::Error::msg)?;
    client.load("s").await.map_err(anyhow::Error::msg)?;

    let counters = Arc::new(Counters::default());
    counters.open.store(1, std::sync::atomic::Ordering::Relaxed);
    let progress = Progress::start("replay", counters.clone(), !args.common.quiet);
    let mut summary = Summary::new("replay", "acknowledged op");
    summary.param("trace", args.trace.display().to_string());
    summary.param("edits", total as u64);
    summary.param("server_args", args.common.target.server_args.join(" "));
    summary.param(
        "server_data",
        args.common.target.server_data.display().to_string(),
    );

    let server_mark = target.cpu_mark();
    let own_mark = CpuMark::take(std::process::id());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);
    let mut latencies = Latencies::with_capacity(total);
    let mut done = 0usize;
    for op in trace.edits.iter().take(total) {
        if Instant::now() > deadline {
            break;
        }
        client
            .queue_submit(op.clone())
            .map_err(anyhow::Error::msg)?;
        client.conn.flush().await?;
        loop {
            match client.next_event().await.map_err(anyhow::Error::msg)? {
                Event::Acked(took) => {
                    latencies.push(took);
                    break;
                }
                Event::Remote | Event::Other => {}
            }
        }
        done += 1;
        counters.add_message();
    }
    let elapsed = start.elapsed();
    summary.server = server_mark.and_then(|m| m.figures(done as u64));
    summary.generator = own_mark.and_then(|m| m.figures(done as u64));
    progress.finish();
    summary.elapsed_s = elapsed.as_secs_f64();
    summary.figure("edits_replayed", done as u64);
    summary.figure(
        "edits_per_s",
        (done as f64 / elapsed.as_secs_f64().max(1e-9)).round(),
    );
    summary.latency("ack", latencies);

    let local = client.doc.text();
    let mut fetch = DocClient::connect(&connector, &doc_id)
        .await
        .map_err(anyhow::Error::msg)?;
    fetch.load("f").await.map_err(anyhow::Error::msg)?;
    let server = fetch.doc.text();
    summary.figure("final_length", fetch.doc.len_utf16() as u64);
    if server != local {
        summary
            .errors
            .push("the server's text differs from the client's".into());
    }
    if done == trace.edits.len() && server != trace.end {
        summary
            .errors
            .push("the replayed text differs from the trace's endContent".into());
    }
    summary.figure(
        "matches_end_content",
        done == trace.edits.len() && server == trace.end,
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_patches_become_deltas_in_utf16_units() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(
            &path,
            r#"{"startContent":"é","endContent":"é😀ax","txns":[{"patches":[[1,0,"😀ab"]]},{"patches":[[3,1,"x"]]}]}"#,
        )
        .unwrap();
        let t = load_trace(&path).unwrap();
        assert_eq!(t.edits.len(), 2);
        let mut doc = rt_protocol::delta::Document::new();
        doc.apply(Delta::new().insert(t.start.as_str(), None))
            .unwrap();
        for e in &t.edits {
            doc.apply(e).unwrap();
        }
        assert_eq!(doc.text(), t.end);
    }
}
