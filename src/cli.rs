//! The command line: arguments, the command they select, exit codes, and printing an error
//! once with its causes. No validation, networking or formatting logic lives here.

use crate::run::Plan;
use crate::steps::OnrampWorld;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::validate::files::{self, Event, Input};
use crate::validate::output::{Format, Writer};
use crate::validate::{Tier, Validator};

use crate::infra::console::{ColorChoice, Console, Verbosity};
use crate::infra::exit;

/// onramp: prove a Patient Access app's FHIR R4 support and assemble the evidence.
#[derive(Debug, Parser)]
#[command(name = "onramp", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Print only failures, warnings and the verdict (no progress, no log lines).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Also print every HTTP exchange and browser action as it happens, and debug logs.
    #[arg(long, short, global = true)]
    verbose: bool,

    /// Colour: auto (terminals, unless NO_COLOR is set), always, or never.
    #[arg(long, value_enum, global = true, value_name = "WHEN", default_value_t)]
    color: ColorChoice,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate FHIR R4 (4.0.1) resources (JSON, Bundles, NDJSON): the R4 JSON Schema, the R4
    /// StructureDefinitions and the IG profiles they declare (CARIN, US Core, Plan-Net, USDF,
    /// any --ig), every tier unless --tier says otherwise.
    #[command(after_help = VALIDATE_AFTER_HELP)]
    Validate(ValidateArgs),
    /// Serve the embedded demo health plan (auth pages, token endpoint, FHIR R4 API) until Ctrl-C.
    #[command(after_help = SANDBOX_AFTER_HELP)]
    Sandbox(SandboxArgs),
    /// Run the conformance features against a target (the embedded sandbox by default) and
    /// write the report.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Write editable copies of the features, a target file that runs them and an
    /// onboarding manifest into a folder.
    Init(InitArgs),
    /// Check the production-access items of the onboarding manifest.
    #[command(
        after_help = "Exit status: 0 every item is ready, 1 some are missing or need fixing, 2 the manifest cannot be read."
    )]
    Checklist(ChecklistArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one per command into a folder.
    #[command(
        after_help = "Install: onramp man --dir ~/.local/share/man/man1 (then `man onramp`, `man onramp-run`, ...)."
    )]
    Man(ManArgs),
}

#[derive(Debug, Args)]
struct ManArgs {
    /// Write onramp.1 and a page per command (onramp-run.1, onramp-validate.1, ...) into
    /// this folder instead of printing onramp(1).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

const COMPLETIONS_AFTER_HELP: &str = "Install, for example:
  bash: onramp completions bash > ~/.local/share/bash-completion/completions/onramp
  zsh:  onramp completions zsh > ~/.zfunc/_onramp   (with fpath+=~/.zfunc before compinit)
  fish: onramp completions fish > ~/.config/fish/completions/onramp.fish
  powershell: onramp completions powershell >> $PROFILE";

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct ChecklistArgs {
    /// The onboarding manifest.
    #[arg(long, value_name = "FILE", default_value = crate::checklist::MANIFEST_NAME)]
    manifest: PathBuf,

    /// Also write checklist.md and the email drafts (emails/*.eml) into this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// The target whose payer the drafts are addressed to ([payer] in its file)
    /// [default: sandbox, whose payer is the guide's].
    #[arg(long, value_name = "NAME|FILE")]
    target: Option<String>,
}

const RUN_AFTER_HELP: &str = "\
Targets: sandbox (default; the embedded demo health plan), sandbox:bluebutton (the embedded
sandbox as a Blue Button 2.0-like plan; once sandbox-bluebutton), 1up-demo (the payer guide's demo environment; set
ONRAMP_1UP_CLIENT_ID, ONRAMP_1UP_CLIENT_SECRET and ONRAMP_1UP_REDIRECT_URI),
bluebutton-sandbox (CMS Blue Button 2.0's sandbox; set ONRAMP_BB_CLIENT_ID,
ONRAMP_BB_CLIENT_SECRET and ONRAMP_BB_REDIRECT_URI), or a TOML target file (onramp init
writes a commented one).

Outputs in OUT/<run-id>/: report.html, summary.json, junit.xml, cucumber.json,
checklist.md, emails/, screenshots/; OUT/latest points at the newest run. In GitHub Actions
(GITHUB_STEP_SUMMARY set) a Markdown job summary is appended too; examples/ci/ in onramp's
repository holds GitHub Actions and GitLab CI jobs.

