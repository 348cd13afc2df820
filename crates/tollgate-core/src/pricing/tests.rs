use super::*;

fn tokens(prompt: i64, completion: i64) -> TokenUsage {
    TokenUsage {
        prompt,
        completion,
        total: prompt + completion,
        cached: 0,
        reasoning: 0,
    }
}

fn price(input: f64, output: f64) -> ModelPrice {
    ModelPrice {
        input,
        output,
        cached_input: None,
        reasoning: None,
    }
}

#[test]
fn the_built_in_table_parses_and_every_entry_is_valid() {
    let table = built_in();
    assert_eq!(table.error, None);
    assert!(table.models.len() >= 40, "{} entries", table.models.len());
    for (name, m) in &table.models {
        check_model_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        m.price
            .check()
            .unwrap_or_else(|(f, e)| panic!("{name}.{f}: {e}"));
        assert!(PROVIDERS.contains(&m.provider.as_str()), "{name}");
        assert!(
            m.price.input > 0.0,
            "{name}: a built-in price of zero would read as free"
        );
        if let Some(cached) = m.price.cached_input {
            assert!(
                cached <= m.price.input,
                "{name}: cached input dearer than input"
            );
        }
    }
    assert!(is_plausible_date(&table.as_of), "{}", table.as_of);
    // Every provider the issue names has models, and Azure's spelling is there.
    for provider in ["openai", "anthropic", "gemini", "deepseek", "azure"] {
        assert!(
            table.models.values().any(|m| m.provider == provider),
            "no {provider} model"
        );
    }
}

fn is_plausible_date(s: &str) -> bool {
    s.len() == 10 && s.starts_with("20")
}

#[test]
fn the_built_in_table_prices_each_provider_s_current_names() {
    let t = PricedTable::build(built_in(), &PriceTable::default(), []);
    for model in [
        "gpt-4o-2024-08-06",
        "gpt-4o-mini-2024-07-18",
        "gpt-4.1-mini",
        "gpt-5",
        "o3-mini-2025-01-31",
        "gpt-35-turbo",
        "text-embedding-3-small",
        "claude-sonnet-4-5-20250929",
        "claude-3-5-haiku-latest",
        "claude-opus-4-1-20250805",
        "gemini-2.5-flash",
        "gemini-2.0-flash-001",
        "deepseek-chat",
        "deepseek-reasoner",
        "openai/gpt-4o",
        "anthropic/claude-sonnet-4",
    ] {
        assert!(t.entry_of(model).is_some(), "{model} has no price");
    }
    // Longest prefix: the mini model is not priced as its big sibling.
    let (name, _) = t.entry_of("gpt-4o-mini-2024-07-18").unwrap();
    assert_eq!(name, "gpt-4o-mini");
    let (name, _) = t.entry_of("claude-opus-4-5-20251101").unwrap();
    assert_eq!(name, "claude-opus-4-5");
    assert!(t.entry_of("llama3:8b").is_none());
    assert!(t.entry_of("my-own-model").is_none());
}

#[test]
fn a_bad_price_file_is_refused_naming_the_entry() {
    let ok = "as_of = \"2025-11-30\"\n[models.\"m\"]\nprovider = \"openai\"\ninput = 1.0\noutput = 2.0\n";
    assert_eq!(parse_price_file(ok).unwrap().models.len(), 1);
    let negative = ok.replace("input = 1.0", "input = -1.0");
    assert!(
        parse_price_file(&negative)
            .unwrap_err()
            .contains("models.m.input")
    );
    let nan = ok.replace("output = 2.0", "output = nan");
    assert!(
        parse_price_file(&nan)
            .unwrap_err()
            .contains("models.m.output")
    );
    let unknown = format!("{ok}cache_write = 1.0\n");
    assert!(
        parse_price_file(&unknown)
            .unwrap_err()
            .contains("cache_write")
    );
    let provider = ok.replace("\"openai\"", "\"acme\"");
    assert!(
        parse_price_file(&provider)
            .unwrap_err()
            .contains("provider")
    );
    let date = ok.replace("2025-11-30", "last year");
    assert!(parse_price_file(&date).unwrap_err().contains("as_of"));
    let name = ok.replace("\"m\"", "\"a b\"");
    assert!(parse_price_file(&name).unwrap_err().contains("spaces"));
}

