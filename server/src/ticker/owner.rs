//! The ticker's owner task: it alone holds the market (or the upstream
//! cache), the pre-serialized poll bodies and the stream subscriptions.
//! Handlers reach it through a bounded command queue; replies come back on
//! oneshots.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use rt_protocol::sse;
use rt_protocol::ticker::{ERROR_CALL_IN_MS, PollResponse, Quote, STREAM_EVENT, Symbol};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::mailbox::Mailbox;
use super::market::{LISTINGS, Series};
use super::upstream::{Backoff, Upstream, now_ms};

/// The most queued commands handled in one go before the owner looks at its
/// clock and the shutdown signal again.
const DRAIN_BATCH: usize = 256;

/// What handlers ask of the owner.
pub(crate) enum Command {
    /// The poll body for a valid symbol.
    Poll {
        symbol: Symbol,
        reply: oneshot::Sender<Bytes>,
    },
    /// Subscribes `mailbox` (slot `i` for `symbols[i]`) and queues the current
    /// quotes into it, in one step.
    Subscribe {
        symbols: Vec<Symbol>,
        mailbox: Arc<Mailbox>,
        reply: oneshot::Sender<Result<(), Full>>,
    },
    /// How many symbols are tracked (built-in ones included).
    Tracked { reply: oneshot::Sender<usize> },
    /// An upstream fetch finished.
    Fetched {
        symbol: Symbol,
        result: Result<Quote, String>,
    },
    /// Face: quotes (or errors) the cluster's market published.
    Update(Vec<Update>),
    /// Face: the quotes it holds, to seed a new driver.
    Snapshot { reply: oneshot::Sender<Vec<Quote>> },
    /// Driver: what nodes' clients want.
    Want(Wants),
}

/// What a face asks of the driver.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Wants {
    /// Still wanted (polled or streamed since the last tick): keep them
    /// tracked, and refresh upstream ones that are due.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<Symbol>,
    /// Newly wanted: the face has no quote, so publish the current one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub need: Vec<Symbol>,
}

/// A symbol's new quote, or why it has none, as the driver publishes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Update {
    pub symbol: Symbol,
    #[serde(flatten)]
    pub result: UpdateResult,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UpdateResult {
    Quote(Quote),
    Error(String),
}

/// What the owner is in the cluster.
pub(crate) enum Role {
    /// A single node: the owner holds the market itself.
    Local,
    /// Answers this node's clients from the quotes the cluster's driver
    /// publishes, and asks for the symbols its clients want.
    Face { wants: mpsc::Sender<Wants> },
    /// Holds the market for the whole cluster (on the node that leads) and
    /// hands every change to `updates` for publishing; it has no clients.
    Driver {
        updates: mpsc::Sender<Vec<Update>>,
        seed_quotes: Vec<Quote>,
    },
}

/// A face answers a poll without a quote yet with an error after this long.
const FACE_WAIT: Duration = Duration::from_secs(2);

/// Every tracked symbol is in use by a stream or a fetch; nothing can be evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many symbols are being tracked; try again later")]
pub struct Full;

/// The owner's settings, taken from `TickerConfig`.
pub(crate) struct Settings {
    pub poll_ms: u64,
    pub tick: Duration,
    pub seed: u64,
    pub max_symbols: usize,
    pub upstream: Option<UpstreamSettings>,
    pub role: Role,
}

pub(crate) struct UpstreamSettings {
    pub upstream: Upstream,
    pub interval: Duration,
    pub backoff_max: Duration,
    pub max_in_flight: usize,
}

/// Where a symbol's quotes come from.
enum Source {
    Simulated(Box<Series>),
    Upstream(Box<Cached>),
    /// Face: the cluster's driver.
    Remote(Box<Remote>),
}

/// A face's view of one symbol.
#[derive(Default)]
struct Remote {
    quote: Option<Quote>,
    error: Option<String>,
    /// Pollers waiting for the first quote, since when.
    waiters: Vec<oneshot::Sender<Bytes>>,
    waiting_since: Option<Instant>,
    /// Polled since the last tick: asked for again then.
    wanted: bool,
}