Exit status: 0 conformant, 1 conformance failures (the payer broke a rule), 2 usage or
configuration error (the features or the target do not fit, an unknown step), 3 could not
test (no browser; the payer unreachable, not answering in time or answering 5xx/429;
--deadline reached), 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (the report is still
written).";

#[derive(Debug, Args)]
struct RunArgs {
    /// sandbox, sandbox:bluebutton (offline), 1up-demo, bluebutton-sandbox (real payers'
    /// demo environments), or a target file.
    /// Repeat it to test several targets at once: each gets its own report folder, and
    /// index.html, junit.xml and summary.json cover them all.
    #[arg(long, value_name = "NAME|FILE")]
    target: Vec<String>,

    /// With several targets: how many run at the same time [default: all of them, at most 4].
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Run the .feature files in this folder instead of the shipped ones.
    #[arg(long, value_name = "DIR")]
    features: Option<PathBuf>,

    /// Only scenarios whose tags match, e.g. "not @access-control".
    #[arg(long, value_name = "EXPR")]
    tags: Option<String>,

    /// Folder for the reports.
    #[arg(long, value_name = "DIR", default_value = "onramp-report")]
    out: PathBuf,

    /// Use this WebDriver endpoint instead of starting chromedriver.
    #[arg(long, value_name = "URL")]
    webdriver: Option<String>,

    /// Show the browser window.
    #[arg(long)]
    headed: bool,

    /// Add a fault to the embedded sandbox (repeatable); see `onramp sandbox --help`.
    #[arg(long = "sandbox-fault", value_name = "SPEC")]
    sandbox_faults: Vec<crate::sandbox::Fault>,

    /// The onboarding manifest for the report's checklist [default: ./onboarding.toml if present].
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// Fail the run (exit 1) unless every production-access item is ready.
    #[arg(long)]
    require_checklist: bool,

    /// The recording of the browser steps: auto (an MP4 when ffmpeg is on PATH, else an
    /// animated PNG), mp4, apng, or none.
    #[arg(long, value_enum, value_name = "KIND", default_value_t)]
    recording: crate::report::recording::Mode,

    /// Also print each failed step as a CI annotation on its feature file's line
    /// (github: `::error file=…,line=…::…` workflow commands).
    #[arg(long, value_enum, value_name = "FORMAT")]
    annotations: Option<Annotations>,

    /// Check everything and print the plan (targets, scenarios in order, the browser, each
    /// remote host reached or not), then stop without running anything.
    #[arg(long)]
    dry_run: bool,

    /// Stop at the first failed step (the report is still written).
    #[arg(long)]
    fail_fast: bool,

    /// The longest the whole run may take, e.g. 10m; what ran by then is reported, and the
    /// run exits 3.
    #[arg(long, value_name = "DURATION", value_parser = parse_deadline)]
    deadline: Option<Duration>,
}

/// `--deadline`: a duration as the target files write one (`90s`, `10m`).
fn parse_deadline(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as 90s or 10m"))
}

/// `--annotations`: the CI system whose annotation format to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Annotations {
    /// GitHub Actions workflow commands.
    Github,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Folder to write into.
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// Start from a built-in target (sandbox, sandbox:bluebutton, 1up-demo,
    /// bluebutton-sandbox): its target file and its sign-in feature.
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,

    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
}

const SANDBOX_AFTER_HELP: &str = "\
Faults (--fault, repeatable) make the sandbox break one rule on purpose, e.g. latency=300ms,
status=503@0.2, rate-limit=5/s, malformed-json:Type, expire-codes, ignore-pkce,
token-field:NAME=JSON, ignore-scopes, revocation-noop. An unknown one lists them all;
the README says what each does.

Exit status: 0 after Ctrl-C, 2 for bad arguments or an unusable --data folder, 3 when the
address cannot be used.";

