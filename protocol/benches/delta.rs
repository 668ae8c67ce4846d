//! Delta hot paths on a 100 KB rich-text document: compose, transform and
//! `Document::apply` (the server's apply path), plus the replay of the
//! automerge-paper editing trace (259,778 single-character edits): through
//! `Document::apply` alone, and through the server's whole CPU path for a
//! submitted op (parse the client's frame, validate, apply, encode the ack
//! and the broadcast) without the store and the sockets.
//!
//! ```text
//! cargo bench -p rt-protocol --bench delta
//! RT_TRACE=/path/to/automerge-paper.json.gz cargo bench -p rt-protocol --bench delta -- trace
//! ```

use std::hint::black_box;
use std::io::Read;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rt_protocol::delta::{Attributes, Delta, Document};
use rt_protocol::sharedb::{self, OpBody, Request};
use serde_json::{Value, json};

/// Where the trace is read from unless `RT_TRACE` says otherwise: the
/// design card's `shared/traces/`, beside the project root.
const DEFAULT_TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/traces/automerge-paper.json.gz"
);
/// Size of the synthetic document.
const DOC_UNITS: usize = 100 * 1024;

fn bold() -> Attributes {
    json!({"bold": true})
        .as_object()
        .cloned()
        .expect("an object")
}

/// 100 KB of text in lines of 64 units, every eighth line bold.
fn document_delta() -> Delta {
    let mut d = Delta::new();
    let line = format!(
        "{}\n",
        "lorem ipsum dolor sit amet consectetur adipiscing elit sed do e"
    );
    let mut len = 0;
    let mut i = 0;
    while len < DOC_UNITS {
        let attrs = (i % 8 == 0).then(bold);
        d.insert(line.as_str(), attrs);
        len += line.len();
        i += 1;
    }
    d
}

/// A keystroke in the middle of the document.
fn keystroke(at: usize) -> Delta {
    let mut d = Delta::new();
    d.retain(at, None).insert("x", None);
    d
}

/// An op touching the whole document: every 100th unit replaced and every
/// line's first 10 units made italic (about 3,000 components).
fn sweeping_op(len: usize) -> Delta {
    let italic = json!({"italic": true}).as_object().cloned();
    let mut d = Delta::new();
    let mut at = 0;
    while at + 100 <= len {
        d.retain(10, italic.clone())
            .retain(89, None)
            .delete(1)
            .insert("y", None);
        at += 100;
    }
    d
}

fn compose(c: &mut Criterion) {
    let doc = document_delta();
    let len = doc.len();
    let key = keystroke(len / 2);
    let sweep = sweeping_op(len);
    let mut g = c.benchmark_group("compose");
    g.bench_function("doc_100k_with_keystroke", |b| {
        b.iter(|| black_box(&doc).compose(black_box(&key)))
    });
    g.bench_function("doc_100k_with_sweeping_op", |b| {
        b.iter(|| black_box(&doc).compose(black_box(&sweep)))
    });
    g.bench_function("sweeping_op_with_sweeping_op", |b| {
        b.iter(|| black_box(&sweep).compose(black_box(&sweep)))
    });
    g.finish();
}

fn transform(c: &mut Criterion) {
    let len = document_delta().len();
    let a = keystroke(len / 2);
    let b = keystroke(len / 3);
    let sweep = sweeping_op(len);
    let mut g = c.benchmark_group("transform");
    g.bench_function("keystroke_over_keystroke", |bench| {
        bench.iter(|| black_box(&a).transform(black_box(&b), true))
    });
    g.bench_function("keystroke_over_sweeping_op", |bench| {
        bench.iter(|| black_box(&sweep).transform(black_box(&a), true))
    });
    g.bench_function("sweeping_op_over_sweeping_op", |bench| {
        bench.iter(|| black_box(&sweep).transform(black_box(&sweep), false))
    });
    g.finish();
}

fn apply(c: &mut Criterion) {
    let doc = Document::from_delta(&document_delta()).expect("a valid document");
    let len = doc.len_utf16();
    let mut g = c.benchmark_group("document_apply");
    g.bench_function("doc_100k_keystroke", |b| {
        b.iter_batched_ref(
            || doc.clone(),
            |d| d.apply(&keystroke(len / 2)).expect("applies"),
            BatchSize::LargeInput,
        )
    });
    let sweep = sweeping_op(len);
    g.bench_function("doc_100k_sweeping_op", |b| {
        b.iter_batched_ref(
            || doc.clone(),
            |d| d.apply(&sweep).expect("applies"),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The trace's edits as Deltas (positions are characters; the trace is all
/// ASCII, which `ops` checks, so they are UTF-16 units too) and the final text.
fn trace_ops() -> (Vec<Delta>, String) {
    let path = std::env::var("RT_TRACE").unwrap_or_else(|_| DEFAULT_TRACE.to_string());
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("cannot open the trace {path}: {e} (set RT_TRACE)"));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .expect("a gzipped JSON trace");
    let trace: Value = serde_json::from_str(&json).expect("trace JSON");
    let end = trace["endContent"]
        .as_str()
        .expect("endContent")
        .to_string();
    assert!(end.is_ascii(), "the trace must be ASCII");
    let mut ops = Vec::new();
    for txn in trace["txns"].as_array().expect("txns") {
        for p in txn["patches"].as_array().expect("patches") {
            let pos = p[0].as_u64().expect("pos") as usize;
            let del = p[1].as_u64().expect("delCount") as usize;
            let ins = p[2].as_str().expect("insText");
            let mut d = Delta::new();
            d.retain(pos, None).delete(del).insert(ins, None);
            ops.push(d);
        }
    }
    (ops, end)
}

fn trace(c: &mut Criterion) {
    let (ops, end) = trace_ops();
    // Check once that the replay is right before timing it.
    let mut check = Document::new();
    for op in &ops {
        check.apply(op).expect("trace op applies");
    }
    assert_eq!(check.text(), end, "the replay must give endContent");
    let mut g = c.benchmark_group("trace");
    g.sample_size(10);
    g.bench_function("automerge_paper_document_apply", |b| {
        b.iter(|| {
            let mut d = Document::new();
            for op in &ops {
                d.apply(op).expect("applies");
            }
            d
        })
    });
    // The client frames as a ShareDB client would send them, one per edit.
    let frames: Vec<String> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            json!({"a": "op", "c": "bench", "d": "trace", "v": i + 1, "seq": i + 1,
                   "x": {}, "op": op.ops_value()})
            .to_string()
        })
        .collect();
    g.bench_function("automerge_paper_server_submit_path", |b| {
        b.iter(|| {
            let mut d = Document::new();
            let mut wire = 0usize;
            for frame in &frames {
                let parsed = sharedb::parse_frame(frame).expect("a frame");
                let Ok(Request::Op(submit)) = sharedb::parse_request(&parsed) else {
                    panic!("not a submit: {frame}");
                };
                let OpBody::Edit(op) = &submit.body else {
                    panic!("not an edit: {frame}");
                };
                d.apply(op).expect("applies");
                let v = submit.v.expect("a version");
                wire += sharedb::ack(&submit.c, &submit.d, "src", submit.seq, v).len();
                wire +=
                    sharedb::op_message(&submit.c, &submit.d, v, "src", submit.seq, &submit.body)
                        .len();
            }
            (d, wire)
        })
    });
    g.finish();
}

criterion_group!(benches, compose, transform, apply, trace);
criterion_main!(benches);