/// A symbol's upstream state.
struct Cached {
    quote: Option<Quote>,
    /// The current failure, served until the back-off ends.
    error: Option<String>,
    /// No upstream request for this symbol before this instant.
    next_fetch: Instant,
    backoff: Backoff,
    in_flight: bool,
    /// Pollers waiting on the in-flight fetch.
    waiters: Vec<oneshot::Sender<Bytes>>,
}

struct Subscriber {
    mailbox: Weak<Mailbox>,
    slot: usize,
}

struct Entry {
    source: Source,
    /// Position in the eviction order; `None` for built-in symbols, which are
    /// never evicted.
    stamp: Option<u64>,
    /// The poll body for the current quote, built on first use after a change.
    body: Option<Bytes>,
    /// The price last sent to streams.
    streamed_price: Option<f64>,
    subscribers: Vec<Subscriber>,
}

impl Entry {
    fn new(source: Source, stamp: Option<u64>) -> Entry {
        Entry {
            source,
            stamp,
            body: None,
            streamed_price: None,
            subscribers: Vec::new(),
        }
    }

    fn quote(&self) -> Option<Quote> {
        match &self.source {
            Source::Simulated(s) => Some(s.quote()),
            Source::Upstream(c) => c.quote.clone(),
            Source::Remote(r) => r.quote.clone(),
        }
    }

    fn has_subscribers(&self) -> bool {
        self.subscribers
            .iter()
            .any(|s| s.mailbox.strong_count() > 0)
    }

    /// In use: evicting it would lose a stream's series or a fetch's waiters.
    fn is_busy(&self) -> bool {
        self.has_subscribers() || matches!(&self.source, Source::Upstream(c) if c.in_flight)
    }

    /// The poll body, serialized once per change.
    fn body(&mut self, poll_ms: u64) -> Bytes {
        if let Some(b) = &self.body {
            return b.clone();
        }
        let response = match &self.source {
            Source::Simulated(s) => PollResponse::Quote {
                quote: s.quote(),
                call_in: Some(poll_ms),
            },
            Source::Upstream(c) => cached_response(&c.error, &c.quote, poll_ms),
            Source::Remote(r) => cached_response(&r.error, &r.quote, poll_ms),
        };
        let body = to_bytes(&response);
        self.body = Some(body.clone());
        body
    }
}

/// The poll answer for a quote held from elsewhere (upstream, or the
/// cluster's driver): the quote, the current failure, or "no quote yet".
fn cached_response(error: &Option<String>, quote: &Option<Quote>, poll_ms: u64) -> PollResponse {
    match (error, quote) {
        (None, Some(q)) => PollResponse::Quote {
            quote: q.clone(),
            call_in: Some(poll_ms),
        },
        (Some(e), _) => PollResponse::Error {
            error: e.clone(),
            call_in: Some(ERROR_CALL_IN_MS),
        },
        (None, None) => PollResponse::Error {
            error: "no quote yet".into(),
            call_in: Some(ERROR_CALL_IN_MS),
        },
    }
}

/// An error poll body.
pub(crate) fn error_body(error: &str, call_in: Option<u64>) -> Bytes {
    to_bytes(&PollResponse::Error {
        error: error.to_string(),
        call_in,
    })
}

fn to_bytes(response: &PollResponse) -> Bytes {
    // Serializing these plain structs cannot fail.
    Bytes::from(serde_json::to_vec(response).unwrap_or_default())
}

pub(crate) struct Owner {
    settings: Settings,
    entries: HashMap<Symbol, Entry>,
    /// Evictable symbols, least recently requested first.
    lru: BTreeMap<u64, Symbol>,
    next_stamp: u64,
    next_event_id: u64,
    in_flight: usize,
    /// Every evictable symbol was in use at the last attempt; cleared on the
    /// next tick.
    full: bool,
    /// For fetch tasks to report back; weak so the queue closes when every
    /// handle is gone.
    commands: mpsc::WeakSender<Command>,
}