#[derive(Debug, Args)]
struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// Which payer to imitate: demo-plan (the payer guide's demo health plan) or
    /// bluebutton (a CMS Blue Button 2.0-like plan).
    #[arg(long, value_enum, default_value_t)]
    persona: crate::sandbox::Persona,

    /// Members of the generated plan; the first is the guide's test member, John Allen
    /// [default: 3, or 100 for bluebutton].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    members: Option<u64>,

    /// ExplanationOfBenefit per member (cycling professional, inpatient, outpatient, pharmacy).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    eobs_per_member: u64,

    /// Practitioners in the Provider Directory (five PractitionerRoles each), served
    /// without a token under /directory/r4 beside the drug formulary under /formulary/r4.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    directory_size: u64,

    /// Misbehave on purpose (repeatable); see below.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<crate::sandbox::Fault>,

    /// Serve this folder of FHIR JSON/NDJSON files (grouped per Patient) instead.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// PKCE at the authorization endpoint [default: optional, or required for bluebutton].
    #[arg(long, value_enum)]
    pkce: Option<crate::sandbox::PkceMode>,

    /// Also accept this redirect URI for the demo client (repeatable); loopback http URIs
    /// are always accepted.
    #[arg(long = "redirect-uri", value_name = "URL")]
    redirect_uris: Vec<String>,
}

const VALIDATE_AFTER_HELP: &str = "\
PATH may be a .json file (one resource or a Bundle), an .ndjson/.jsonl file (one resource per
line), a Bulk Data export's manifest (the $export status response: every NDJSON file its
output lists, by local path or file: URL), a directory (searched recursively for those), or -
for standard input. --format ndjson makes a streaming filter: one finding per line on standard
output, nothing for valid documents (unless --valid), the summary on standard error.

Exit status: 0 every resource is valid, 1 there are findings, 2 a usage error or an unreadable path.";

#[derive(Debug, Args)]
struct ValidateArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// How far to validate: `schema` (the official R4 JSON Schema, as ajv 8 judges),
    /// `structure` (plus the R4 StructureDefinitions), `profile` (plus the profiles resources
    /// declare or `--profile` gives, from the shipped IGs — CARIN Blue Button 2.0.0, US Core
    /// 6.1.0 and 3.1.1, Plan-Net 1.1.0, US Drug Formulary 2.0.1 — and any `--ig`).
    #[arg(long, value_enum, default_value_t = Tier::Profile)]
    tier: Tier,

    /// Check resources of the profile's type against this profile (canonical URL) whether
    /// they declare it or not; repeatable.
    #[arg(long = "profile", value_name = "URL")]
    profiles: Vec<String>,

    /// Load an IG: a FHIR package file (`package.tgz`, as the IG publishes it), or a shipped
    /// package by `name@version` (`hl7.fhir.us.core@3.1.1`). Its version is the one
    /// unversioned declarations of its profiles resolve to; repeatable.
    #[arg(long = "ig", value_name = "FILE.tgz|NAME@VERSION")]
    igs: Vec<String>,

    /// Count, per profile, how many resources carry each of its must-support elements (as
    /// Inferno judges Must Support); one never present is a warning.
    #[arg(long)]
    must_support: bool,

    /// A folder of ValueSet JSON files with `expansion.contains`: their codes are judged
    /// where the packages cannot list them (a VSAC value set you expanded yourself).
    #[arg(long, value_name = "DIR")]
    terminology: Option<PathBuf>,

    /// Also write a line for every document without findings: `FILE[:LINE]  valid` in text,
    /// `{"file","line","valid":true,"resources"}` in NDJSON, so that every input line is
    /// accounted for (not with --format json, whose counts say how many were valid).
    #[arg(long)]
    valid: bool,

    /// Worker threads [default: all cores].
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Files, directories, or - for standard input.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<String>,
}

