//! The limit model: validation names the field, serde shapes, periods, the model allow-list.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use tollgate_limits::{
    Enforcement, Limit, LimitKind, ModelAllowList, Period, Scope, Window, parse_usd, period_bounds,
    time_zone,
};

fn limit(kind: LimitKind) -> Limit {
    Limit {
        id: 1,
        scope: Scope::Key(7),
        kind,
        enforcement: Enforcement::Hard,
        alert_at: vec![100, 80, 80],
        include_reported: false,
    }
}

fn field_of(l: Limit) -> String {
    match l.validated() {
        Ok(l) => panic!("{l:?} should be refused"),
        Err(e) => e.field,
    }
}

#[test]
fn zero_or_negative_maxima_are_refused_naming_the_field() {
    assert_eq!(
        field_of(limit(LimitKind::Requests {
            per: Window::Minute,
            max: 0
        })),
        "kind.max"
    );
    assert_eq!(
        field_of(limit(LimitKind::TokensPerMinute { max: 0 })),
        "kind.max"
    );
    assert_eq!(
        field_of(limit(LimitKind::Concurrency { max: 0 })),
        "kind.max"
    );
    assert_eq!(
        field_of(limit(LimitKind::TokenBudget {
            max: 0,
            period: Period::Day
        })),
        "kind.max"
    );
    assert_eq!(
        field_of(limit(LimitKind::CostBudget {
            max_micro_usd: -5,
            period: Period::Month
        })),
        "kind.max_micro_usd"
    );
    assert_eq!(
        field_of(limit(LimitKind::Requests {
            per: Window::Hour,
            max: u64::MAX
        })),
        "kind.max"
    );
}

#[test]
fn scope_ids_thresholds_and_include_reported_are_checked() {
    let mut l = limit(LimitKind::Concurrency { max: 3 });
    l.scope = Scope::Team(0);
    assert_eq!(field_of(l), "scope.id");

    let mut l = limit(LimitKind::Concurrency { max: 3 });
    l.alert_at = vec![0];
    assert_eq!(field_of(l), "alert_at");
    let mut l = limit(LimitKind::Concurrency { max: 3 });
    l.alert_at = vec![1001];
    assert_eq!(field_of(l), "alert_at");

    let mut l = limit(LimitKind::Concurrency { max: 3 });
    l.include_reported = true;
    assert_eq!(field_of(l), "include_reported");

    let mut l = limit(LimitKind::Concurrency { max: 3 });
    l.id = 0;
    assert_eq!(field_of(l), "id");
}

#[test]
fn thresholds_are_sorted_and_deduplicated() {
    let l = limit(LimitKind::TokenBudget {
        max: 10,
        period: Period::Week,
    })
    .validated()
    .expect("valid");
    assert_eq!(l.alert_at, vec![80, 100]);
}

#[test]
fn unknown_windows_periods_and_enforcements_name_their_field() {
    let e = "0".parse::<Window>().expect_err("a window of 0");
    assert_eq!(e.field, "kind.per");
    let e = "fortnight".parse::<Period>().expect_err("unknown period");
    assert_eq!(e.field, "kind.period");
    assert!(e.message.contains("fortnight"), "{e}");
    let e = "maybe"
        .parse::<Enforcement>()
        .expect_err("unknown enforcement");
    assert_eq!(e.field, "enforcement");
    assert_eq!("week".parse::<Period>().expect("week"), Period::Week);
    assert_eq!("minute".parse::<Window>().expect("minute"), Window::Minute);
}

#[test]
fn json_shape_round_trips_with_defaults() {
    let json = r#"{"id":3,"scope":{"type":"team","id":5},
        "kind":{"type":"cost_budget","max_micro_usd":2500000,"period":"month"}}"#;
    let l: Limit = serde_json::from_str(json).expect("parses");
    assert_eq!(l.scope, Scope::Team(5));
    assert_eq!(
        l.kind,
        LimitKind::CostBudget {
            max_micro_usd: 2_500_000,
            period: Period::Month
        }
    );
    assert_eq!(l.enforcement, Enforcement::Hard);
    assert_eq!(l.alert_at, vec![80, 100]);
    assert!(!l.include_reported);
    let back: Limit =
        serde_json::from_str(&serde_json::to_string(&l).expect("serializes")).expect("parses");
    assert_eq!(back, l);

    let inst: Scope = serde_json::from_str(r#"{"type":"instance"}"#).expect("instance");
    assert_eq!(inst, Scope::Instance);

    let bad =
        r#"{"id":3,"scope":{"type":"instance"},"kind":{"type":"requests","per":"day","max":1}}"#;
    let err = serde_json::from_str::<Limit>(bad).expect_err("day is no window");
    assert!(err.to_string().contains("day"), "{err}");
    let bad = r#"{"id":3,"scope":{"type":"instance"},"kind":{"type":"token_budget","max":-1,"period":"day"}}"#;
    assert!(serde_json::from_str::<Limit>(bad).is_err());
}

