//! How onramp speaks on the terminal: how much (`--quiet`, `--verbose`) and whether in
//! colour (`--color auto|always|never`, `NO_COLOR`). Decided once per command from the
//! flags and the streams, then handed to whatever prints, so no escape code reaches a file
//! or a pipe unless someone asked for it.

use std::io::IsTerminal;

/// `--color`: when output may carry ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// When the stream is a terminal and `NO_COLOR` is unset or empty (and `TERM` is not
    /// `dumb`).
    #[default]
    Auto,
    /// Always, even into a file or a pipe (and despite `NO_COLOR`: the flag is asked for).
    Always,
    /// Never.
    Never,
}

/// How much a command prints as it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verbosity {
    /// Only failures, warnings and the verdict; no progress, no log lines.
    Quiet,
    #[default]
    Normal,
    /// Also every HTTP exchange and browser action as it happens, and debug logs.
    Verbose,
}

/// The decisions for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Console {
    pub verbosity: Verbosity,
    /// Colour on standard output.
    pub color_out: bool,
    /// Colour on standard error (log lines, the verbose trace).
    pub color_err: bool,
    /// A live progress bar on standard error.
    pub progress: bool,
}

impl Default for Console {
    /// Plain and normal: what a test or a library caller gets.
    fn default() -> Self {
        Self {
            verbosity: Verbosity::Normal,
            color_out: false,
            color_err: false,
            progress: false,
        }
    }
}

impl Console {
    /// Decide from the flags, the environment and the streams as they are.
    pub fn detect(verbosity: Verbosity, color: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self::decide(
            verbosity,
            color,
            no_color,
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        )
    }

    /// The decision itself, from what [`Console::detect`] looked at.
    pub fn decide(
        verbosity: Verbosity,
        color: ColorChoice,
        no_color: bool,
        stdout_terminal: bool,
        stderr_terminal: bool,
    ) -> Self {
        let paint = |terminal: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        Self {
            verbosity,
            color_out: paint(stdout_terminal),
            color_err: paint(stderr_terminal),
            progress: stderr_terminal && verbosity > Verbosity::Quiet,
        }
    }

    pub fn quiet(&self) -> bool {
        self.verbosity == Verbosity::Quiet
    }

    pub fn verbose(&self) -> bool {
        self.verbosity == Verbosity::Verbose
    }

    /// `text` in the SGR colour `code` on standard output, if colour is on there.
    pub fn paint_out(&self, code: &str, text: &str) -> String {
        paint(self.color_out, code, text)
    }

    /// `text` in the SGR colour `code` on standard error, if colour is on there.
    pub fn paint_err(&self, code: &str, text: &str) -> String {
        paint(self.color_err, code, text)
    }
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_terminals_only_and_honours_no_color() {
        let c = Console::decide(Verbosity::Normal, ColorChoice::Auto, false, true, false);
        assert!(c.color_out && !c.color_err && !c.progress);
        let c = Console::decide(Verbosity::Normal, ColorChoice::Auto, true, true, true);
        assert!(!c.color_out && !c.color_err && c.progress);
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let c = Console::decide(Verbosity::Normal, ColorChoice::Always, true, false, false);
        assert!(c.color_out && c.color_err);
        let c = Console::decide(Verbosity::Normal, ColorChoice::Never, false, true, true);
        assert!(!c.color_out && !c.color_err);
        assert_eq!(c.paint_out("31", "x"), "x");
    }

    #[test]
    fn quiet_has_no_progress() {
        let c = Console::decide(Verbosity::Quiet, ColorChoice::Auto, false, true, true);
        assert!(!c.progress && c.quiet());
    }
}
