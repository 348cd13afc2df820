//! `tollgate prices list|set|remove`: the prices in force and the console's overrides, on the
//! local store (as the operator, with this machine's `[prices]`) or on a server (`--server`).

use reqwest::Method;
use tollgate_console::api::prices::{PriceList, PriceSet, PriceView, views};
use tollgate_console::rules::prices;
use tollgate_core::pricing::{ModelPrice, Prices};

use crate::backend::{Failure, Outcome, Target};
use crate::cli_prices::{PricesCommand, PricesListArgs, PricesRemoveArgs, PricesSetArgs};
use crate::output;
use crate::remote::segment;

/// The API's field names → this command's flags.
const FLAGS: &[(&str, &str)] = &[
    ("model", "MODEL"),
    ("input", "--input"),
    ("output", "--output"),
    ("cached_input", "--cached-input"),
    ("reasoning", "--reasoning"),
];

/// Runs a `prices` command.
pub async fn run(target: Target<'_>, cmd: PricesCommand) -> anyhow::Result<()> {
    match cmd {
        PricesCommand::List(args) => list(target, args).await,
        PricesCommand::Set(args) => set(target, args).await,
        PricesCommand::Remove(args) => remove(target, args).await,
    }
}

/// The prices of `target`'s side: a server's table, or this machine's configuration and store.
async fn price_list(target: Target<'_>) -> Outcome<PriceList> {
    match target {
        Target::Local(config) => {
            let backend = crate::backend::Backend::local(config).await?;
            let crate::backend::Backend::Local(local) = &backend else {
                return Err(Failure::Other(anyhow::anyhow!("no local store")));
            };
            let table = Prices::new(config.prices.clone());
            let result = prices::list(&local.rules(), &table).await;
            backend.close().await;
            let (table, overrides) = result?;
            Ok(views(&table, &overrides))
        }
        Target::Remote(r) => r.get("api/v1/prices").await,
    }
}

async fn list(target: Target<'_>, args: PricesListArgs) -> anyhow::Result<()> {
    let mut list = price_list(target).await.map_err(|e| e.cli(FLAGS))?;
    if let Some(pattern) = &args.model {
        let pattern = pattern.to_lowercase();
        list.prices
            .retain(|p| p.model.to_lowercase().contains(&pattern));
    }
    if args.json {
        return output::json(&list);
    }
    let money = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("${v}"));
    let rows = list
        .prices
        .iter()
        .map(|p| {
            vec![
                p.model.clone(),
                money(Some(p.input)),
                money(Some(p.output)),
                money(p.cached_input),
                money(p.reasoning),
                p.source.as_str().to_owned(),
                p.provider.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "model",
            "input",
            "output",
            "cached input",
            "reasoning",
            "source",
            "provider",
        ],
        rows,
    );
    output::note(&format!(
        "US dollars per million tokens; built-in prices as of {} (check them against the \
         providers'); a model matching no name has no price and its calls show \"no price\", not $0",
        list.as_of
    ));
    Ok(())
}

async fn set(target: Target<'_>, args: PricesSetArgs) -> anyhow::Result<()> {
    let body = PriceSet {
        input: args.input,
        output: args.output,
        cached_input: args.cached_input,
        reasoning: args.reasoning,
    };
    // Checked before anything is opened, with the rule the server applies.
    prices::check(&args.model, &ModelPrice::from(&body))
        .map_err(|e| Failure::from(e).cli(FLAGS))?;
    let view: PriceView = match target {
        Target::Local(config) => {
            let backend = crate::backend::Backend::local(config).await?;
            let crate::backend::Backend::Local(local) = &backend else {
                anyhow::bail!("no local store");
            };
            let table = Prices::new(config.prices.clone());
            let result = prices::set(
                &local.rules(),
                &local.actor(),
                &table,
                &args.model,
                ModelPrice::from(&body),
            )
            .await;
            backend.close().await;
            let set = result.map_err(|e| Failure::from(e).cli(FLAGS))?;
            PriceView {
                model: set.model,
                input: set.price.input,
                output: set.price.output,
                cached_input: set.price.cached_input,
                reasoning: set.price.reasoning,
                source: tollgate_core::pricing::PriceSource::Console,
                provider: None,
                updated_by: Some(set.updated_by),
                updated_at: Some(set.updated_at_ms),
            }
        }
        Target::Remote(r) => r
            .send(
                Method::PUT,
                &format!("api/v1/prices/{}", segment(&args.model)),
                &body,
            )
            .await
            .map_err(|e| e.cli(FLAGS))?,
    };
    if args.json {
        return output::json(&view);
    }
    output::note(&format!(
        "price of `{}` set: ${} input, ${} output per million tokens; it applies from the next call",
        view.model, view.input, view.output
    ));
    Ok(())
}

async fn remove(target: Target<'_>, args: PricesRemoveArgs) -> anyhow::Result<()> {
    let model = args.model;
    let missing = || format!("no price was set for `{model}` from the console");
    match target {
        Target::Local(config) => {
            let backend = crate::backend::Backend::local(config).await?;
            let crate::backend::Backend::Local(local) = &backend else {
                anyhow::bail!("no local store");
            };
            let table = Prices::new(config.prices.clone());
            let result = prices::remove(&local.rules(), &local.actor(), &table, &model).await;
            backend.close().await;
            result.map_err(|e| Failure::from(e).cli_or(FLAGS, missing))?;
        }
        Target::Remote(r) => r
            .delete(&format!("api/v1/prices/{}", segment(&model)))
            .await
            .map_err(|e| e.cli_or(FLAGS, missing))?,
    }
    output::note(&format!("price of `{model}` set from the console removed"));
    Ok(())
}
