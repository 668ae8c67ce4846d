//! `rt-tui`: the terminal client. `rt-tui connect` opens the UI; the other
//! subcommands script one app each and print JSON lines.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod terminal;

/// rt terminal client.
#[derive(Debug, Parser)]
#[command(
    name = "rt-tui",
    version,
    about = "rt terminal client: the ticker, canvas, Q&A board and text panes, plus scripting subcommands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each lives in `src/cmd/<name>.rs`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Open the terminal UI (starts an embedded server if none is running).
    Connect(cmd::connect::Args),
    /// Print ticker quotes as JSON lines.
    Ticker(cmd::ticker::Args),
    /// Listen to, ask, answer and vote on the Q&A board.
    Qa(cmd::qa::Args),
    /// Read, edit or follow a collaborative document (JSON output).
    Doc(cmd::doc::Args),
    /// Drawing board: listen (JSON lines), draw a line, clear.
    Draw(cmd::draw::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rt-tui: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Connect(args) => cmd::connect::run(args).await,
            Command::Ticker(args) => cmd::ticker::run(args).await,
            Command::Qa(args) => cmd::qa::run(args).await,
            Command::Doc(args) => cmd::doc::run(args).await,
            Command::Draw(args) => cmd::draw::run(args).await,
        }
    });
    // Background tasks (an embedded server's connections) must not hold the
    // exit hostage.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rt-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
