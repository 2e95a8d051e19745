//! Log output through `tracing`, at `LOG_LEVEL`.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber once; later calls (tests, several apps) are no-ops.
pub fn init(level: &str) {
    let level = level.trim().to_ascii_lowercase();
    let known = ["trace", "debug", "info", "warn", "error"].contains(&level.as_str());
    let directive = if known { level.as_str() } else { "info" };
    let filter = EnvFilter::new(format!(
        "{directive},tokio_postgres=warn,refinery_core=warn,hyper=warn"
    ));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok();
    if installed && !known {
        tracing::warn!(value = %level, "LOG_LEVEL is not one of trace, debug, info, warn, error; using info");
    }
}
