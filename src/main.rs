//! The `lookout` binary: parse the command line, run, and turn the outcome
//! into an exit status. Errors print as one line: 2 for bad input (flags,
//! environment, files), 1 for failures at run time; never a panic.

use std::{io::Write as _, process::ExitCode};

use anyhow::Context as _;
use clap::Parser as _;
use lookout::{
    app::{self, App, Outcome},
    cli::{self, Cli, Command, Rejected},
    telemetry::logging,
};

/// dlmalloc instead of musl's malloc (issue 18, bench/RESULTS.md "Where the
/// time goes"): musl's returns freed memory to the kernel at once, so each
/// plain-HTTP probe paid 5 mmap and 5 munmap calls and 8 page faults; none
/// with dlmalloc. CPU per plain-HTTP probe, natively (median of 3 noisy
/// rounds): 0.18 ms with musl's malloc, 0.13 with dlmalloc, 0.13 with glibc's.
/// Its cost: +50,056 bytes of binary, +300 KiB idle RSS, and memory freed after
/// a burst is kept for the next (10.8 MiB after 3 s at 64 connections, not 5.5).
/// crates/allocator locks it with a futex. A glibc build keeps glibc's malloc.
/// bench/run.sh removes these lines for its other allocators.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: lookout_allocator::Allocator = lookout_allocator::Allocator::new();

// memcpy and memmove in place of musl's (crates/memcpy says why). Naming the
// crate links it, and the linker then needs nothing from libc.a's memcpy.o and
// memmove.o. A glibc build keeps glibc's.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
use lookout_memcpy as _;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            return match cli::rejected(&error) {
                Rejected::Informational(text) => {
                    // A closed stdout (`lookout --help | head -1`) is not an error.
                    let _ = std::io::stdout().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                Rejected::Usage(line) => {
                    eprintln!("lookout: error: {line}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("lookout: error: {error:#}");
            ExitCode::from(
                error
                    .downcast_ref::<lookout::Error>()
                    .map_or(1, lookout::Error::exit_code),
            )
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if cli.config_check {
        return config_check(cli);
    }
    match cli.command {
        Some(Command::CheckConfig { ref file }) => {
            let modules = lookout::check_config(file)?;
            eprintln!(
                "{}: OK, {} modules: {}",
                file.display(),
                modules.len(),
                modules.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Probe {
            ref target,
            ref module,
            timeout,
            debug,
        }) => probe(cli, target, module, timeout.map(Into::into), debug),
        None | Some(Command::Serve) => serve(cli),
    }
}

/// `--config.check`, blackbox_exporter's flag: exit 0 when the modules (and
/// the web configuration) would load, 1 with the reason when not.
fn config_check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (format, level) = cli.logging();
    logging::init(format, level)?;
    let checked = lookout::check_source(&cli.config_source()).and_then(|modules| {
        if let Some(web) = &cli.web_config_file {
            lookout::check_web_config(web)?;
        }
        Ok(modules)
    });
    match checked {
        Ok(modules) => {
            let origin = cli
                .config_file
                .as_ref()
                .map_or("embedded modules".to_owned(), |f| f.display().to_string());
            eprintln!(
                "{origin}: OK, {} modules: {}",
                modules.len(),
                modules.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("lookout: error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn probe(
    cli: &Cli,
    target: &str,
    module: &str,
    timeout: Option<std::time::Duration>,
    debug: bool,
) -> anyhow::Result<ExitCode> {
    let (format, level) = cli.logging();
    logging::init(format, level)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let logged = runtime.block_on(lookout::probe_once(
        &cli.config_source(),
        module,
        target,
        timeout,
        &cli.policy(),
    ))?;
    runtime.shutdown_background();
    if debug {
        let _ = std::io::stderr().write_all(logged.log.render().as_bytes());
    }
    std::io::stdout()
        .write_all(logged.report.render().as_bytes())
        .context("writing the metrics to stdout")?;
    Ok(match &logged.failure {
        None => ExitCode::SUCCESS,
        Some(reason) => {
            // One line, whatever the target sent.
            let reason: String = reason
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            eprintln!("lookout: probe failed: {reason}");
            ExitCode::FAILURE
        }
    })
}

fn serve(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (format, level) = cli.logging();
    logging::init(format, level)?;
    let source = cli.config_source();
    // Parse before binding anything: bad input must exit 2 without side effects.
    let config = source.load().map_err(lookout::Error::from)?;
    let settings = cli.settings();
    // Blocking threads run name lookups and body matches, each holding a probe
    // slot until it ends (see prober::limits): the probe limit bounds them; the
    // rest is for reloads and file reads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(settings.probe_limits.max_probes + 16)
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let (controller, control) = app::control();
        app::forward_signals(controller)?;
        App::bind(settings, source, config)
            .await?
            .run(control)
            .await
    });
    // Do not wait for stragglers (a DNS lookup on a blocking thread): the
    // shutdown sequence already gave requests their time.
    runtime.shutdown_background();
    Ok(match outcome? {
        Outcome::Drained | Outcome::DrainTimedOut => ExitCode::SUCCESS,
        Outcome::Forced(signal) => ExitCode::from(128 + signal as u8),
    })
}