impl Owner {
    pub(crate) fn new(mut settings: Settings, commands: mpsc::WeakSender<Command>) -> Owner {
        let mut entries = HashMap::new();
        let face = matches!(settings.role, Role::Face { .. });
        if face || settings.upstream.is_none() {
            let now = now_ms();
            for l in LISTINGS {
                if let Ok(symbol) = Symbol::parse(l.symbol) {
                    let source = if face {
                        Source::Remote(Box::default())
                    } else {
                        Source::Simulated(Box::new(Series::new(settings.seed, symbol.clone(), now)))
                    };
                    entries.insert(symbol, Entry::new(source, None));
                }
            }
        }
        let seed_quotes = match &mut settings.role {
            Role::Driver { seed_quotes, .. } => std::mem::take(seed_quotes),
            _ => Vec::new(),
        };
        let mut owner = Owner {
            settings,
            entries,
            lru: BTreeMap::new(),
            next_stamp: 0,
            next_event_id: 1,
            in_flight: 0,
            full: false,
            commands,
        };
        owner.resume(seed_quotes);
        owner
    }

    /// Driver: carries on the market from the quotes the cluster last saw,
    /// so a change of driver does not make prices jump.
    fn resume(&mut self, quotes: Vec<Quote>) {
        let now = now_ms();
        for quote in quotes {
            let Ok(symbol) = Symbol::parse(&quote.symbol) else {
                continue;
            };
            if self.track(&symbol).is_err() {
                break;
            }
            let seed = self.settings.seed;
            let Some(entry) = self.entries.get_mut(&symbol) else {
                continue;
            };
            match &mut entry.source {
                Source::Simulated(series) => {
                    if let Some(resumed) = Series::resume(seed, &quote, now) {
                        **series = resumed;
                    }
                }
                Source::Upstream(cached) => cached.quote = Some(quote),
                Source::Remote(_) => {}
            }
            entry.body = None;
        }
    }

    /// Runs until shutdown or until every handle is gone.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut tick =
            tokio::time::interval_at(Instant::now() + self.settings.tick, self.settings.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.tick(),
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        self.handle(cmd);
                        // Under load, take what is already queued without a
                        // trip through select! per command.
                        for _ in 0..DRAIN_BATCH {
                            match rx.try_recv() {
                                Ok(cmd) => self.handle(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
            }
        }
        tracing::debug!("ticker owner stopped");
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Poll { symbol, reply } => self.poll(symbol, reply),
            Command::Subscribe {
                symbols,
                mailbox,
                reply,
            } => {
                let _ = reply.send(self.subscribe(symbols, mailbox));
            }
            Command::Tracked { reply } => {
                let _ = reply.send(self.entries.len());
            }
            Command::Fetched { symbol, result } => self.fetched(symbol, result),
            Command::Update(updates) => self.apply(updates),
            Command::Snapshot { reply } => {
                let quotes = self.entries.values().filter_map(Entry::quote).collect();
                let _ = reply.send(quotes);
            }
            Command::Want(wants) => self.want(wants),
        }
    }

    /// Face: takes the driver's quotes for the symbols it tracks.
    fn apply(&mut self, updates: Vec<Update>) {
        let poll_ms = self.settings.poll_ms;
        for update in updates {
            let Some(entry) = self.entries.get_mut(&update.symbol) else {
                continue;
            };
            let Source::Remote(remote) = &mut entry.source else {
                continue;
            };
            match update.result {
                UpdateResult::Quote(q) => {
                    remote.quote = Some(q);
                    remote.error = None;
                }
                UpdateResult::Error(e) => remote.error = Some(e),
            }
            remote.waiting_since = None;
            let waiters = std::mem::take(&mut remote.waiters);
            entry.body = None;
            let body = entry.body(poll_ms);
            for w in waiters {
                let _ = w.send(body.clone());
            }
            Self::fan_out(&mut self.next_event_id, entry);
        }
    }

    /// Driver: tracks what faces want, refreshes due upstream symbols and
    /// publishes the current quotes of newly wanted ones.
    fn want(&mut self, wants: Wants) {
        let mut now_known = Vec::new();
        for (symbol, needed) in wants
            .keep
            .into_iter()
            .map(|s| (s, false))
            .chain(wants.need.into_iter().map(|s| (s, true)))
        {
            if self.track(&symbol).is_err() {
                continue;
            }
            let can_fetch = self.can_fetch();
            let Some(entry) = self.entries.get_mut(&symbol) else {
                continue;
            };
            let due = match &entry.source {
                Source::Upstream(c) => !c.in_flight && Instant::now() >= c.next_fetch,
                _ => false,
            };
            if due && can_fetch {
                self.start_fetch(&symbol);
            } else if needed && let Some(update) = Self::update_of(&symbol, entry) {
                now_known.push(update);
            }
        }
        self.publish(now_known);
    }

