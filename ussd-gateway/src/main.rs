use clap::{Parser, Subcommand};
use guichet_core::Store;
use guichet_ussd_gateway::config::Config;
use guichet_ussd_gateway::gateway::Gateway;
use guichet_ussd_gateway::i18n::Catalog;
use guichet_ussd_gateway::state::GatewayDb;
use guichet_ussd_gateway::text::{self, UssdLimit};
use guichet_ussd_gateway::{app, flow, outbox, providers, replica, simulator};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// USSD and SMS gateway: citizens start and track requests in their language.
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
    /// Configuration file (TOML); see ussd-gateway/gateway.example.toml.
    #[arg(
        long,
        env = "GUICHET_GATEWAY_CONFIG",
        default_value = "ussd-gateway/gateway.example.toml"
    )]
    config: PathBuf,
    /// Address to listen on (overrides the file).
    #[arg(long, env = "GUICHET_GATEWAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the gateway's replica and state (overrides the file).
    #[arg(long, env = "GUICHET_GATEWAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve(ServeArgs),
    /// What a text costs: encoding, units, SMS segments, fits one USSD screen (JSON).
    Measure {
        text: String,
        #[arg(long, default_value_t = 182)]
        screen_gsm7: usize,
        #[arg(long, default_value_t = 80)]
        screen_ucs2: usize,
    },
    /// Dial the gateway from this terminal, as a phone would (Africa's Talking protocol).
    Dial {
        /// The service code, e.g. '*123#'.
        code: String,
        /// The gateway's Africa's Talking USSD callback URL.
        #[arg(long, default_value = "http://127.0.0.1:8710/at/local-secret/ussd")]
        url: String,
        #[arg(long, default_value = "+221770000001")]
        phone: String,
        /// Inputs to send in turn, comma-separated, before asking the terminal.
        #[arg(long, value_delimiter = ',')]
        inputs: Vec<String>,
        /// Only the scripted inputs; do not read the terminal.
        #[arg(long)]
        batch: bool,
    },
    /// A mediator's PIN, salted and hashed, for their `pin_hash` in the configuration.
    HashPin {
        /// The PIN; without it, read from standard input (kept out of the
        /// shell's history and the process list).
        pin: Option<String>,
    },
    /// The gateway's public key (created if missing), to enrol it on the sync server.
    Key {
        #[arg(
            long,
            env = "GUICHET_GATEWAY_DATA_DIR",
            default_value = "guichet-data/gateway"
        )]
        data_dir: PathBuf,
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
        Some(Command::Measure {
            text,
            screen_gsm7,
            screen_ucs2,
        }) => {
            let limit = UssdLimit {
                gsm7_chars: screen_gsm7,
                ucs2_units: screen_ucs2,
            };
            let measure = text::measure(&text, &limit);
            println!(
                "{}",
                serde_json::to_string_pretty(&measure).expect("serializable")
            );
            Ok(())
        }
        Some(Command::Dial {
            code,
            url,
            phone,
            inputs,
            batch,
        }) => runtime().and_then(|rt| {
            rt.block_on(async {
                let mut out = std::io::stdout();
                simulator::dial(&url, &code, &phone, inputs.into(), !batch, &mut out)
                    .await
                    .map(|_| ())
            })
        }),
        Some(Command::HashPin { pin }) => pin
            .map_or_else(read_line, Ok)
            .and_then(|pin| flow::hash_pin(&pin))
            .map(|hash| println!("{hash}")),
        Some(Command::Key { data_dir }) => std::fs::create_dir_all(&data_dir)
            .map_err(|e| format!("{}: {e}", data_dir.display()))
            .and_then(|()| replica::load_or_create_key(&data_dir))
            .map(|key| println!("{}", key.public_key())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("guichet-ussd-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_line() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading standard input: {e}"))?;
    Ok(line)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| e.to_string())
}

/// Relative paths in the file are relative to the file.
fn beside(config_file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        config_file.parent().unwrap_or(Path::new(".")).join(path)
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut config = Config::load(&args.config).map_err(|e| e.to_string())?;
    flow::check_mediator_pins(&config)?;
    config.data_dir = args
        .data_dir
        .unwrap_or_else(|| beside(&args.config, &config.data_dir));
    config.locales_dir = beside(&args.config, &config.locales_dir);
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let catalog =
        Catalog::load(&config.locales_dir, &config.default_language).map_err(|e| e.to_string())?;

    let key = replica::load_or_create_key(&config.data_dir)?;
    let runtime = runtime()?;
    if let Some(sync) = config.sync.as_mut() {
        if let Some(dir) = sync.embedded_server_data_dir.take() {
            let dir = beside(&args.config, &dir);
            let (url, data) = (sync.server_url.clone(), config.data_dir.clone());
            let offset = sync.embedded_server_utc_offset_minutes;
            runtime.block_on(replica::start_embedded_server(
                &url, &dir, offset, &data, &key,
            ))?;
        }
    }
    let replica_number = match (&config.sync, replica::enrolment(&config.data_dir)?) {
        (Some(_), Some(enrolment)) => enrolment.replica,
        (Some(_), None) => {
            return Err(format!(
                "this gateway is not enrolled yet. On the sync server, run\n  guichet-sync-server enrol --data-dir <dir> --role intake --agent ussd-gateway --public-key {}\nand save what it prints as {}",
                key.public_key(),
                config.data_dir.join(replica::ENROLMENT_FILE).display()
            ))
        }
        (None, _) => config.standalone_replica.ok_or(
            "set standalone_replica (trying it out) or a [sync] section (a deployment)",
        )?,
    };
    let mut store =
        Store::open(config.data_dir.join("cases.db"), replica_number).map_err(|e| e.to_string())?;
    // Citizens find cases by reference, never by text: no text index to
    // write with each request, no second copy of names and descriptions.
    store.keep_text_index(false).map_err(|e| e.to_string())?;
    let db = GatewayDb::open(&config.data_dir.join("gateway.db")).map_err(|e| e.to_string())?;
    let sync = config.sync.clone();
    let listen = config.listen;
    let sender = providers::sms_sender(&config)?;
    let gw = Arc::new(
        Gateway::new(config, catalog, store, db)
            .map_err(|e| format!("cannot start the filing thread: {e}"))?,
    );

    runtime.block_on(async move {
        let outbox = sender.map(|sender| outbox::Outbox::start(gw.clone(), Arc::from(sender)));
        if outbox.is_none() {
            tracing::warn!("no SMS provider configured: SMS stay in the outbox");
        }
        match sync {
            Some(s) => {
                let interval = Duration::from_secs(s.interval_secs.max(1));
                tokio::spawn(replica::sync_loop(gw.clone(), s.server_url, key, interval));
            }
            None => {
                tokio::spawn(replica::housekeeping_loop(
                    gw.clone(),
                    Duration::from_secs(5),
                ));
            }
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        tracing::info!("guichet-ussd-gateway listening on http://{address}");
        axum::serve(
            listener,
            app::router(gw).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown(terminate))
        .await
        .map_err(|e| e.to_string())?;
        if let Some(outbox) = outbox {
            outbox.stop().await;
        }
        tracing::info!("guichet-ussd-gateway stopped");
        Ok(())
    })
}

async fn shutdown(mut terminate: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