#[test]
fn config_overrides_built_in_and_console_overrides_config() {
    let mut config = PriceTable::default();
    config.0.insert("gpt-4o".into(), price(1.0, 2.0));
    config.0.insert("local-llama".into(), price(0.0, 0.0));
    let t = PricedTable::build(built_in(), &config, [("gpt-4o-mini", price(9.0, 9.0))]);
    let (_, e) = t.entry_of("gpt-4o-2024-08-06").unwrap();
    assert_eq!((e.price, e.source), (price(1.0, 2.0), PriceSource::Config));
    let (_, e) = t.entry_of("gpt-4o-mini").unwrap();
    assert_eq!((e.price, e.source), (price(9.0, 9.0), PriceSource::Console));
    let (_, e) = t.entry_of("claude-3-haiku-20240307").unwrap();
    assert_eq!(e.source, PriceSource::BuiltIn);
    assert_eq!(e.provider, Some("anthropic"));
    // A configured price of zero is a price: the call costs $0, it is not unpriced.
    assert_eq!(t.cost(Some("local-llama"), &tokens(10, 10)), Some(0.0));
}

#[test]
fn unpriced_calls_have_no_cost_and_calls_without_tokens_cost_nothing() {
    let t = PricedTable::build(built_in(), &PriceTable::default(), []);
    assert_eq!(t.cost(Some("my-own-model"), &tokens(10, 10)), None);
    assert_eq!(t.cost(None, &tokens(10, 0)), None);
    assert_eq!(t.cost(Some("my-own-model"), &tokens(0, 0)), Some(0.0));
    assert_eq!(t.cost(None, &TokenUsage::default()), Some(0.0));
}

#[test]
fn cached_and_reasoning_tokens_take_their_own_prices() {
    let p = ModelPrice {
        input: 2.0,
        output: 10.0,
        cached_input: Some(0.5),
        reasoning: Some(20.0),
    };
    let t = TokenUsage {
        prompt: 1_000_000,
        completion: 1_000_000,
        total: 2_000_000,
        cached: 500_000,
        reasoning: 250_000,
    };
    // 0.5 M × 2 + 0.5 M × 0.5 + 0.75 M × 10 + 0.25 M × 20
    assert!((p.cost(&t) - (1.0 + 0.25 + 7.5 + 5.0)).abs() < 1e-9);
    // Absent prices fall back to input and output.
    let plain = price(2.0, 10.0);
    assert!((plain.cost(&t) - 12.0).abs() < 1e-9);
    // Counts out of range are clamped, never negative.
    let odd = TokenUsage {
        prompt: 10,
        completion: -5,
        total: 5,
        cached: 50,
        reasoning: 7,
    };
    assert!(plain.cost(&odd) >= 0.0);
}

#[test]
fn bad_prices_name_their_field() {
    let mut p = price(1.0, 1.0);
    p.output = -1.0;
    assert_eq!(p.check().unwrap_err().0, "output");
    p.output = 1.0;
    p.cached_input = Some(f64::NAN);
    assert_eq!(p.check().unwrap_err().0, "cached_input");
    p.cached_input = None;
    p.reasoning = Some(f64::INFINITY);
    assert_eq!(p.check().unwrap_err().0, "reasoning");
    let mut table = PriceTable::default();
    table.0.insert("m".into(), price(-1.0, 0.0));
    assert!(table.validate().unwrap_err().contains("prices.m"));
    assert!(check_model_name("").is_err());
    assert!(check_model_name(&"x".repeat(201)).is_err());
}

#[test]
fn overrides_replace_the_table_in_force() {
    let prices = Prices::default();
    let before = prices.current();
    assert_eq!(
        before.cost(Some("house-model"), &tokens(1_000_000, 0)),
        None
    );
    prices.set_overrides([("house-model", price(3.0, 4.0))]);
    let after = prices.current();
    assert_eq!(
        after.cost(Some("house-model"), &tokens(1_000_000, 0)),
        Some(3.0)
    );
    // Readers holding the old table keep it whole.
    assert_eq!(
        before.cost(Some("house-model"), &tokens(1_000_000, 0)),
        None
    );
    prices.set_overrides([]);
    assert_eq!(
        prices.current().cost(Some("house-model"), &tokens(1, 0)),
        None
    );
}
