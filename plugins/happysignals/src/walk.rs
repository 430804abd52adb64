//! One sync: a fixed time window read page by page, that notices when the
//! source's pages shift under it and reads again instead of skipping.
//!
//! HappySignals pages by number (`page=1, 2, ...`) and lists newest first
//! by default. Page numbers are positions in a list that changes while it is
//! read: a response submitted between two requests pushes every later one
//! a place down (one read twice), a response removed (anonymised, deleted on
//! request) pulls them a place up (one never read). Field case
//! `08-happysignals-paging.json`: a client trusting page order and a
//! watermark stored 1 of 4 responses, for good.
//!
//! So a sync:
//!
//! - reads one window, `created__gte=<done>&created__lt=<sync start>`, with
//!   the end fixed for the whole sync: responses submitted meanwhile are
//!   outside it (read by the next sync), and items outside it are dropped
//!   here too, in case the source ignores the filter;
//! - asks for `ordering=created,id` and checks the order it gets (oldest
//!   first, or newest first if the source ignores `ordering`);
//! - remembers the last response read in that order and reads only what
//!   comes after it, so nothing is read twice;
//! - treats as a shift a `meta.count` that differs from the pass's first
//!   page, a page that overlaps what was read (its first response is not
//!   after the last one read), or a 404 for a page the last answer
//!   promised. The shifted page is dropped (the response pulled out of it
//!   is behind its first item) and a new pass starts at page 1 of the
//!   window narrowed to what is not read yet: from the last response read
//!   on when oldest first, up to it when newest first;
//! - ends when a pass reaches its last page unshifted: `done` becomes the
//!   window's end. After [`MAX_PASSES`] shifted passes in a row the sync ends
//!   without moving `done` (what was read is kept; the next sync reads the
//!   window again), with a warning. A pass that reads something new resets
//!   that count: under steady churn every pass still reads its first page.
//!
//! A removal the count cannot show (a response removed while another is
//! added inside the window, which a closed window prevents) is not seen.

use crate::api;
use crate::config::Config;
use crate::cursor::{Cursor, Mark, Order, Walk};
use crate::response::Response;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use xla_sdk::PluginError;
use xla_sdk::time::{format_rfc3339_utc, parse_rfc3339_utc};

/// Passes in a row that may start over after a shift without reading
/// anything new (a source that changes faster than it can be read).
pub const MAX_PASSES: u32 = 8;
/// How far behind the wall clock a window ends: a response is visible in
/// the API a moment after its `created`, and the source's clock may run
/// behind ours; responses of the last two minutes are read next time.
pub const LAG_MS: i64 = 2 * 60 * 1000;

/// What one pull read and where the walk stands.
pub struct Step {
    /// Responses to emit, each once per sync.
    pub items: Vec<Map<String, Value>>,
    /// The cursor to hand back.
    pub cursor: Cursor,
    /// Whether the walk goes on.
    pub more: bool,
}

/// A response's place in the walk: `created` (unix ms), then `id`.
#[derive(Clone)]
struct Key {
    created: i64,
    created_text: String,
    id: String,
}

impl Key {
    fn of(fields: &Map<String, Value>, position: usize) -> Result<Key, PluginError> {
        let response = Response::new(fields, position);
        Ok(Key {
            created: response.created()?,
            created_text: response.text("created").into_owned(),
            id: response.id()?,
        })
    }

    fn from_mark(mark: &Mark) -> Key {
        Key {
            created: parse_rfc3339_utc(&mark.created).unwrap_or_default(),
            created_text: mark.created.clone(),
            id: mark.id.clone(),
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            created: self.created_text.clone(),
            id: self.id.clone(),
        }
    }
}