/// An error that ends a command before it could do its job.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start {jobs} worker threads")]
    Pool {
        jobs: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    #[error("cannot write the output")]
    Output(#[source] io::Error),
    #[error(transparent)]
    Profile(#[from] crate::validate::UnknownProfile),
    #[error("--profile needs --tier profile (the default), not --tier {}", tier.name())]
    ProfileNeedsTier { tier: Tier },
    #[error(
        "--valid writes a line per valid document: use it with --format ndjson or text (the JSON output's `resources` and `invalid` say how many were valid)"
    )]
    ValidNeedsLines,
    #[error("{0}")]
    Ig(String),
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    #[error("the sandbox did not start")]
    Sandbox(#[source] crate::sandbox::SandboxError),
    #[error(transparent)]
    Run(crate::run::RunError),
    #[error(transparent)]
    Manifest(#[from] crate::checklist::ManifestError),
    #[error("{path} exists; pass --force to overwrite it")]
    Exists { path: PathBuf },
    #[error("no preset \"{name}\"; the presets are the built-in targets: {}", crate::config::built_in_names().join(", "))]
    UnknownPreset { name: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Unreadable { .. } => exit::USAGE,
            CliError::Sandbox(crate::sandbox::SandboxError::Data(_)) => exit::USAGE,
            CliError::Run(error) => error.exit_code(),
            CliError::Exists { .. }
            | CliError::UnknownPreset { .. }
            | CliError::Manifest(_)
            | CliError::Profile(_)
            | CliError::ProfileNeedsTier { .. }
            | CliError::ValidNeedsLines
            | CliError::Ig(_) => exit::USAGE,
            CliError::Write { .. } => exit::ENVIRONMENT,
            CliError::Pool { .. }
            | CliError::Output(_)
            | CliError::Runtime(_)
            | CliError::Sandbox(_) => exit::ENVIRONMENT,
        }
    }
}

/// Parse the command line, run the command, and turn the outcome into an exit code.
pub fn main() -> ExitCode {
    let parsed = {
        use clap::{CommandFactory as _, FromArgMatches as _};
        // Help and usage errors follow `--color` too (clap decides their colour itself).
        let command = match color_asked(std::env::args_os()) {
            Some(ColorChoice::Always) => Cli::command().color(clap::ColorChoice::Always),
            Some(ColorChoice::Never) => Cli::command().color(clap::ColorChoice::Never),
            Some(ColorChoice::Auto) | None => Cli::command(),
        };
        command
            .try_get_matches()
            .and_then(|matches| Cli::from_arg_matches(&matches))
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            report(&error);
            ExitCode::from(error.exit_code())
        }
    }
}

/// The `--color` the arguments ask for, read before clap parses them (the last one wins, as
/// clap's own would).
fn color_asked(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<ColorChoice> {
    use clap::ValueEnum as _;
    let mut asked = None;
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--color") {
            Some("") => args.next(),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        };
        if let Some(choice) = value.and_then(|v| ColorChoice::from_str(&v, true).ok()) {
            asked = Some(choice);
        }
    }
    asked
}

/// Print an error once, with its chain of causes.
fn report(error: &dyn std::error::Error) {
    eprintln!(
        "onramp: {}",
        crate::infra::text::inert_lines(&crate::infra::cause::with_causes(error))
    );
}

fn run(cli: Cli) -> Result<u8, CliError> {
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let console = Console::detect(verbosity, cli.color);
    if matches!(cli.command, Command::Sandbox(_) | Command::Run(_)) {
        // Before anything else: a signal from now on stops the command the way it says
        // (the report written, marked interrupted), whenever it comes.
        crate::infra::stop::install();
    }
    match cli.command {
        Command::Validate(args) => validate(args, console),
        Command::Sandbox(args) => sandbox(args, console),
        Command::Run(args) => run_features(args, console),
        Command::Init(args) => init(args, console),
        Command::Checklist(args) => checklist(args, console),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "onramp", &mut io::stdout());
            Ok(exit::OK)
        }
        Command::Man(args) => man(args.dir.as_deref()),
    }
}

/// `onramp man`: onramp(1) on standard output, or every page into `dir`.
fn man(dir: Option<&Path>) -> Result<u8, CliError> {
    let command = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(command)
            .render(&mut io::stdout())
            .map_err(CliError::Output)?;
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(dir)
        .and_then(|()| clap_mangen::generate_to(command, dir))
        .map_err(|source| CliError::Write {
            path: dir.to_owned(),
            source,
        })?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| CliError::Write {
            path: dir.to_owned(),
            source,
        })?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with("onramp") && name.ends_with(".1"))
        .collect();
    pages.sort();
    println!("onramp: wrote {} into {}/", pages.join(", "), dir.display());
    Ok(exit::OK)
}