    /// What a face needs to know of `entry`, if anything is known.
    fn update_of(symbol: &Symbol, entry: &Entry) -> Option<Update> {
        let result = match &entry.source {
            Source::Simulated(s) => UpdateResult::Quote(s.quote()),
            Source::Upstream(c) => match (&c.error, &c.quote) {
                (Some(e), _) => UpdateResult::Error(e.clone()),
                (None, Some(q)) => UpdateResult::Quote(q.clone()),
                (None, None) => return None,
            },
            Source::Remote(_) => return None,
        };
        Some(Update {
            symbol: symbol.clone(),
            result,
        })
    }

    /// Driver: hands `updates` over for publishing.
    fn publish(&self, updates: Vec<Update>) {
        if let Role::Driver { updates: tx, .. } = &self.settings.role
            && !updates.is_empty()
            && tx.try_send(updates).is_err()
        {
            tracing::warn!("ticker updates are not being published fast enough; dropping a batch");
        }
    }

    fn poll(&mut self, symbol: Symbol, reply: oneshot::Sender<Bytes>) {
        if let Err(Full) = self.track(&symbol) {
            crate::metrics::refused("max_symbols");
            let _ = reply.send(error_body(&Full.to_string(), Some(ERROR_CALL_IN_MS)));
            return;
        }
        let poll_ms = self.settings.poll_ms;
        let can_fetch = self.can_fetch();
        let Some(entry) = self.entries.get_mut(&symbol) else {
            return;
        };
        if let Source::Remote(remote) = &mut entry.source {
            remote.wanted = true;
            if remote.quote.is_none() && remote.error.is_none() {
                remote.waiters.push(reply);
                remote.waiting_since.get_or_insert_with(Instant::now);
            } else {
                let _ = reply.send(entry.body(poll_ms));
            }
            return;
        }
        let Source::Upstream(cached) = &mut entry.source else {
            let _ = reply.send(entry.body(poll_ms));
            return;
        };
        if cached.in_flight {
            cached.waiters.push(reply);
            return;
        }
        let fresh = Instant::now() < cached.next_fetch;
        if fresh && (cached.quote.is_some() || cached.error.is_some()) {
            let _ = reply.send(entry.body(poll_ms));
            return;
        }
        if !can_fetch {
            let body = if cached.quote.is_some() || cached.error.is_some() {
                entry.body(poll_ms)
            } else {
                error_body("quote provider busy", Some(ERROR_CALL_IN_MS))
            };
            let _ = reply.send(body);
            return;
        }
        cached.waiters.push(reply);
        if !self.start_fetch(&symbol) {
            self.fetched(symbol, Err("quote provider unavailable".into()));
        }
    }

    /// Makes sure `symbol` is tracked and marks it as just requested.
    fn track(&mut self, symbol: &Symbol) -> Result<(), Full> {
        if let Some(entry) = self.entries.get_mut(symbol) {
            if let Some(old) = entry.stamp {
                let stamp = self.next_stamp;
                self.next_stamp += 1;
                entry.stamp = Some(stamp);
                if let Some(s) = self.lru.remove(&old) {
                    self.lru.insert(stamp, s);
                }
            }
            return Ok(());
        }
        if self.lru.len() >= self.settings.max_symbols {
            self.evict_one()?;
        }
        // Taken after eviction, which re-stamps the symbols it skips.
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let source = match &self.settings.upstream {
            _ if matches!(self.settings.role, Role::Face { .. }) => {
                self.ask(Wants {
                    keep: Vec::new(),
                    need: vec![symbol.clone()],
                });
                Source::Remote(Box::default())
            }
            None => Source::Simulated(Box::new(Series::new(
                self.settings.seed,
                symbol.clone(),
                now_ms(),
            ))),
            Some(u) => Source::Upstream(Box::new(Cached {
                quote: None,
                error: None,
                next_fetch: Instant::now(),
                backoff: Backoff::new(u.interval, u.backoff_max),
                in_flight: false,
                waiters: Vec::new(),
            })),
        };
        self.entries
            .insert(symbol.clone(), Entry::new(source, Some(stamp)));
        self.lru.insert(stamp, symbol.clone());
        Ok(())
    }

