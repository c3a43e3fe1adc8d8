use clap::{Parser, Subcommand};
use guichet_sync_server::app::{now_ms, router, AppState};
use guichet_sync_server::config::Config;
use guichet_sync_server::registry::{Registry, Role};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The server Guichet tablets and the USSD gateway sync with.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "GUICHET_SYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8700.
    #[arg(long, env = "GUICHET_SYNC_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the server's store and device registry.
    #[arg(long, env = "GUICHET_SYNC_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve(ServeArgs),
    /// Enrol a device's public key; prints the enrolment for the device.
    Enrol {
        #[arg(long, env = "GUICHET_SYNC_DATA_DIR")]
        data_dir: PathBuf,
        /// The device's public key, as it shows it (base64).
        #[arg(long)]
        public_key: String,
        /// The agent (or gateway) the device belongs to.
        #[arg(long)]
        agent: String,
        #[arg(long, value_enum, default_value = "tablet")]
        role: Role,
        /// A unit the device serves (repeat for several).
        #[arg(long = "unit")]
        units: Vec<String>,
    },
    /// Revoke a device: its requests are refused from now on.
    Revoke {
        #[arg(long, env = "GUICHET_SYNC_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long)]
        device: u32,
    },
    /// List enrolled devices.
    Devices {
        #[arg(long, env = "GUICHET_SYNC_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Add a supervisor (or set their password and units). The password
    /// is read from GUICHET_SUPERVISOR_PASSWORD, else from standard input.
    Supervisor {
        #[arg(long, env = "GUICHET_SYNC_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long)]
        name: String,
        /// A unit the supervisor follows (repeat for several).
        #[arg(long = "unit", required_unless_present = "all_units")]
        units: Vec<String>,
        /// The supervisor follows every unit.
        #[arg(long, conflicts_with = "units")]
        all_units: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Enrol {
            data_dir,
            public_key,
            agent,
            role,
            units,
        }) => registry(&data_dir).and_then(|r| {
            let device = r
                .enrol(&agent, role, &units, &public_key, now_ms())
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&device).expect("serializable")
            );
            Ok(())
        }),
        Some(Command::Revoke { data_dir, device }) => registry(&data_dir).and_then(|r| {
            r.revoke(device).map_err(|e| e.to_string())?;
            println!("device {device} revoked");
            Ok(())
        }),
        Some(Command::Devices { data_dir }) => registry(&data_dir).and_then(|r| {
            let devices = r.devices().map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&devices).expect("serializable")
            );
            Ok(())
        }),
        Some(Command::Supervisor {
            data_dir,
            name,
            units,
            all_units,
        }) => registry(&data_dir).and_then(|r| {
            let password = supervisor_password()?;
            let units = (!all_units).then_some(units.as_slice());
            r.set_supervisor(&name, &password, units, now_ms())
                .map_err(|e| e.to_string())?;
            println!("supervisor {name} can sign in at /supervisor");
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("guichet-sync-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn supervisor_password() -> Result<String, String> {
    if let Ok(password) = std::env::var("GUICHET_SUPERVISOR_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn registry(data_dir: &std::path::Path) -> Result<Registry, String> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    Registry::open(&data_dir.join("registry.db")).map_err(|e| e.to_string())
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let listen = config.listen;
    let state = Arc::new(AppState::open(config)?);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        // Registered before announcing readiness, so no SIGTERM is missed.
        let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        tracing::info!("guichet-sync-server listening on http://{address}");
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal(terminate))
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("guichet-sync-server stopped");
        Ok(())
    })
}

/// SIGTERM or Ctrl-C: stop accepting, let requests in flight finish.
async fn shutdown_signal(mut terminate: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
