//! The `grite lock` command line: the only room that composes the others.
//! It parses arguments, runs the command on [`crate::Locks`], and prints
//! human text or the JSON envelope.

mod args;
mod check;
mod commands;
mod error;
mod fields;
mod history;
mod hooks;
mod indicator;
mod inputs;
mod notices;
mod output;
mod output_json;
mod run;
mod signals;
mod status_view;
mod store_error;
mod wait;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use clap::error::ErrorKind;

use args::Cli;
use error::{CliError, exit};

/// Runs the command line `args` (program name first) and returns the exit
/// code. Output goes to standard output and standard error.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // With --json the failure is still one JSON object on stdout.
            let json = args.iter().skip(1).any(|a| a == "--json");
            if json {
                return fail(&CliError::usage(&clap_reason(&e.to_string())), true);
            }
            let _ = e.print();
            return ExitCode::from(exit::INVALID_ARGS);
        }
    };
    // What needs no repository, and prints no envelope.
    match &cli.command {
        args::Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "grite", &mut script);
            print_stdout(&String::from_utf8_lossy(&script));
            return ExitCode::SUCCESS;
        }
        args::Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            let mut roff = Vec::new();
            return match page.render(&mut roff) {
                Ok(()) => {
                    print_stdout(&String::from_utf8_lossy(&roff));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&CliError::usage(&e.to_string()), cli.json),
            };
        }
        _ => {}
    }
    // A ref lock file left by an interrupted process blocks every later
    // write until someone removes it: on SIGINT, SIGTERM or SIGHUP, finish
    // the ref transaction in flight, remove the lock files still held, and
    // die as by default. (Help, versions and usage errors take none, and
    // do not start the thread this needs.)
    signals::install();
    let clock = inputs::clock(&cli);
    let actor_env = std::env::var(inputs::ACTOR_ENV)
        .ok()
        .filter(|a| !a.is_empty());
    match commands::run(&cli, clock.as_ref(), actor_env) {
        Ok((report, notices)) => {
            if cli.json {
                // Written as it is serialized; a closed pipe is ignored.
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                let _ = output_json::write_success_json(&mut out, &report, &notices)
                    .and_then(|()| out.flush());
            } else {
                let human = output::success_human(&report, &notices, clock.now());
                if !cli.quiet {
                    print_stdout(&human.out);
                }
                if !human.warn.is_empty() {
                    let _ = std::io::stderr().write_all(human.warn.as_bytes());
                }
            }
            ExitCode::from(report.exit_code())
        }
        Err(error) => fail(&error, cli.json),
    }
}

fn fail(error: &CliError, json: bool) -> ExitCode {
    if json {
        print_stdout(&format!("{}\n", output_json::error_json(error)));
    } else {
        let _ = std::io::stderr().write_all(output::error_human(error).as_bytes());
    }
    error.exit_code()
}

/// Writes to standard output, ignoring a closed pipe (`grite lock status | head`).
fn print_stdout(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// Clap's message without its usage and hint paragraphs, on one line.
fn clap_reason(text: &str) -> String {
    let reason = text.split("\n\n").next().unwrap_or_default();
    reason
        .trim_start_matches("error: ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
