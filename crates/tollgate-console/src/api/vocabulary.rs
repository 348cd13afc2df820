//! The words of the usage API's queries, published as OpenAPI enums (`Grouping`, `SortOrder`,
//! `Bucket`, `ExportFormat`, `ExportDataset`, `AuditFormat`) so that clients read the value sets
//! from the document instead of restating them. `Role` and `RouteKind` come from `tollgate-core`.
//!
//! Each enum parses from the same lowercase words it serialises to, with a message naming the
//! accepted values, for callers (the CLI) that hold the word as text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tollgate_store::{AggregateOrder, Grouping as StoreGrouping};
use utoipa::ToSchema;

/// Declares a wire enum: its variants with their words, `as_str`, `Display` and `FromStr`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        // `rename_all` rather than a rename per variant: the schema derive does not see renames
        // that come through a macro fragment. A test checks that the words agree.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the document's order.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            /// The word on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let words: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!("{} `{s}` is not {}", $what, one_of(&words))
                    })
            }
        }
    };
}

/// `a, b or c`.
fn one_of(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => String::new(),
    }
}

wire_enum! {
    /// What a top-N, breakdown or `top` export groups usage by (`by`).
    Grouping, "by" {
        /// Per API key.
        Key = "key",
        /// Per route.
        Route = "route",
        /// Per model.
        Model = "model",
        /// Per team.
        Team = "team",
        /// Per status class (2xx … 5xx).
        StatusClass = "status_class",
    }
}

impl From<Grouping> for StoreGrouping {
    fn from(g: Grouping) -> Self {
        match g {
            Grouping::Key => Self::Key,
            Grouping::Route => Self::Route,
            Grouping::Model => Self::Model,
            Grouping::Team => Self::Team,
            Grouping::StatusClass => Self::StatusClass,
        }
    }
}

wire_enum! {
    /// What a top-N is ordered by, largest first (`order`).
    SortOrder, "order" {
        /// Calls.
        Calls = "calls",
        /// Total tokens.
        Tokens = "tokens",
    }
}

impl From<SortOrder> for AggregateOrder {
    fn from(o: SortOrder) -> Self {
        match o {
            SortOrder::Calls => Self::CallsDesc,
            SortOrder::Tokens => Self::TokensDesc,
        }
    }
}

wire_enum! {
    /// The width of a series' points (`bucket`).
    Bucket, "bucket" {
        /// One point per hour (ranges up to 7 days).
        Hour = "hour",
        /// One point per UTC day.
        Day = "day",
    }
}

impl From<Bucket> for StoreGrouping {
    fn from(b: Bucket) -> Self {
        match b {
            Bucket::Hour => Self::Hour,
            Bucket::Day => Self::Day,
        }
    }
}

wire_enum! {
    /// The file format of a usage export (`format`).
    ExportFormat, "format" {
        /// RFC 4180 CSV with a header row.
        Csv = "csv",
        /// One JSON array.
        Json = "json",
        /// One JSON object per line.
        Ndjson = "ndjson",
    }
}

wire_enum! {
    /// What a usage export holds (`dataset`).
    ExportDataset, "dataset" {
        /// Every matching call, streamed.
        Events = "events",
        /// A series of hourly or daily totals.
        Series = "series",
        /// A top-N by `by`.
        Top = "top",
    }
}

wire_enum! {
    /// The answer format of the audit log (`format`).
    AuditFormat, "format" {
        /// A JSON page.
        Json = "json",
        /// The whole filtered log as CSV, streamed.
        Csv = "csv",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_agree<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize,
        <T as FromStr>::Err: fmt::Debug,
    {
        for v in all {
            assert_eq!(v.to_string().parse::<T>().ok(), Some(*v));
            assert_eq!(
                serde_json::to_value(v).ok(),
                Some(serde_json::Value::String(v.to_string()))
            );
        }
    }

    #[test]
    fn words_round_trip_and_refusals_name_the_choices() {
        words_agree(Grouping::ALL);
        words_agree(SortOrder::ALL);
        words_agree(Bucket::ALL);
        words_agree(ExportFormat::ALL);
        words_agree(ExportDataset::ALL);
        words_agree(AuditFormat::ALL);
        assert_eq!(
            "colour".parse::<Grouping>().unwrap_err(),
            "by `colour` is not key, route, model, team or status_class"
        );
        assert_eq!(
            "xml".parse::<ExportFormat>().unwrap_err(),
            "format `xml` is not csv, json or ndjson"
        );
        assert_eq!(
            "week".parse::<Bucket>().unwrap_err(),
            "bucket `week` is not hour or day"
        );
        assert_eq!(
            "cost".parse::<SortOrder>().unwrap_err(),
            "order `cost` is not calls or tokens"
        );
        assert_eq!(
            "pdf".parse::<AuditFormat>().unwrap_err(),
            "format `pdf` is not json or csv"
        );
    }

    #[test]
    fn wire_words_map_to_the_store() {
        assert_eq!(
            StoreGrouping::from(Grouping::StatusClass),
            StoreGrouping::StatusClass
        );
        assert_eq!(StoreGrouping::from(Bucket::Day), StoreGrouping::Day);
        assert_eq!(
            AggregateOrder::from(SortOrder::Tokens),
            AggregateOrder::TokensDesc
        );
    }
}