    /// Drops the least recently requested symbol that nothing is using.
    /// Symbols skipped because a stream or a fetch uses them move to the back
    /// of the order, so later evictions do not scan them again; when every
    /// symbol is in use, new symbols are refused until the next tick without
    /// another scan.
    fn evict_one(&mut self) -> Result<(), Full> {
        if self.full {
            return Err(Full);
        }
        let mut skipped = Vec::new();
        let mut victim = None;
        while let Some((_, symbol)) = self.lru.pop_first() {
            if self.entries.get(&symbol).is_some_and(Entry::is_busy) {
                skipped.push(symbol);
            } else {
                victim = Some(symbol);
                break;
            }
        }
        for symbol in skipped {
            let stamp = self.next_stamp;
            self.next_stamp += 1;
            if let Some(e) = self.entries.get_mut(&symbol) {
                e.stamp = Some(stamp);
            }
            self.lru.insert(stamp, symbol);
        }
        match victim {
            Some(symbol) => {
                tracing::debug!(%symbol, "evicting ticker symbol");
                self.entries.remove(&symbol);
                Ok(())
            }
            None => {
                self.full = true;
                Err(Full)
            }
        }
    }

    fn subscribe(&mut self, symbols: Vec<Symbol>, mailbox: Arc<Mailbox>) -> Result<(), Full> {
        for (slot, symbol) in symbols.iter().enumerate() {
            self.track(symbol)?;
            let Some(entry) = self.entries.get_mut(symbol) else {
                continue;
            };
            entry.subscribers.retain(|s| s.mailbox.strong_count() > 0);
            entry.subscribers.push(Subscriber {
                mailbox: Arc::downgrade(&mailbox),
                slot,
            });
            if let Some(quote) = entry.quote() {
                // Earlier subscribers already have this price (every change
                // is fanned out), so it is now what every stream last saw.
                entry.streamed_price = Some(quote.latest_price);
                let id = self.next_event_id;
                self.next_event_id += 1;
                mailbox.put(slot, id, encode_quote_event(id, &quote));
            }
        }
        // Upstream symbols without a quote yet are fetched on the next tick.
        Ok(())
    }

    fn can_fetch(&self) -> bool {
        self.settings
            .upstream
            .as_ref()
            .is_some_and(|u| self.in_flight < u.max_in_flight)
    }

    /// Starts one upstream request for `symbol`; its result comes back as
    /// [`Command::Fetched`]. False when none could be started.
    fn start_fetch(&mut self, symbol: &Symbol) -> bool {
        let Some(u) = &self.settings.upstream else {
            return false;
        };
        let Some(Source::Upstream(cached)) = self.entries.get_mut(symbol).map(|e| &mut e.source)
        else {
            return false;
        };
        let Some(commands) = self.commands.upgrade() else {
            return false;
        };
        cached.in_flight = true;
        // The minimum spacing counts from the start of each request.
        cached.next_fetch = Instant::now() + u.interval;
        self.in_flight += 1;
        let upstream = u.upstream.clone();
        let symbol = symbol.clone();
        tokio::spawn(async move {
            let result = upstream.fetch(&symbol).await;
            if let Err(e) = &result {
                tracing::info!(%symbol, error = %e, "upstream quote failed");
            }
            let _ = commands.send(Command::Fetched { symbol, result }).await;
        });
        true
    }

