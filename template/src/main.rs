//! The binary: configuration, logging, signals, then the service until a stop
//! signal. Exits 0 after a graceful shutdown, 1 on any error.

use std::process::ExitCode;

use my_service::{shutdown::Signals, telemetry, Application, Config, Error};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            // Before logging is set up (its level is configuration too): one plain line.
            eprintln!("my-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(config.log_level);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "exiting");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Error> {
    let mut signals = Signals::install()?;
    let app = Application::build(config).await?;
    app.run_until_stopped(async move {
        let signal = signals.recv().await;
        tracing::info!(signal, "stop signal received");
    })
    .await
}
