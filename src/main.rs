//! The `upgate` command: parse the CLI, load the config, hand over to the crates.
//! Exit codes: 0 ok, 1 runtime failure, 64 bad usage or configuration (sysexits EX_USAGE).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use upgate_config::{Config, LogFormat};
use upgate_control::ops::{self, ClientError, OpRequest};

/// mimalloc rather than glibc's malloc: after a burst of uploads glibc kept the freed memory
/// in its per-thread arenas (RSS stayed at the peak), and small uploads allocate a lot of
/// short-lived buffers (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "upgate",
    version,
    about = "Self-hosted upload gateway: SMS upload links, scanned, sealed, on the call record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// The TOML configuration file (every key optional; see config/upgate.example.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The data directory; overrides `data_dir` in the config. Default ./upgate-data.
    /// Only `serve` creates it; every other command needs it to exist.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway and the control plane in one process (the embedded default).
    Serve(Common),
    /// Run the control plane alone, with the internal API for gateways run apart.
    Control(Common),
    /// Run one gateway apart from the control plane (needs gateway.control_url and
    /// gateway.credential_file in --config).
    Gateway(Common),
    /// Storage tools.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// List, rotate and retire the link-signing and storage keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the credentials gateways present to the internal API.
    GatewayCredential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Manage the people who sign in to the console.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write an encrypted backup of the store, the instance keys and (with local storage)
    /// the sealed files, while the server runs or not. Account keys are left out on purpose
    /// (see docs/backup.md). The passphrase comes from --passphrase-file or
    /// UPGATE_BACKUP_PASSPHRASE, at least 12 characters.
    Backup {
        /// The file to write; it must not exist.
        #[arg(long)]
        to: PathBuf,
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Write the manual pages (roff: upgate.1 and one per subcommand) into a directory, as
    /// the package installs them.
    #[command(hide = true)]
    Man {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Rebuild a data directory (--data-dir, new or empty) from a backup; with local
    /// storage the files go to the configured objects directory.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// A copy of the live data directory's keys/accounts: the account keys, which
        /// backups never hold. Without it no file sealed for an account key can be opened.
        #[arg(long)]
        keyring: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account; prints its id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        plan: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete an account and everything it holds. Its keys are destroyed first, so its
    /// files can never be read again, from backups or bucket replicas either.
    Delete {
        /// The account's id (acc_...).
        account_id: String,
        /// Confirms the deletion: it cannot be undone.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a console user; prints a one-time sign-in link (good for 24 hours) with which
    /// they choose a password. Only the operator grants the reviewer role.
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        /// admin, integration, reviewer or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token; prints the token once (only its hash is kept).
    Create {
        #[arg(long)]
        account: String,
        /// admin, integration, reviewer or viewer.
        #[arg(long)]
        role: String,
        /// A label shown in listings, e.g. "voice platform, production".
        #[arg(long)]
        name: Option<String>,
        /// Refuse the token after this long, e.g. 90d, 12h (default: never).
        #[arg(long)]
        expires_in: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List an account's tokens, one JSON object per line (never the secret).
    List {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a token by its id (tok_...); it is refused from then on.
    Revoke {
        /// The token's id, as `token list` shows it.
        token_id: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every sealed file from a local objects directory to the S3 bucket in [storage],
    /// verified; run it again to resume or to catch files written meanwhile.
    Migrate {
        /// Only "local".
        #[arg(long)]
        from: String,
        /// Only "s3" (the bucket configured in [storage]).
        #[arg(long)]
        to: String,
        /// The objects directory (default: data_dir/objects).
        #[arg(long)]
        from_path: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key: kind, id, creation time and state (current or old), one JSON line each.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Make a new current key (link, storage or attestation); older links, files and
    /// attestations keep working.
    Rotate {
        /// link, storage or attestation.
        kind: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove an old link key once no live link uses it.
    Retire {
        /// The key's id, as `keys list` shows it.
        id: u32,
        /// link (storage keys are never retired).
        #[arg(long, default_value = "link")]
        kind: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// Mint a credential for one gateway; prints it once (only its hash is kept).
    Create {
        /// A name for the gateway, e.g. gw1 (letters, digits, '.', '_', '-').
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// List the credentials, one JSON object per line (never the secret).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a credential by its id (gwc_...); the gateway holding it gets nothing more.
    Revoke {
        id: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file and list every problem with its fix.
    Check {
        /// The file to check (default: --config, else the built-in defaults).
        file: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

const EX_USAGE: u8 = 64;

/// The service on a stopped server's data directory, with its object store when `op` needs it.
async fn open_offline(
    config: &Config,
    op: &OpRequest,
) -> Result<std::sync::Arc<upgate_control::service::Service>, upgate_control::run::RunError> {
    let svc = upgate_control::run::open_service(config, Default::default())?;
    if op.needs_objects() {
        let store = upgate_control::run::open_store(config).await?;
        svc.set_objects(store, upgate_control::run::is_local(config));
    }
    Ok(svc)
}

fn load(common: &Common) -> Result<Config, ExitCode> {
    Config::load(common.config.as_deref(), common.data_dir.as_deref()).map_err(|e| {
        eprintln!("upgate: {e}");
        ExitCode::from(EX_USAGE)
    })
}

/// Directives added after the operator's own, so no `UPGATE_LOG` can lower them: sled
/// writes whole records (callers' numbers, file names, messages) into its trace and debug
/// lines, and logs carry no personal data.
const PRIVATE_TARGETS: &[&str] = &["sled=info"];

fn init_logging(format: LogFormat) {
    let mut filter =
        tracing_subscriber::EnvFilter::try_from_env("UPGATE_LOG").unwrap_or_else(|_| "info".into());
    for directive in PRIVATE_TARGETS {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour codes are for people at a terminal; in a file, a pipe or journald they
        // are noise that breaks grep.
        LogFormat::Text => builder.with_ansi(colour()).init(),
        // Event fields at the top level of each object, one object per line.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Colour only for a terminal, and not when the user asks for none (no-color.org).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the SIGTERM and SIGINT handlers now, and returns the future that resolves on
/// either. Installing them before the server starts matters: a handler that an `async fn`
/// installed on first poll would leave a window, after "upgate is running" is printed, in
/// which SIGTERM still kills the process without a drain (a supervisor's stop lands there).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}

/// `upgate.1`, and `upgate-<sub>.1` for every visible subcommand, as `--help` says them.
fn man_pages(command: clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = command
        .get_display_name()
        .unwrap_or(command.get_name())
        .to_string();
    let bin = command.get_bin_name().unwrap_or(command.get_name()).to_string();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let sub = sub
            .clone()
            .bin_name(format!("{bin} {}", sub.get_name()))
            .display_name(format!("{name}-{}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        man_pages(sub, dir)?;
    }
    Ok(())
}

/// The backup passphrase: the file's first line, else UPGATE_BACKUP_PASSPHRASE.
fn passphrase(file: Option<&std::path::Path>) -> Result<zeroize::Zeroizing<String>, ExitCode> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            eprintln!("upgate: --passphrase-file {}: {e}", path.display());
            ExitCode::from(EX_USAGE)
        })?,
        None => std::env::var("UPGATE_BACKUP_PASSPHRASE").map_err(|_| {
            eprintln!(
                "upgate: give the backup passphrase with --passphrase-file or UPGATE_BACKUP_PASSPHRASE"
            );
            ExitCode::from(EX_USAGE)
        })?,
    };
    let text = zeroize::Zeroizing::new(text);
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() < upgate_control::backup::MIN_PASSPHRASE {
        eprintln!(
            "upgate: the backup passphrase must be at least {} characters",
            upgate_control::backup::MIN_PASSPHRASE
        );
        return Err(ExitCode::from(EX_USAGE));
    }
    Ok(zeroize::Zeroizing::new(line.to_string()))
}

fn absolute(path: &std::path::Path) -> Result<PathBuf, ExitCode> {
    std::path::absolute(path).map_err(|e| {
        eprintln!("upgate: {}: {e}", path.display());
        ExitCode::from(EX_USAGE)
    })
}

/// `upgate restore`: offline, into a new data directory.
async fn restore(
    common: &Common,
    from: &std::path::Path,
    passphrase_file: Option<&std::path::Path>,
    keyring: Option<&std::path::Path>,
) -> ExitCode {
    let Some(data_dir) = common.data_dir.clone() else {
        eprintln!("upgate: name the directory to rebuild with --data-dir");
        return ExitCode::from(EX_USAGE);
    };
    let config = match load(common) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let passphrase = match passphrase(passphrase_file) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let objects = upgate_control::run::is_local(&config).then(|| config.objects_dir());
    match upgate_control::backup::restore(from, &passphrase, &data_dir, objects.as_deref(), keyring).await {
        Ok(r) => {
            println!("{}", serde_json::to_string(&r).expect("serializes"));
            if keyring.is_none() {
                eprintln!(
                    "upgate: no --keyring: files sealed for account keys cannot be opened until keys/accounts is copied in"
                );
            } else if r.unreadable > 0 {
                eprintln!(
                    "upgate: {} file(s) have no key in the keyring: their accounts were deleted (shredded) after this backup, or the keyring is not this installation's",
                    r.unreadable
                );
            }
            ExitCode::SUCCESS
        }
        Err(e @ upgate_control::backup::BackupError::Failed(_)) => {
            eprintln!("upgate: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("upgate: {e}");
            ExitCode::from(EX_USAGE)
        }
    }
}

/// Runs an operator request on the running server, or on the store directly when none runs.
async fn operate(common: &Common, op: OpRequest) -> ExitCode {
    let config = match load(common) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Opening the store creates the directory; run from the wrong place, that would
    // quietly start a second, empty installation instead of reaching the real one.
    if !config.data_dir.is_dir() {
        eprintln!(
            "upgate: the data directory {} does not exist; run from the directory that holds it, \
             or name it with --data-dir or data_dir in --config (only `upgate serve` creates it)",
            config.data_dir.display()
        );
        return ExitCode::from(EX_USAGE);
    }
    let answer = match ops::call_running(&config.data_dir, &op).await {
        Err(ClientError::NotRunning(_)) => match open_offline(&config, &op).await {
            Ok(svc) => ops::execute(&svc, op).await.map_err(|p| p.detail),
            Err(e) => Err(e.to_string()),
        },
        other => other.map_err(|e| e.to_string()),
    };
    match answer {
        Ok(v) => {
            let result = v["result"].as_str().unwrap_or_default();
            if !result.is_empty() {
                println!("{result}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("upgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Threads for blocking work (spool writes and fsyncs, image checks, the store's reads).
/// tokio's default of 512 let a burst of finishing uploads start hundreds of threads, each
/// keeping its stack and allocator cache after the burst; the disk is no faster with more
/// than a few dozen writers in flight (docs/performance.md, S3).
const MAX_BLOCKING_THREADS: usize = 64;
/// An idle blocking thread exits after this long (tokio: 10 s). Memory freed by other threads
/// into its allocator heap is returned only when it exits, so after a burst RSS stayed at
/// the peak for ten seconds; starting a thread again costs microseconds.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(Cli::parse())),
        Err(e) => {
            eprintln!("upgate: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// 0, or the error on stderr with 64 for a configuration the operator must change, else 1.
fn exit_code(result: Result<(), upgate_control::run::RunError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ upgate_control::run::RunError::Config(_)) => {
            eprintln!("upgate: {e}");
            ExitCode::from(EX_USAGE)
        }
        Err(e) => {
            eprintln!("upgate: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Plane {
    Both,
    Control,
    Gateway,
}

async fn run_server(common: &Common, plane: Plane) -> ExitCode {
    let config = match load(common) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging(config.log.format);
    let result = match plane {
        Plane::Both => upgate_control::run::serve(config, shutdown_signal()).await,
        Plane::Control => upgate_control::run::control(config, shutdown_signal()).await,
        Plane::Gateway => upgate_control::run::gateway(config, shutdown_signal()).await,
    };
    exit_code(result)
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(common) => run_server(&common, Plane::Both).await,
        Command::Control(common) => run_server(&common, Plane::Control).await,
        Command::Gateway(common) => run_server(&common, Plane::Gateway).await,
        Command::Store {
            command:
                StoreCommand::Migrate {
                    from,
                    to,
                    from_path,
                    common,
                },
        } => {
            if from != "local" || to != "s3" {
                eprintln!("upgate: only --from local --to s3 is supported");
                return ExitCode::from(EX_USAGE);
            }
            let config = match load(&common) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let result = upgate_control::run::migrate_store(&config, from_path.as_deref()).await;
            exit_code(result.map(|report| {
                println!(
                    "copied {} file(s) ({} bytes), {} already in the bucket; every copy verified",
                    report.copied, report.bytes_copied, report.already_there
                );
            }))
        }
        Command::Keys { command } => match command {
            KeysCommand::List { common } => operate(&common, OpRequest::ListKeys).await,
            KeysCommand::Rotate { kind, common } => operate(&common, OpRequest::RotateKey { kind }).await,
            KeysCommand::Retire { id, kind, common } => {
                operate(&common, OpRequest::RetireKey { kind, id }).await
            }
        },
        Command::GatewayCredential { command } => match command {
            CredentialCommand::Create { name, common } => {
                operate(&common, OpRequest::CreateGatewayCredential { name }).await
            }
            CredentialCommand::List { common } => operate(&common, OpRequest::ListGatewayCredentials).await,
            CredentialCommand::Revoke { id, common } => {
                operate(&common, OpRequest::RevokeGatewayCredential { id }).await
            }
        },
        Command::User {
            command:
                UserCommand::Create {
                    account,
                    email,
                    role,
                    common,
                },
        } => operate(&common, OpRequest::CreateUser { account, email, role }).await,
        Command::Account {
            command: AccountCommand::Create { name, plan, common },
        } => operate(&common, OpRequest::CreateAccount { name, plan }).await,
        Command::Account {
            command:
                AccountCommand::Delete {
                    account_id,
                    yes,
                    common,
                },
        } => {
            if !yes {
                eprintln!("upgate: deleting an account destroys its files for good; add --yes to confirm");
                return ExitCode::from(EX_USAGE);
            }
            operate(&common, OpRequest::DeleteAccount { account: account_id }).await
        }
        Command::Backup {
            to,
            passphrase_file,
            common,
        } => {
            let passphrase = match passphrase(passphrase_file.as_deref()) {
                Ok(p) => p,
                Err(code) => return code,
            };
            // The server writes the file: it needs the whole path, not ours relative to here.
            let to = match absolute(&to) {
                Ok(to) => to,
                Err(code) => return code,
            };
            operate(
                &common,
                OpRequest::Backup {
                    to,
                    passphrase: passphrase.to_string(),
                },
            )
            .await
        }
        Command::Man { dir } => match man_pages(<Cli as clap::CommandFactory>::command(), &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("upgate: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Command::Restore {
            from,
            passphrase_file,
            keyring,
            common,
        } => restore(&common, &from, passphrase_file.as_deref(), keyring.as_deref()).await,
        Command::Token {
            command:
                TokenCommand::Create {
                    account,
                    role,
                    name,
                    expires_in,
                    common,
                },
        } => {
            let op = OpRequest::CreateToken {
                account,
                role,
                name,
                expires_in,
            };
            operate(&common, op).await
        }
        Command::Token {
            command: TokenCommand::List { account, common },
        } => operate(&common, OpRequest::ListTokens { account }).await,
        Command::Token {
            command: TokenCommand::Revoke { token_id, common },
        } => operate(&common, OpRequest::RevokeToken { token: token_id }).await,
        Command::Config {
            command: ConfigCommand::Check { file, common },
        } => {
            let path = file.or(common.config);
            match Config::load(path.as_deref(), common.data_dir.as_deref()) {
                Ok(_) => {
                    println!("ok");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    for err in &e.0 {
                        println!("{err}");
                    }
                    eprintln!("upgate: {} problem(s) found", e.0.len());
                    ExitCode::from(EX_USAGE)
                }
            }
        }
    }
}