/// Reads the next page of the sync in `cursor`, or starts one as of
/// `now_ms` (unix ms).
pub fn step(config: &Config, mut cursor: Cursor, now_ms: i64) -> Result<Step, PluginError> {
    let walk = match cursor.walk.take() {
        Some(walk) if walk.page_size == config.page_size => walk,
        // Page numbers of another page size mean other responses: start the
        // window again (what was read is skipped by the store as unchanged).
        _ => fresh(config, &cursor, now_ms),
    };
    let from = walk.from.as_deref().and_then(parse_rfc3339_utc);
    let until = parse_rfc3339_utc(&walk.until).unwrap_or(i64::MIN);
    if from.is_some_and(|from| from >= until) {
        // Nothing can be in the window (a clock that went back).
        return Ok(Step {
            items: Vec::new(),
            cursor,
            more: false,
        });
    }
    let request = api::page_request(config, walk.from.as_deref(), &walk.until, walk.page)?;
    let page = if walk.page > 1 {
        match api::fetch_unless_gone(request)? {
            Some(page) => page,
            None => {
                let why = format!("page {} is gone (404)", walk.page);
                return Ok(start_over(cursor, walk, &why));
            }
        }
    } else {
        api::fetch(request)?
    };
    read_page(cursor, walk, page, (from, until))
}

/// A new walk over `[done or since, now - LAG_MS)`.
fn fresh(config: &Config, cursor: &Cursor, now_ms: i64) -> Walk {
    let end = format_rfc3339_utc((now_ms - LAG_MS).div_euclid(1000) * 1000);
    Walk {
        from: cursor.done.clone().or_else(|| config.since.clone()),
        until: end.clone(),
        end,
        page: 1,
        page_size: config.page_size,
        count: None,
        order: None,
        last: None,
        ties: Vec::new(),
        tail: None,
        passes: 0,
    }
}

/// Takes in one page: the responses after the last one read, or a new pass
/// if the page shifted.
fn read_page(
    mut cursor: Cursor,
    mut walk: Walk,
    page: api::Page,
    (from, until): (Option<i64>, i64),
) -> Result<Step, PluginError> {
    let keys = page
        .items
        .iter()
        .enumerate()
        .map(|(i, fields)| Key::of(fields, i))
        .collect::<Result<Vec<Key>, PluginError>>()?;
    // Only responses inside the window count: a source that ignores the
    // filter also lists those submitted since the sync started.
    let inside: Vec<usize> = (0..keys.len())
        .filter(|&i| from.is_none_or(|from| keys[i].created >= from) && keys[i].created < until)
        .collect();
    let order = order_of(inside.iter().map(|&i| &keys[i]))?;
    let last = walk.last.as_ref().map(Key::from_mark);
    let tail = walk.tail.as_ref().map(Key::from_mark);
    if let Some(why) = shift(&walk, &page, order, inside.first().map(|&i| &keys[i]), tail.as_ref()) {
        return Ok(start_over(cursor, walk, &why));
    }
    walk.order = walk.order.or(order).or_else(|| {
        // Two pages of one response each show the order between them.
        let (tail, first) = (tail.as_ref()?, &keys[*inside.first()?]);
        match first.created.cmp(&tail.created) {
            Ordering::Greater => Some(Order::Asc),
            Ordering::Less => Some(Order::Desc),
            Ordering::Equal => None,
        }
    });
    walk.count = walk.count.or(page.count);
    let mut items = Vec::new();
    let mut newest_read = last;
    let mut ties = std::mem::take(&mut walk.ties);
    for &i in &inside {
        if newest_read
            .as_ref()
            .is_some_and(|l| !after(&keys[i], l, &ties, walk.order))
        {
            continue;
        }
        items.push(page.items[i].clone());
        if newest_read.as_ref().is_none_or(|l| l.created != keys[i].created) {
            ties.clear();
        }
        ties.push(keys[i].id.clone());
        newest_read = Some(keys[i].clone());
    }
    walk.last = newest_read.map(|k| k.mark());
    walk.ties = ties;
    if !items.is_empty() {
        // Progress: only passes that read nothing new count towards the bound.
        walk.passes = 0;
    }
    if let Some(&i) = inside.last() {
        walk.tail = Some(keys[i].mark());
    }
    let more = !page.items.is_empty() && page.page < page.pages;
    if more {
        walk.page = walk.page.saturating_add(1);
        cursor.walk = Some(walk);
    } else {
        cursor.done = Some(walk.end);
    }
    Ok(Step { items, cursor, more })
}