fn validate(args: ValidateArgs, console: Console) -> Result<u8, CliError> {
    let inputs: Vec<Input> = args.paths.iter().map(|p| Input::parse(p)).collect();
    for input in &inputs {
        if let Input::Path(path) = input
            && let Err(source) = std::fs::metadata(path)
        {
            return Err(CliError::Unreadable {
                path: path.clone(),
                source,
            });
        }
    }
    let jobs = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("onramp-validate-{i}"))
        .stack_size(crate::validate::STACK_SIZE)
        .build()
        .map_err(|source| CliError::Pool { jobs, source })?;

    crate::validate::load_igs(&args.igs, args.terminology.as_deref()).map_err(CliError::Ig)?;
    let validator = Validator::new(args.tier)
        .with_profiles(&args.profiles)
        .map_err(CliError::Profile)?
        .with_parallel_entries(true)
        .with_must_support(args.must_support);
    if !args.profiles.is_empty() && args.tier != Tier::Profile {
        return Err(CliError::ProfileNeedsTier { tier: args.tier });
    }
    if args.valid && args.format == Format::Json {
        return Err(CliError::ValidNeedsLines);
    }
    let progress = progress_bar(&inputs, console);
    let started = std::time::Instant::now();
    let stdout = io::stdout().lock();
    let mut writer = Writer::begin(args.format, io::BufWriter::new(stdout), io::stderr())
        .map_err(CliError::Output)?
        .with_console(console)
        .with_valid(args.valid);
    let mut failed: Option<io::Error> = None;
    files::check_inputs(&validator, inputs, &pool, |event| {
        if failed.is_some() {
            return;
        }
        if let Event::Progress(bytes) = event {
            progress.inc(bytes);
            progress.set_message(format!("{} resources", writer.totals().resources));
            return;
        }
        // Only events that print take the bar off the terminal; the rest just count.
        let prints = match &event {
            Event::Checked { checked, .. } => args.valid || !checked.findings.is_empty(),
            Event::Unreadable { .. } => true,
            Event::FileStarted | Event::Progress(_) => false,
        };
        let written = if prints {
            progress.suspend(|| writer.event(event))
        } else {
            writer.event(event)
        };
        if let Err(error) = written {
            failed = Some(error);
        }
    });
    progress.finish_and_clear();
    if let Some(error) = failed {
        return Err(CliError::Output(error));
    }
    let totals = writer.finish().map_err(CliError::Output)?;
    if console.verbose() {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "onramp: validated {} in {seconds:.2} s ({:.0} resources/s) on {jobs} thread{}",
            crate::validate::output::plural(totals.resources, "resource"),
            totals.resources as f64 / seconds.max(1e-9),
            if jobs == 1 { "" } else { "s" }
        );
    }
    let _ = io::stderr().flush();
    Ok(if totals.unreadable > 0 {
        exit::USAGE
    } else if totals.findings > 0 {
        exit::FAILURES
    } else {
        exit::OK
    })
}

