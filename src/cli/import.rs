//! `authbridge import ADAPTER`: bulk import of a `sql_keys` adapter's legacy keys.

use std::time::Instant;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::legacy::import::{self, ImportOptions, ImportSummary, DEFAULT_BATCH_SIZE};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The `sql_keys` adapter to import, which needs an `import_query`.
    pub adapter: String,
    /// Report what would be inserted, updated and skipped without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Rows read and written per transaction.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: u32,
    /// Start from the first row even when an earlier run was interrupted.
    #[arg(long)]
    pub from_start: bool,
}

pub async fn import(app: &App, args: ImportArgs) -> anyhow::Result<()> {
    let Some(adapter) = app.verifier.adapters().get(&args.adapter) else {
        bail!(
            "no adapter named {:?}: `authbridge adapters list` shows the configured ones",
            args.adapter
        );
    };
    let total = import::count_rows(adapter).await?;
    let progress = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{bar:40} {pos}/{len} keys, {per_sec}, ETA {eta}"
    } else {
        "{spinner} {pos} keys, {per_sec}, {elapsed}"
    };
    progress.set_style(ProgressStyle::with_template(template)?);

    let options = ImportOptions {
        batch_size: args.batch_size,
        dry_run: args.dry_run,
        from_start: args.from_start,
        max_batches: None,
    };
    let started = Instant::now();
    let clock = app.clock.clone();
    let result = import::run(&app.store, adapter, &options, &progress, move || {
        clock.now()
    })
    .await;
    progress.finish_and_clear();
    let summary = result?;
    print_summary(&args.adapter, &summary, started.elapsed().as_secs_f64());
    Ok(())
}

fn print_summary(adapter: &str, summary: &ImportSummary, seconds: f64) {
    let mode = if summary.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    println!("import of adapter {adapter}{mode}");
    if let Some(after) = &summary.resumed_after {
        println!("  resumed after lookup value {after:?}");
    }
    let verb = |done: &str, would: &str| {
        if summary.dry_run {
            would.to_owned()
        } else {
            done.to_owned()
        }
    };
    println!(
        "  {:<22} {}",
        verb("inserted", "would insert"),
        summary.inserted
    );
    println!(
        "  {:<22} {}",
        verb("updated", "would update"),
        summary.updated
    );
    println!("  {:<22} {}", "unchanged", summary.unchanged);
    let skipped: u64 = summary.skipped.values().sum();
    println!("  {:<22} {}", verb("skipped", "would skip"), skipped);
    for (reason, count) in &summary.skipped {
        println!("    {count:>8}  {reason}");
    }
    println!(
        "  {} rows in {} batches, {seconds:.1} s",
        summary.rows_read(),
        summary.batches
    );
    if !summary.finished {
        println!("  stopped before the end; run the command again to resume");
    }
}