    fn fetched(&mut self, symbol: Symbol, result: Result<Quote, String>) {
        let poll_ms = self.settings.poll_ms;
        let Some(entry) = self.entries.get_mut(&symbol) else {
            return;
        };
        let Source::Upstream(cached) = &mut entry.source else {
            return;
        };
        if cached.in_flight {
            cached.in_flight = false;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        match result {
            Ok(quote) => {
                cached.backoff.reset();
                cached.error = None;
                cached.quote = Some(quote);
            }
            Err(e) => {
                let wait = cached.backoff.failed();
                cached.next_fetch = cached.next_fetch.max(Instant::now() + wait);
                cached.error = Some(e);
            }
        }
        let waiters = std::mem::take(&mut cached.waiters);
        entry.body = None;
        let body = entry.body(poll_ms);
        for w in waiters {
            let _ = w.send(body.clone());
        }
        Self::fan_out(&mut self.next_event_id, entry);
        let update = Self::update_of(&symbol, entry);
        self.publish(update.into_iter().collect());
    }

    /// Face: asks the driver (dropped if the queue is full: the next tick
    /// asks again).
    fn ask(&self, wants: Wants) {
        if let Role::Face { wants: tx } = &self.settings.role {
            let _ = tx.try_send(wants);
        }
    }

    /// Sends the entry's quote to its subscribers if the price changed since
    /// they last heard; the event is encoded once for all of them.
    fn fan_out(next_event_id: &mut u64, entry: &mut Entry) {
        entry.subscribers.retain(|s| s.mailbox.strong_count() > 0);
        if entry.subscribers.is_empty() {
            entry.streamed_price = None;
            return;
        }
        let Some(quote) = entry.quote() else {
            return;
        };
        if entry.streamed_price == Some(quote.latest_price) {
            return;
        }
        entry.streamed_price = Some(quote.latest_price);
        let id = *next_event_id;
        *next_event_id += 1;
        let event = encode_quote_event(id, &quote);
        for s in &entry.subscribers {
            if let Some(m) = s.mailbox.upgrade() {
                m.put(s.slot, id, event.clone());
            }
        }
    }

    /// One beat of the server's clock: the simulated market moves a minute;
    /// upstream symbols that streams watch are refreshed when due.
    fn tick(&mut self) {
        self.full = false;
        let now = now_ms();
        let mut due = Vec::new();
        let mut keep = Vec::new();
        let mut stepped = Vec::new();
        let driver = matches!(self.settings.role, Role::Driver { .. });
        for (symbol, entry) in &mut self.entries {
            match &mut entry.source {
                Source::Simulated(series) => {
                    series.step(now);
                    if driver {
                        stepped.push(Update {
                            symbol: symbol.clone(),
                            result: UpdateResult::Quote(series.quote()),
                        });
                    }
                    entry.body = None;
                    Self::fan_out(&mut self.next_event_id, entry);
                }
                Source::Remote(remote) => {
                    let streamed = entry
                        .subscribers
                        .iter()
                        .any(|s| s.mailbox.strong_count() > 0);
                    if std::mem::take(&mut remote.wanted) || streamed {
                        keep.push(symbol.clone());
                    }
                    if remote
                        .waiting_since
                        .is_some_and(|since| since.elapsed() >= FACE_WAIT)
                    {
                        remote.waiting_since = None;
                        let body = error_body("no quote yet", Some(ERROR_CALL_IN_MS));
                        for w in remote.waiters.drain(..) {
                            let _ = w.send(body.clone());
                        }
                    }
                }
                Source::Upstream(cached) => {
                    if !cached.in_flight
                        && Instant::now() >= cached.next_fetch
                        && entry
                            .subscribers
                            .iter()
                            .any(|s| s.mailbox.strong_count() > 0)
                    {
                        due.push(symbol.clone());
                    }
                }
            }
        }
        for symbol in due {
            if !self.can_fetch() {
                break;
            }
            if !self.start_fetch(&symbol) {
                break;
            }
        }
        self.publish(stepped);
        if !keep.is_empty() {
            self.ask(Wants {
                keep,
                need: Vec::new(),
            });
        }
    }
}

/// `event: quote`, the id, and the quote JSON as data.
fn encode_quote_event(id: u64, quote: &Quote) -> Bytes {
    let json = serde_json::to_string(quote).unwrap_or_default();
    sse::encode_event(Some(STREAM_EVENT), Some(&id.to_string()), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn owner(max_symbols: usize) -> Owner {
        let (tx, _rx) = mpsc::channel(1);
        Owner::new(
            Settings {
                poll_ms: 5000,
                tick: Duration::from_secs(1),
                seed: 1,
                max_symbols,
                upstream: None,
                role: Role::Local,
            },
            tx.downgrade(),
        )
    }

    fn poll(o: &mut Owner, s: &str) -> serde_json::Value {
        let (tx, mut rx) = oneshot::channel();
        o.poll(sym(s), tx);
        serde_json::from_slice(&rx.try_recv().expect("answered at once")).unwrap()
    }

    #[test]
    fn tracked_symbols_are_bounded_and_least_recently_requested_go_first() {
        let mut o = owner(2);
        let builtin = o.entries.len();
        poll(&mut o, "AAA");
        poll(&mut o, "BBB");
        poll(&mut o, "AAA");
        poll(&mut o, "CCC");
        assert_eq!(o.entries.len(), builtin + 2);
        assert!(o.entries.contains_key(&sym("AAA")));
        assert!(!o.entries.contains_key(&sym("BBB")));
        assert!(o.entries.contains_key(&sym("CCC")));
        // Built-in symbols never count against the bound nor get evicted.
        poll(&mut o, "IBM");
        assert_eq!(o.entries.len(), builtin + 2);
    }

    #[test]
    fn symbols_with_live_streams_are_not_evicted() {
        let mut o = owner(1);
        let mailbox = Arc::new(Mailbox::new(1));
        o.subscribe(vec![sym("AAA")], mailbox.clone()).unwrap();
        let v = poll(&mut o, "BBB");
        assert_eq!(v["callIn"], ERROR_CALL_IN_MS);
        assert!(v["error"].as_str().unwrap().contains("too many symbols"));
        drop(mailbox);
        // Refused without another look until the next tick.
        assert!(poll(&mut o, "BBB")["error"].is_string());
        o.tick();
        let v = poll(&mut o, "BBB");
        assert_eq!(v["quote"]["symbol"], "BBB");
        assert!(!o.entries.contains_key(&sym("AAA")));
    }

    #[test]
    fn streamed_symbols_survive_eviction_and_idle_ones_go() {
        let mut o = owner(2);
        let mailbox = Arc::new(Mailbox::new(1));
        o.subscribe(vec![sym("AAA")], mailbox.clone()).unwrap();
        for s in ["BBB", "CCC", "DDD", "EEE"] {
            assert_eq!(poll(&mut o, s)["quote"]["symbol"], s);
            assert!(o.entries.contains_key(&sym("AAA")));
            assert_eq!(o.lru.len(), 2);
        }
        assert!(o.entries.contains_key(&sym("EEE")));
        assert!(!o.entries.contains_key(&sym("DDD")));
    }

    #[test]
    fn poll_bodies_are_built_once_per_tick() {
        let mut o = owner(10);
        let a = poll(&mut o, "IBM");
        let body = o.entries[&sym("IBM")].body.clone().unwrap();
        assert_eq!(poll(&mut o, "IBM"), a);
        // Same allocation: the second poll was a lookup.
        let (tx, mut rx) = oneshot::channel();
        o.poll(sym("IBM"), tx);
        assert_eq!(rx.try_recv().unwrap().as_ptr(), body.as_ptr());
        o.tick();
        assert!(o.entries[&sym("IBM")].body.is_none());
    }

    #[test]
    fn subscribers_get_a_snapshot_then_changes_with_increasing_ids() {
        let mut o = owner(10);
        let m = Arc::new(Mailbox::new(2));
        o.subscribe(vec![sym("IBM"), sym("XYZ")], m.clone())
            .unwrap();
        let first = m.take();
        assert_eq!(first.len(), 2);
        assert!(first[0].0 < first[1].0);
        let mut last = first[1].0;
        for _ in 0..20 {
            o.tick();
            for (id, bytes) in m.take() {
                assert!(id > last);
                last = id;
                let text = std::str::from_utf8(&bytes).unwrap();
                assert!(text.starts_with("event: quote\nid: "));
            }
        }
        assert!(last > first[1].0 + 10, "prices changed on most ticks");
    }
}