#[test]
fn dollars_parse_exactly_to_micro_usd() {
    assert_eq!(parse_usd("cost_usd", "12.50").expect("ok"), 12_500_000);
    assert_eq!(parse_usd("cost_usd", "0.000001").expect("ok"), 1);
    assert_eq!(parse_usd("cost_usd", "$3").expect("ok"), 3_000_000);
    assert_eq!(parse_usd("cost_usd", ".5").expect("ok"), 500_000);
    for bad in ["", "0", "-1", "1.0000001", "1e3", "abc", "1.2.3"] {
        let e = parse_usd("cost_usd", bad).expect_err(bad);
        assert_eq!(e.field, "cost_usd", "{bad}");
    }
}

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .expect("timestamp")
        .as_millisecond()
}

#[test]
fn calendar_periods_follow_the_time_zone() {
    let utc = time_zone("time_zone", "UTC").expect("utc");
    let tokyo = time_zone("time_zone", "Asia/Tokyo").expect("tokyo");
    // 2026-03-31 23:30 UTC is 2026-04-01 08:30 in Tokyo.
    let now = ms("2026-03-31T23:30:00Z");
    assert_eq!(
        period_bounds(Period::Day, &utc, now),
        (ms("2026-03-31T00:00:00Z"), Some(ms("2026-04-01T00:00:00Z")))
    );
    assert_eq!(
        period_bounds(Period::Month, &tokyo, now),
        (ms("2026-03-31T15:00:00Z"), Some(ms("2026-04-30T15:00:00Z")))
    );
    // Weeks start on Monday: 2026-04-01 is a Wednesday.
    assert_eq!(
        period_bounds(Period::Week, &tokyo, now),
        (ms("2026-03-29T15:00:00Z"), Some(ms("2026-04-05T15:00:00Z")))
    );
    assert_eq!(period_bounds(Period::Total, &tokyo, now), (0, None));
}

#[test]
fn a_day_with_a_clock_change_is_23_hours_long() {
    let paris = time_zone("time_zone", "Europe/Paris").expect("paris");
    let (start, end) = period_bounds(Period::Day, &paris, ms("2026-03-29T12:00:00Z"));
    assert_eq!(start, ms("2026-03-28T23:00:00Z"));
    assert_eq!(end, Some(ms("2026-03-29T22:00:00Z")));
}

#[test]
fn unknown_time_zones_name_the_field() {
    let e = time_zone("limits.time_zone", "Mars/Olympus").expect_err("no such zone");
    assert_eq!(e.field, "limits.time_zone");
}

#[test]
fn model_allow_list_matches_globs_without_case() {
    let list = ModelAllowList::parse("gpt-4o*, claude-*").expect("valid");
    assert!(list.allows("gpt-4o"));
    assert!(list.allows("gpt-4o-mini-2024-07-18"));
    assert!(list.allows("Claude-3-5-sonnet"));
    assert!(!list.allows("gpt-4"));
    assert!(!list.allows("o1-preview"));
    assert_eq!(list.patterns(), ["gpt-4o*", "claude-*"]);

    let slash = ModelAllowList::parse("openai/*").expect("valid");
    assert!(slash.allows("openai/gpt-4o"));

    assert_eq!(
        ModelAllowList::parse("gpt-4o*,,x")
            .expect_err("empty")
            .field,
        "models"
    );
    assert_eq!(
        ModelAllowList::parse("gpt-[4")
            .expect_err("malformed")
            .field,
        "models"
    );
    let json: ModelAllowList = serde_json::from_str(r#"["a*"]"#).expect("parses");
    assert_eq!(
        serde_json::to_string(&json).expect("serializes"),
        r#"["a*"]"#
    );
    assert!(serde_json::from_str::<ModelAllowList>(r#"["[x"]"#).is_err());
}

#[test]
fn a_stored_spec_round_trips_and_keeps_its_label() {
    let limit = Limit {
        id: 7,
        scope: Scope::Team(3),
        kind: LimitKind::TokenBudget {
            max: 5_000,
            period: Period::Month,
        },
        enforcement: Enforcement::Soft,
        alert_at: vec![50, 100],
        include_reported: true,
    };
    let json = limit.spec_json(Some("quota"));
    assert!(
        !json.contains("\"id\""),
        "id and scope live in columns: {json}"
    );
    let (back, label) = Limit::from_record(7, Scope::Team(3), &json).expect("readable");
    assert_eq!(back, limit);
    assert_eq!(label.as_deref(), Some("quota"));
    let (_, none) =
        Limit::from_record(7, Scope::Team(3), &limit.spec_json(None)).expect("readable");
    assert_eq!(none, None);
}

#[test]
fn a_bad_stored_spec_names_the_limit() {
    let err = Limit::from_record(9, Scope::Instance, r#"{"kind":{"type":"requests"}}"#)
        .expect_err("missing fields");
    assert_eq!(err.field, "spec");
    assert!(err.to_string().contains("limit 9"), "{err}");
    let zero = Limit::from_record(
        9,
        Scope::Instance,
        r#"{"kind":{"type":"concurrency","max":0}}"#,
    )
    .expect_err("zero");
    assert_eq!(zero.field, "kind.max");
}
