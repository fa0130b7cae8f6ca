//! `runner completions SHELL`: a completion script for bash, zsh or fish, written by
//! clap_complete from the command line's own definition. Static scripts cannot ask the runner
//! at completion time, so the words an override can start with are listed when the script is
//! made: every `slot=plugin`, every plugin parameter as `slot.param=`, the top-level settings
//! and the `train` keys. A plugin crate's own binary makes a script with its plugins in it.

use std::io::Write;

use clap::builder::PossibleValuesParser;
use clap::{Arg, Command};
use clap_complete::Shell;

use crate::config::Params;
use crate::registry::{self, Kind};
use crate::trial::{Settings, PLUGIN_SLOTS};

/// The shells a script can be made for, by the names `runner completions` takes.
pub const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// A shell by name.
pub fn shell(name: &str) -> Option<Shell> {
    match name {
        "bash" => Some(Shell::Bash),
        "zsh" => Some(Shell::Zsh),
        "fish" => Some(Shell::Fish),
        _ => None,
    }
}

/// The words an override starts with: `seed=`, `train.lr=`, `sampler=heun`, `sampler.steps=`,
/// `data.means=`, `eval=`, `features=classifier`, ... sorted, without repeats.
pub fn override_words() -> Vec<String> {
    let mut words: Vec<String> = Settings::docs()
        .iter()
        .map(|p| format!("{}=", p.name))
        .chain(
            crate::train::TrainSettings::docs()
                .iter()
                .map(|p| format!("train.{}=", p.name)),
        )
        .chain(
            crate::trial::DistillSettings::docs()
                .iter()
                .map(|p| format!("distill.{}=", p.name)),
        )
        .collect();
    let slots = PLUGIN_SLOTS
        .iter()
        .copied()
        .chain([("features", Kind::Features)]);
    for (slot, kind) in slots {
        for plugin in registry::plugins(kind) {
            words.push(format!("{slot}={}", plugin.name));
            words.extend(
                (plugin.params)()
                    .iter()
                    .map(|p| format!("{slot}.{}=", p.name)),
            );
        }
    }
    words.push("eval=".to_string());
    words.sort();
    words.dedup();
    words
}

/// `command` with the override words as the candidates of the positional argument named
/// `overrides` in every subcommand that has one, and the plugin kinds as those of `kind`.
/// Only for writing scripts: parsing keeps accepting any override.
fn with_candidates(command: Command, overrides: &[String], kinds: &[String]) -> Command {
    let command = command.mut_args(|arg: Arg| match arg.get_id().as_str() {
        "overrides" => arg.value_parser(PossibleValuesParser::new(overrides.to_vec())),
        "kind" => arg.value_parser(PossibleValuesParser::new(kinds.to_vec())),
        _ => arg,
    });
    command.mut_subcommands(|sub| with_candidates(sub, overrides, kinds))
}

/// Writes the completion script for `shell` of `command` (the runner's `clap::Command`).
pub fn write_script(shell: Shell, command: Command, out: &mut dyn Write) {
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .flat_map(|k| [k.name(), k.plural(), k.key()])
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let words = override_words();
    let mut command = with_candidates(command, &words, &kinds);
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name.clone(), out);
    // clap_complete's fish script completes options and subcommands but not the candidates
    // of positional arguments, so those get a line of their own per subcommand.
    if shell == Shell::Fish {
        for sub in command.get_subcommands() {
            for (arg, candidates) in [("overrides", &words), ("kind", &kinds)] {
                if sub.get_arguments().any(|a| a.get_id() == arg) {
                    let _ = writeln!(
                        out,
                        "complete -c {name} -n \"__fish_{name}_using_subcommand {}\" -f -a '{}'",
                        sub.get_name(),
                        candidates.join(" ")
                    );
                }
            }
        }
    }
}
