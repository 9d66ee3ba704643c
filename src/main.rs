//! `nndl`: train the book's networks on MNIST from the command line.
//!
//! `nndl train --net network1|network2|network3 …` (or just `nndl`, which trains network3 with
//! the book's chapter-3 parameters) prints the backend, the load time, each epoch's test
//! accuracy as the book's programs do, and the training time. Each command maps its
//! arguments ([`cli`]) onto a request that the library's [`nndl::run`] checks and runs.

mod cli;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;

use cli::{Cli, Command, TrainArgs, TuneArgs, TuneCommand};
use nndl::run::{self, RunError};
use nndl::train::Stop;

/// Exit code for arguments that cannot be run with, as clap uses for parse errors.
const USAGE: u8 = 2;
/// Exit code of a run ended by Ctrl-C, as a shell reports a process ended by SIGINT.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Train(args)) => train(&args),
        Some(Command::Bench(args)) => {
            run::bench::bench(&args.request()).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Eval(args)) => run::eval::eval(
            &args.model,
            args.on,
            args.lambda,
            &args.data,
            args.validation_size,
            args.outputs.as_deref(),
        )
        .map(|()| ExitCode::SUCCESS),
        Some(Command::Plot(args)) => {
            run::plot(&args.runs, args.title.as_deref(), &args.output).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Predict(args)) => {
            run::eval::predict(&args.model, &args.images).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Book(args)) => book(&args),
        Some(Command::Figure(args)) => match args.list {
            true => {
                run::figure::list();
                Ok(ExitCode::SUCCESS)
            }
            false => run::figure::figure(&args.request()).map(|()| ExitCode::SUCCESS),
        },
        Some(Command::Vote(args)) => {
            run::eval::vote(&args.models, args.on, &args.data, args.validation_size)
                .map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Tune(args)) => tune(&args),
        Some(Command::Expand(args)) => {
            run::expand::expand(&args.request()).map(|_| ExitCode::SUCCESS)
        }
        Some(Command::Inspect(args)) => {
            run::inspect::inspect(&args.request()).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Export(args)) => {
            run::export::export(&args.model, args.format, &args.out).map(|()| ExitCode::SUCCESS)
        }
        None => train(&cli.train),
    };
    result.unwrap_or_else(|err| {
        let code = if err.is_usage() { USAGE } else { 1 };
        eprintln!("error: {:#}", anyhow::Error::new(err));
        ExitCode::from(code)
    })
}

/// Ends training after the current mini-batch on the first Ctrl-C (`stop` is set), and exits
/// at once on the second. `false` if no handler could be installed.
fn on_ctrl_c(stop: &Arc<AtomicBool>) -> bool {
    let flag = Arc::clone(stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!("\nInterrupted: stopping after this mini-batch (Ctrl-C again to quit at once)");
    })
    .is_ok()
}

/// `nndl tune`: runs the study; Ctrl-C as for `train`, the study resuming where it stopped.
/// `tune show|export|plot` read a study.
fn tune(args: &TuneArgs) -> Result<ExitCode, RunError> {
    use nndl::run::tune_report;
    match &args.command {
        Some(TuneCommand::Show(a)) => {
            return tune_report::show(&a.storage, a.study.as_deref(), a.sort)
                .map(|()| ExitCode::SUCCESS)
        }
        Some(TuneCommand::Export(a)) => {
            return tune_report::export(&a.storage, &a.study, &a.output).map(|()| ExitCode::SUCCESS)
        }
        Some(TuneCommand::Plot(a)) => {
            return tune_report::plot(&a.storage, &a.study, &a.output).map(|_| ExitCode::SUCCESS)
        }
        Some(TuneCommand::List(a)) => {
            return tune_report::show(&a.storage, None, Default::default())
                .map(|()| ExitCode::SUCCESS)
        }
        Some(TuneCommand::Delete(a)) => {
            return tune_report::delete(&a.storage, &a.study, a.yes).map(|()| ExitCode::SUCCESS)
        }
        Some(TuneCommand::Migrate(a)) => {
            return tune_report::migrate(&a.storage).map(|()| ExitCode::SUCCESS)
        }
        None => {}
    }
    let request = args.search.request()?.check()?;
    let stop = Arc::new(AtomicBool::new(false));
    on_ctrl_c(&stop);
    run::tune::tune(&request, Arc::clone(&stop))?;
    Ok(match stop.load(Ordering::SeqCst) {
        true => ExitCode::from(INTERRUPTED),
        false => ExitCode::SUCCESS,
    })
}

/// `nndl book`: lists the rows, runs one or several, or writes the table of those recorded;
/// Ctrl-C ends it as `train`.
fn book(args: &cli::BookArgs) -> Result<ExitCode, RunError> {
    if args.list {
        run::book::list();
        return Ok(ExitCode::SUCCESS);
    }
    let request = args.request();
    let stop = Arc::new(AtomicBool::new(false));
    let handled = on_ctrl_c(&stop);
    run::book_record::book(&request, handled.then_some(Arc::clone(&stop)))?;
    Ok(match stop.load(Ordering::SeqCst) {
        true => ExitCode::from(INTERRUPTED),
        false => ExitCode::SUCCESS,
    })
}

/// `nndl train`. The first Ctrl-C ends training after the current mini-batch and still writes
/// the files asked for; a second one exits at once.
fn train(args: &TrainArgs) -> Result<ExitCode, RunError> {
    let request = args.request()?.check()?;
    let stop = Arc::new(AtomicBool::new(false));
    let handled = on_ctrl_c(&stop);
    let history = run::train::train(&request, handled.then_some(stop))?;
    Ok(match history.stop {
        Stop::Interrupted { .. } => ExitCode::from(INTERRUPTED),
        _ => ExitCode::SUCCESS,
    })
}
