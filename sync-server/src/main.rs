use clap::{Parser, Subcommand};
use guichet_sync_server::app::{now_ms, router, AppState};
use guichet_sync_server::config::Config;
use guichet_sync_server::registry::{Registry, Role};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// Give a tablet other units (repeat --unit for each): it receives the
    /// cases of the units it gains and drops those of the units it loses.
    Units {
        #[arg(long, env = "GUICHET_SYNC_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long)]
        device: u32,
        #[arg(long = "unit", required = true)]
        units: Vec<String>,
    },
    /// List enrolled devices.
    Devices {
        #[arg(long, env = "GUICHET_SYNC_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Operations devices sent that the server keeps without applying
    /// them (outside the device's units, or impossible to apply).
    Quarantine {
        #[arg(
            long,
            env = "GUICHET_SYNC_DATA_DIR",
            global = true,
            default_value = "guichet-data"
        )]
        data_dir: PathBuf,
        #[command(subcommand)]
        action: QuarantineAction,
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

#[derive(Subcommand)]
enum QuarantineAction {
    /// List them, as JSON lines: held ones, or every one with --all.
    List {
        #[arg(long)]
        device: Option<u32>,
        #[arg(long)]
        all: bool,
    },
    /// Apply a device's held operations that its units now allow (after
    /// its units were changed), in the order it wrote them.
    Release {
        #[arg(long)]
        device: u32,
        /// Who decided it, for the record.
        #[arg(long)]
        by: String,
    },
    /// Record that one was looked at; it stays unapplied for good.
    Acknowledge {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        by: String,
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
        Some(Command::Units {
            data_dir,
            device,
            units,
        }) => registry(&data_dir).and_then(|r| {
            let device = r.set_units(device, &units).map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&device).expect("serializable")
            );
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
        Some(Command::Quarantine { data_dir, action }) => quarantine(&data_dir, action),
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

/// The quarantine subcommands. They open the server's store beside a
/// running server: a release only adds operations, which the server then
/// serves like any others.
fn quarantine(data_dir: &Path, action: QuarantineAction) -> Result<(), String> {
    let mut store = guichet_core::Store::open(
        data_dir.join("server.db"),
        guichet_sync_server::registry::SERVER_REPLICA,
    )
    .map_err(|e| e.to_string())?;
    match action {
        QuarantineAction::List { device, all } => {
            for entry in store.quarantined(device, !all).map_err(|e| e.to_string())? {
                let line = serde_json::json!({
                    "id": entry.id,
                    "device": entry.device,
                    "operation": format!("{}-{}", entry.dot.actor, entry.dot.counter),
                    "case": entry.case.to_string(),
                    "kind": entry.kind,
                    "reason": entry.reason,
                    "received_ms": entry.received_ms,
                    "state": entry.state.as_str(),
                    "resolved_by": entry.resolved_by,
                });
                println!("{line}");
            }
            Ok(())
        }
        QuarantineAction::Release { device, by } => {
            let scope = registry(data_dir)?
                .device(device)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no device {device}"))?
                .scope();
            let outcome = store
                .release_quarantined(device, &scope, &by)
                .map_err(|e| e.to_string())?;
            println!(
                "{} released, {} still held (see `quarantine list --device {device}`)",
                outcome.released, outcome.still_held
            );
            Ok(())
        }
        QuarantineAction::Acknowledge { id, by } => {
            store
                .acknowledge_quarantined(id, &by)
                .map_err(|e| e.to_string())?;
            println!("quarantined operation {id} acknowledged");
            Ok(())
        }
    }
}