/// A progress bar on standard error, only when it is a terminal (and not `--quiet`).
fn progress_bar(inputs: &[Input], console: Console) -> ProgressBar {
    if !console.progress {
        return ProgressBar::hidden();
    }
    let bar = match files::total_bytes(inputs) {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(
                    "{spinner} validating [{bar:30}] {bytes}/{total_bytes} · {msg} · {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} validating · {bytes} read · {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::validate::STACK_SIZE)
        .build()
        .map_err(CliError::Runtime)
}

/// Log to standard error: `RUST_LOG` if set, else onramp's own messages at the level the
/// verbosity asks for (warnings when quiet, debug when verbose); in colour only when
/// standard error takes it.
fn init_logging(console: Console) {
    let level = match console.verbosity {
        Verbosity::Quiet => "onramp=warn",
        Verbosity::Normal => "onramp=info",
        Verbosity::Verbose => "onramp=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(console.color_err)
        .with_target(false)
        .try_init();
}

fn sandbox(args: SandboxArgs, console: Console) -> Result<u8, CliError> {
    use crate::sandbox::{Client, Sandbox, SandboxConfig};
    init_logging(console);
    let persona = args.persona;
    let config = SandboxConfig {
        persona,
        host: args.host,
        port: args.port,
        members: args.members.map_or(persona.default_members(), |m| {
            usize::try_from(m).unwrap_or(usize::MAX)
        }),
        eobs_per_member: usize::try_from(args.eobs_per_member).unwrap_or(usize::MAX),
        directory_size: usize::try_from(args.directory_size).unwrap_or(usize::MAX),
        data: args.data,
        faults: args.faults,
        pkce: args.pkce.unwrap_or(persona.default_pkce()),
        // The demo client, and the clients an app under development may use.
        clients: [Client::demo(args.redirect_uris)]
            .into_iter()
            .chain(Client::apps())
            .collect(),
        ..SandboxConfig::default()
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        // Listen for Ctrl-C, SIGTERM and SIGHUP before saying where to find the sandbox:
        // whoever reads that may send one at once.
        let mut stops = crate::infra::stop::Stops::listen();
        let sandbox = Sandbox::start(config).await.map_err(CliError::Sandbox)?;
        println!("{}", crate::sandbox::describe(&sandbox));
        let _ = io::stdout().flush();
        let stop = stops.next().await;
        eprintln!("onramp: {}: stopping the sandbox", stop.name());
        sandbox.shutdown().await;
        Ok(exit::OK)
    })
}

fn run_features(args: RunArgs, console: Console) -> Result<u8, CliError> {
    let options = crate::run::RunOptions {
        target: args.target.first().cloned(),
        features: args.features.clone(),
        tags: args.tags.clone(),
        out: Some(args.out.clone()),
        webdriver: args.webdriver.clone(),
        headed: args.headed,
        sandbox_faults: args.sandbox_faults.clone(),
        manifest: args.manifest.clone(),
        require_checklist: args.require_checklist,
        console,
        recording: args.recording,
        fail_fast: args.fail_fast,
        deadline: args.deadline,
    };
    if args.dry_run {
        return dry_run(&args, &options);
    }
    // A run killed outright (SIGKILL) left its browser and temp folders: clear them first.
    let swept = crate::infra::leftovers::sweep();
    if swept.folders > 0 {
        eprintln!(
            "onramp: a killed onramp run left {} and {} browser or driver process(es): removed and stopped them",
            crate::infra::words::plural(swept.folders, "temp folder"),
            swept.processes,
        );
    }
    for spec in &args.target {
        if let Some(now) = crate::config::renamed(spec) {
            eprintln!(
                "onramp: the target \"{spec}\" is now called \"{now}\" (the offline sandbox; \"bluebutton-sandbox\" is CMS's real one); the old name still works"
            );
        }
    }
    if args.target.len() > 1 {
        return run_targets(&args, options, console);
    }
    let plan = Plan::resolve::<OnrampWorld>(&options).map_err(CliError::Run)?;
    let report = runtime()?
        .block_on(crate::run::run::<OnrampWorld>(plan))
        .map_err(CliError::Run)?;
    let summary = &report.summary;
    ci_outputs(&args, summary, &report.dir);
    let counts = &summary.scenario_counts;
    let verdict =
        if summary.outcome == crate::summary::Outcome::Error && summary.exit_code == exit::USAGE {
            console.paint_out(
                "1;33",
                "not run as written: the features or the target do not fit",
            )
        } else {
            paint_verdict(console, summary.outcome)
        };
    println!(
        "{}onramp: {verdict}: {} scenario{} ({}) against {} in {:.1} s",
        if console.quiet() { "" } else { "\n" },
        counts.passed + counts.failed + counts.skipped,
        if counts.passed + counts.failed + counts.skipped == 1 {
            ""
        } else {
            "s"
        },
        counts.tally(),
        summary.target.name,
        summary.duration_ms as f64 / 1000.0
    );
    // Which part of CMS-9115-F each result is about, when the run covered more than one.
    if summary.apis.len() > 1 {
        let apis: Vec<String> = summary
            .apis
            .iter()
            .map(|api| format!("{} {}", api.title, api.verdict))
            .collect();
        println!("onramp: {}", apis.join(" · "));
    }
    for error in &summary.errors {
        println!("onramp: {}", crate::infra::text::inert(error));
    }
    print!("{}", failures(summary, console));
    println!(
        "onramp: report in {}/ ({})",
        report.dir.display(),
        report.files.join(", ")
    );
    Ok(summary.exit_code)
}

/// Each failed or warning step of the run, after the verdict, as `cargo test` lists its
/// failures: the scenario and where it is, the step, whose fault (the payer broke a rule,
/// onramp could not test, the features or the target do not fit) and the cause's first line.
fn failures(summary: &crate::summary::RunSummary, console: Console) -> String {
    use crate::summary::{FailureKind, Status};
    let mut out = String::new();
    let mut any = false;
    for scenario in &summary.scenarios {
        let steps: Vec<_> = scenario
            .steps
            .iter()
            .filter(|s| matches!(s.status, Status::Failed | Status::Warning))
            .collect();
        if steps.is_empty() {
            continue;
        }
        if !any {
            out.push_str("\nfailures:\n");
            any = true;
        }
        let heading = format!(
            "{} › {}",
            crate::infra::text::inert(&scenario.feature),
            crate::infra::text::inert(&scenario.name)
        );
        out.push_str(&console.paint_out("1", &heading));
        out.push('\n');
        for step in steps {
            let (mark, colour) = match step.status {
                Status::Warning => ("!", "33"),
                _ => ("✘", "31"),
            };
            let kind = match (step.status, step.failure) {
                (Status::Warning, _) => "warning: a SHOULD the payer does not meet",
                (_, Some(FailureKind::Environment)) => "could not test",
                (_, Some(FailureKind::Usage)) => "usage: the features or the target do not fit",
                (_, Some(FailureKind::App)) => "app: the app under test",
                _ => "conformance: the payer broke a rule",
            };
            let line = format!(
                "   {mark}  {} {}   [{}:{}, {kind}]",
                step.keyword,
                crate::infra::text::inert(&step.text),
                scenario.file,
                step.line
            );
            out.push_str(&console.paint_out(colour, &line));
            out.push('\n');
            if let Some(first) = step.error.as_deref().and_then(|e| e.lines().next()) {
                out.push_str(&format!("      {}\n", crate::infra::text::inert(first)));
            }
        }
    }
    if any {
        out.push('\n');
    }
    out
}

/// `--dry-run`: each target's plan; the worst exit code.
fn dry_run(args: &RunArgs, options: &crate::run::RunOptions) -> Result<u8, CliError> {
    let runtime = runtime()?;
    let targets: Vec<Option<String>> = if args.target.is_empty() {
        vec![None]
    } else {
        args.target.iter().cloned().map(Some).collect()
    };
    println!("onramp: dry run: nothing is started or run");
    let mut worst = exit::OK;
    for target in targets {
        let options = crate::run::RunOptions {
            target,
            ..options.clone()
        };
        let plan = Plan::resolve::<OnrampWorld>(&options).map_err(CliError::Run)?;
        let plan = runtime
            .block_on(crate::run::dry_run::dry_run(&plan))
            .map_err(CliError::Run)?;
        print!("{}", crate::infra::text::inert_lines(&plan.text));
        worst = worst.max(plan.exit_code);
    }
    Ok(worst)
}

/// How a run ended, in its colour.
fn paint_verdict(console: Console, outcome: crate::summary::Outcome) -> String {
    let (verdict, colour) = outcome.verdict();
    console.paint_out(colour, verdict)
}

/// `--target A --target B ...`: every target at once, then the index.
fn run_targets(
    args: &RunArgs,
    options: crate::run::RunOptions,
    console: Console,
) -> Result<u8, CliError> {
    let jobs = args
        .jobs
        .map_or(args.target.len().min(4), NonZeroUsize::get);
    let report = runtime()?
        .block_on(crate::run::many::run_many::<OnrampWorld>(
            options,
            args.target.clone(),
            jobs,
        ))
        .map_err(CliError::Run)?;
    for run in report.runs.iter().flatten() {
        ci_outputs(args, &run.summary, &run.dir);
    }
    let combined = &report.combined;
    let failing = combined
        .targets
        .iter()
        .filter(|t| t.exit_code != exit::OK)
        .count();
    println!(
        "{}onramp: {}: {} targets ({} conformant, {failing} not) in {:.1} s, {} at a time",
        if console.quiet() { "" } else { "\n" },
        paint_verdict(console, combined.outcome),
        combined.targets.len(),
        combined.targets.len() - failing,
        combined.duration_ms as f64 / 1000.0,
        combined.jobs
    );
    for run in report.runs.iter().flatten() {
        let listed = failures(&run.summary, console);
        if !listed.is_empty() {
            print!(
                "\n{}:{}",
                crate::infra::text::inert(&run.summary.target.name),
                listed.trim_end_matches('\n')
            );
            println!();
        }
    }
    println!(
        "onramp: reports in {}/ ({}, and one folder per target)",
        report.dir.display(),
        report.files.join(", ")
    );
    Ok(combined.exit_code)
}

/// What CI gets of a target's run: annotations when asked, and the GitHub job summary
/// when the job has one.
fn ci_outputs(args: &RunArgs, summary: &crate::summary::RunSummary, dir: &Path) {
    if args.annotations == Some(Annotations::Github) {
        let mut out = io::stdout().lock();
        // A file GitHub can point at is one in the checkout the job runs in.
        let in_checkout = |file: &str| Path::new(file).is_file();
        for line in crate::report::ci::github_annotations(summary, in_checkout) {
            let _ = writeln!(out, "{line}");
        }
    }
    // In a GitHub Actions job: the Markdown job summary, appended as the file asks.
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let markdown = crate::report::ci::github_step_summary(
            summary,
            dir,
            &crate::report::ci::GithubRun::from_env(),
        );
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(markdown.as_bytes()));
        if let Err(error) = appended {
            eprintln!(
                "onramp: cannot append the job summary to {} (GITHUB_STEP_SUMMARY): {error}; the report is written",
                Path::new(&path).display()
            );
        }
    }
}

