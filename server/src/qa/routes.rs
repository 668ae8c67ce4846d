//! HTTP surface of the Q&A board: the `/login` event stream and the actions.

use std::io;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::stream;
use rt_protocol::qa::{self, ErrorBody};
use rt_protocol::sse;

use super::board::{Accepted, Action, Joined, Refusal};
use crate::serve::{SinkOffer, SinkTaken, sse_response};
use crate::state::AppState;
use crate::stats::App;

/// `/login` and the action routes. Actions accept POST only (GET gets 405).
pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/login", get(login));
    for (prefix, action) in [
        (qa::ASK_PATH, Action::Ask),
        (qa::SELECT_PATH, Action::Select),
        (qa::ANSWER_PATH, Action::Answer),
        (qa::VOTE_PATH, Action::Vote),
    ] {
        let handler = move |state: State<AppState>, headers: HeaderMap, uri: Uri| {
            act(state, headers, uri, action)
        };
        r = r
            .route(prefix, post(handler))
            .route(&format!("{prefix}{{*rest}}"), post(handler));
    }
    r.route_layer(axum::middleware::from_fn(crate::serve::rate::qa))
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::to_string(&ErrorBody {
        error: message.into(),
    })
    .expect("serializes");
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        json_error(self.status, self.message)
    }
}

async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    action: Action,
) -> Response {
    let Some(user) = headers.get(qa::USER_HEADER) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "missing _sse_user_id_ header: open GET /login and send the id from its login event",
        );
    };
    let Ok(user) = user.to_str() else {
        return json_error(StatusCode::UNAUTHORIZED, "unknown user");
    };
    // The classic server split Node's req.url (path and query) on '/'.
    let target = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| uri.path());
    let text = qa::decode_segment(qa::action_segment(target));
    match state.qa.act(user.to_string(), action, text).await {
        Ok(Accepted::Done) => StatusCode::OK.into_response(),
        Ok(Accepted::AlreadyAsked) => (StatusCode::OK, "already asked").into_response(),
        Ok(Accepted::Vote(v)) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            serde_json::to_string(&v).expect("serializes"),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The identity a client presents: the header (non-browser clients), the
/// `user` query parameter, or the cookie set at an earlier login.
fn presented_identity(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(qa::USER_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    if let Some(q) = query
        && let Some((_, v)) =
            form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == qa::USER_PARAM)
    {
        return Some(v.into_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == qa::USER_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// `GET /login`: the event stream.
async fn login(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    offer: Option<Extension<SinkOffer>>,
) -> Response {
    if method == Method::HEAD {
        // The headers alone: no user, no subscription.
        return (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::empty(),
        )
            .into_response();
    }
    let presented = presented_identity(&headers, query.as_deref());
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A lean stream's socket: the board writes events straight to it.
    let sink = offer.map(|Extension(SinkOffer(sink))| sink);
    if let Some(sink) = &sink {
        sink.keep_until_closed(Box::new(state.stats.connect(App::Qa)));
    }
    let mut joined = match state.qa.join(presented, last_event_id, sink.clone()).await {
        Ok(j) => j,
        Err(refusal) if refusal.status == StatusCode::SERVICE_UNAVAILABLE => {
            return unavailable(&state, &refusal.message);
        }
        Err(refusal) => return refusal.into_response(),
    };
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        qa::USER_COOKIE,
        joined.user,
        state.config.qa.user_ttl_days.saturating_mul(86_400)
    );
    let mut res = match joined.events {
        Some(_) => sse_response(event_stream(&state, joined)),
        None => {
            let mut res = sse_response(Body::from(first_bytes(&state, &mut joined)));
            res.extensions_mut().insert(SinkTaken);
            res
        }
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// A stream that says why it cannot be served now and ends, so that
/// EventSource reconnects after `retry:` (and keeps its Last-Event-ID),
/// where an HTTP 503 would make it stop for good.
fn unavailable(state: &AppState, message: &str) -> Response {
    let retry_ms = state.config.qa.retry_ms;
    let data = serde_json::to_string(&ErrorBody {
        error: message.to_string(),
    })
    .expect("a string serializes");
    let mut body = sse::preamble(retry_ms).to_vec();
    // Repeated inside the event for clients that take `retry` only there.
    body.extend_from_slice(format!("retry: {retry_ms}\n").as_bytes());
    body.extend_from_slice(&sse::encode_event(Some(qa::UNAVAILABLE_EVENT), None, &data));
    let mut res = sse_response(Body::from(body));
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_ms.div_ceil(1000).max(1)),
    );
    res
}

/// The preamble and the join's first events, as one write.
fn first_bytes(state: &AppState, joined: &mut Joined) -> Bytes {
    let preamble = sse::preamble(state.config.qa.retry_ms);
    let initial = std::mem::take(&mut joined.initial);
    let mut first = bytes::BytesMut::with_capacity(
        preamble.len() + initial.iter().map(Bytes::len).sum::<usize>(),
    );
    first.extend_from_slice(&preamble);
    for frame in &initial {
        first.extend_from_slice(frame);
    }
    state.stats.delivered(App::Qa, initial.len() as u64);
    first.freeze()
}

struct StreamState {
    /// The preamble and the join's first events, sent as one write.
    first: Option<Bytes>,
    events: tokio::sync::mpsc::Receiver<Bytes>,
    shutdown: tokio_util::sync::CancellationToken,
    stats: std::sync::Arc<crate::stats::Stats>,
    _open: crate::stats::ConnGuard,
    done: bool,
}

/// Preamble, the join's first events, then the live queue (a stream served
/// by hyper). The queue ends when the board drops this subscriber: at
/// shutdown the body then ends, otherwise (cut for falling behind, or
/// removed) it fails, so the client sees an error and reconnects. Nothing
/// but the queue is polled per event.
fn event_stream(state: &AppState, mut joined: Joined) -> Body {
    let first = first_bytes(state, &mut joined);
    let Some(events) = joined.events else {
        return Body::from(first);
    };
    let s = StreamState {
        first: Some(first),
        events,
        shutdown: state.shutdown.clone(),
        stats: state.stats.clone(),
        _open: state.stats.connect(App::Qa),
        done: false,
    };
    Body::from_stream(stream::unfold(s, |mut s| async move {
        if s.done {
            return None;
        }
        if let Some(first) = s.first.take() {
            return Some((Ok(first), s));
        }
        match s.events.recv().await {
            Some(frame) => {
                s.stats.delivered(App::Qa, 1);
                Some((Ok::<_, io::Error>(frame), s))
            }
            None if s.shutdown.is_cancelled() => None,
            None => {
                s.done = true;
                Some((
                    Err(io::Error::other("subscriber cut: its queue was full")),
                    s,
                ))
            }
        }
    }))
}