/// Whether `key` comes after `last` in the walk's order. Responses of the
/// same `created` may come in either `id` order (a source ordering by
/// `-created` alone): one of them is after unless it is `last` or one of
/// `ties`, those of that second already read. In unknown order: differs.
fn after(key: &Key, last: &Key, ties: &[String], order: Option<Order>) -> bool {
    if key.created == last.created {
        return key.id != last.id && !ties.contains(&key.id);
    }
    match order {
        Some(Order::Asc) => key.created > last.created,
        Some(Order::Desc) => key.created < last.created,
        None => true,
    }
}

/// The order of one page's responses by `created`: `None` without two
/// different times; an error when they are in no order, which no paging can
/// walk safely. Responses of the same second may come in either `id` order.
fn order_of<'a>(keys: impl Iterator<Item = &'a Key>) -> Result<Option<Order>, PluginError> {
    let keys: Vec<&Key> = keys.collect();
    let mut order = None;
    for pair in keys.windows(2) {
        let step = match pair[1].created.cmp(&pair[0].created) {
            Ordering::Greater => Order::Asc,
            Ordering::Less => Order::Desc,
            Ordering::Equal if pair[0].id == pair[1].id => {
                return Err(PluginError::BadData(format!(
                    "response `{}` is listed twice on one page",
                    pair[0].id
                )));
            }
            Ordering::Equal => continue,
        };
        if order.is_some_and(|o| o != step) {
            return Err(PluginError::Permanent(format!(
                "HappySignals listed responses in no `created` order (`{}` then `{}`); the connector can page \
                 only an ordered list: report this to HappySignals support",
                pair[0].id, pair[1].id
            )));
        }
        order = Some(step);
    }
    Ok(order)
}

/// Why the page shows the list shifted since the pass began, if it does:
/// another count, another order, or a first response not after the
/// previous page's last (`tail`).
fn shift(
    walk: &Walk,
    page: &api::Page,
    order: Option<Order>,
    first: Option<&Key>,
    tail: Option<&Key>,
) -> Option<String> {
    if let (Some(was), Some(now)) = (walk.count, page.count)
        && was != now
    {
        return Some(format!("the count went from {was} to {now}"));
    }
    if let (Some(was), Some(now)) = (walk.order, order)
        && was != now
    {
        return Some("the order changed".into());
    }
    let (first, tail) = (first?, tail?);
    (walk.page > 1 && !after(first, tail, &[], walk.order.or(order)))
        .then(|| format!("page {} begins with `{}`, read before", walk.page, first.id))
}

/// A new pass from page 1 over what is not read yet, or, past
/// [`MAX_PASSES`] passes in a row without progress, the end of this sync
/// without moving `done`.
fn start_over(mut cursor: Cursor, mut walk: Walk, why: &str) -> Step {
    walk.passes += 1;
    if walk.passes > MAX_PASSES {
        xla_sdk::log::warn(&format!(
            "HappySignals responses kept changing while they were read ({why}, {MAX_PASSES} times); what was read \
             is kept and the next sync reads the window from {} again",
            walk.from.as_deref().unwrap_or("the start")
        ));
        return Step {
            items: Vec::new(),
            cursor,
            more: false,
        };
    }
    match (walk.order, &walk.last) {
        (Some(Order::Asc), Some(last)) => walk.from = Some(last.created.clone()),
        (Some(Order::Desc), Some(last)) => {
            let through = parse_rfc3339_utc(&last.created).map_or(i64::MAX, |t| t.div_euclid(1000) * 1000 + 1000);
            if through < parse_rfc3339_utc(&walk.until).unwrap_or(i64::MAX) {
                walk.until = format_rfc3339_utc(through);
            }
        }
        _ => {}
    }
    xla_sdk::log::info(&format!(
        "HappySignals responses changed while they were read ({why}); reading again from page 1 of [{}, {})",
        walk.from.as_deref().unwrap_or("the start"),
        walk.until
    ));
    walk.page = 1;
    walk.count = None;
    walk.tail = None;
    cursor.walk = Some(walk);
    Step {
        items: Vec::new(),
        cursor,
        more: true,
    }
}