fn init(args: InitArgs, console: Console) -> Result<u8, CliError> {
    let (sign_in, target) = match &args.preset {
        None => (
            crate::features::shipped::DEFAULT_SIGN_IN.to_owned(),
            crate::config::TARGET_TEMPLATE.to_owned(),
        ),
        Some(name) => {
            let text = crate::config::built_in(name)
                .map(|(_, text)| text)
                .ok_or_else(|| CliError::UnknownPreset { name: name.clone() })?;
            preset_target(text)
        }
    };
    let set = crate::features::shipped::set(&sign_in).ok_or_else(|| CliError::UnknownPreset {
        name: sign_in.clone(),
    })?;
    let mut files: Vec<(PathBuf, String)> = set
        .iter()
        .map(|(name, text)| (args.dir.join("features").join(name), (*text).to_owned()))
        .collect();
    files.push((args.dir.join("onramp-target.toml"), target));
    files.push((
        args.dir.join(crate::checklist::MANIFEST_NAME),
        crate::checklist::MANIFEST_TEMPLATE.to_owned(),
    ));
    if !args.force
        && let Some((path, _)) = files.iter().find(|(path, _)| path.exists())
    {
        return Err(CliError::Exists { path: path.clone() });
    }
    for (path, text) in &files {
        crate::infra::atomic::write(path, text.as_bytes()).map_err(|source| CliError::Write {
            path: path.clone(),
            source,
        })?;
        if !console.quiet() {
            println!("wrote {}", path.display());
        }
    }
    if console.quiet() {
        return Ok(exit::OK);
    }
    println!(
        "\nEdit them, then: onramp run --target {}\n(the target runs the features beside it; fill in {} for the report's production-access checklist)",
        args.dir.join("onramp-target.toml").display(),
        args.dir.join(crate::checklist::MANIFEST_NAME).display()
    );
    Ok(exit::OK)
}

