//! Paging: lists answer a page of items, the total, and a cursor for the
//! next page (opaque to callers: pass it back as `cursor`).

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Largest page a caller may ask for.
pub const MAX_LIMIT: usize = 500;

/// A page size asked for: 1 to [`MAX_LIMIT`], 50 when not given.
///
/// # Errors
/// [`ApiError::BadRequest`] for 0 or more than [`MAX_LIMIT`].
pub fn limit(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked {
        None => Ok(50),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit {n} is out of range: use 1 to {MAX_LIMIT}"
        ))),
    }
}

/// The number in a cursor this API handed out: `prefix` then 1 to
/// `digits` ASCII digits (the documented pattern, exactly).
///
/// # Errors
/// [`ApiError::BadRequest`] for anything else.
pub fn cursor_number<N: std::str::FromStr>(cursor: &str, prefix: char, digits: usize) -> Result<N, ApiError> {
    cursor
        .strip_prefix(prefix)
        .filter(|n| (1..=digits).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cursor `{}` is not one this API handed out; pass a page's `next`",
                xla_types::untrusted::escape_capped(cursor, 64)
            ))
        })
}

/// `?limit=&cursor=`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Where the previous page ended (its `next`).
    #[param(pattern = "^o[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: usize,
    /// The cursor of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl PageQuery {
    /// The page size, checked.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for 0 or more than [`MAX_LIMIT`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        limit(self.limit)
    }

    /// The position the cursor names (an offset into the list).
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for a cursor this API did not hand out.
    pub fn offset(&self) -> Result<usize, ApiError> {
        match &self.cursor {
            None => Ok(0),
            Some(c) => cursor_number(c, 'o', 18),
        }
    }

    /// The page of `all` this query asks for.
    ///
    /// # Errors
    /// A bad limit or cursor.
    pub fn page<T>(&self, all: Vec<T>) -> Result<Page<T>, ApiError> {
        let (limit, offset) = (self.limit()?, self.offset()?);
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(offset).take(limit).collect();
        let end = offset.saturating_add(items.len());
        Ok(Page {
            items,
            total,
            next: (end < total).then(|| format!("o{end}")),
        })
    }
}
