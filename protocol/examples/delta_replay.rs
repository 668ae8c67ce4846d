//! Replays an editing trace through `Document::apply` and reports the time.
//!
//! ```text
//! gunzip -c ../shared/traces/automerge-paper.json.gz > /tmp/trace.json
//! cargo run --release -p rt-protocol --example delta_replay -- /tmp/trace.json
//! ```
//!
//! The trace format is `{"startContent", "endContent", "txns": [{"patches":
//! [[pos, delCount, insText]]}]}` with positions in characters; they are
//! converted to UTF-16 units, so non-ASCII traces work too.

use std::time::Instant;

use rt_protocol::delta::{Delta, Document};
use serde_json::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: delta_replay TRACE.json")?;
    let trace: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let start = trace["startContent"].as_str().ok_or("no startContent")?;
    let end = trace["endContent"].as_str().ok_or("no endContent")?;

    // Build every op first, tracking the text to turn character positions
    // into UTF-16 positions, so that the timing covers `apply` only.
    let mut chars: Vec<char> = start.chars().collect();
    let mut ops = Vec::new();
    for txn in trace["txns"].as_array().ok_or("no txns")? {
        for patch in txn["patches"].as_array().ok_or("no patches")? {
            let pos = patch[0].as_u64().ok_or("bad pos")? as usize;
            let del = patch[1].as_u64().ok_or("bad delCount")? as usize;
            let ins = patch[2].as_str().ok_or("bad insText")?;
            let units = |range: &[char]| range.iter().map(|c| c.len_utf16()).sum::<usize>();
            let mut op = Delta::new();
            op.retain(units(&chars[..pos]), None)
                .delete(units(&chars[pos..pos + del]))
                .insert(ins, None);
            chars.splice(pos..pos + del, ins.chars());
            ops.push(op);
        }
    }

    let mut document = Document::new();
    if !start.is_empty() {
        document.apply(Delta::new().insert(start, None))?;
    }
    let clock = Instant::now();
    for op in &ops {
        document.apply(op)?;
    }
    let elapsed = clock.elapsed();
    if document.text() != end {
        return Err("the replayed document differs from endContent".into());
    }
    println!(
        "{} edits applied in {:.1} ms ({:.0} ns per edit); final length {} UTF-16 units",
        ops.len(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e9 / ops.len() as f64,
        document.len_utf16()
    );
    Ok(())
}