/// A built-in target's text, rewritten to run the features `onramp init` writes beside
/// it, and the name of its shipped sign-in.
fn preset_target(text: &str) -> (String, String) {
    let sign_in = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("sign_in")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| crate::features::shipped::DEFAULT_SIGN_IN.to_owned());
    let target = text
        .lines()
        .map(|line| {
            if line.starts_with("sign_in = ") {
                "features = \"features\"          # the features beside this file (onramp init wrote them)"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    (sign_in, target)
}

fn checklist(args: ChecklistArgs, console: Console) -> Result<u8, CliError> {
    let target = crate::config::Target::resolve(args.target.as_deref())
        .map_err(|e| CliError::Run(e.into()))?;
    let checklist = crate::checklist::check(Some(&args.manifest), &target.checklist)?;
    print!("{}", crate::checklist::render_text(&checklist));
    if let Some(dir) = &args.out {
        let markdown = crate::checklist::render_markdown(&checklist);
        let mut outputs = vec![(dir.join("checklist.md"), markdown.into_bytes())];
        let payer = target.payer;
        let (drafts, not_drafted) = crate::report::email::drafts(&checklist, &payer, Ok(()), None)
            .map_err(|source| CliError::Write {
                path: dir.join("emails"),
                source,
            })?;
        for draft in drafts {
            outputs.push((dir.join("emails").join(draft.name), draft.bytes));
        }
        if !not_drafted.is_empty() {
            outputs.push((
                dir.join("emails").join("not-drafted.txt"),
                crate::report::email::not_drafted(&not_drafted).into_bytes(),
            ));
        }
        for (path, bytes) in outputs {
            crate::infra::atomic::write(&path, &bytes).map_err(|source| CliError::Write {
                path: path.clone(),
                source,
            })?;
            if !console.quiet() {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(if checklist.complete() {
        exit::OK
    } else {
        exit::FAILURES
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_color_flag_is_found_before_parsing() {
        let args = |line: &str| -> Vec<std::ffi::OsString> {
            line.split_whitespace().map(Into::into).collect()
        };
        assert_eq!(
            color_asked(args("onramp --color never run")),
            Some(ColorChoice::Never)
        );
        assert_eq!(
            color_asked(args("onramp run --color=always")),
            Some(ColorChoice::Always)
        );
        assert_eq!(color_asked(args("onramp run --color=sometimes")), None);
        assert_eq!(color_asked(args("onramp validate -- --color never")), None);
        assert_eq!(color_asked(args("onramp run --colorful")), None);
    }
}
