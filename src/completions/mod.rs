//! `runner completions SHELL`: a completion script for bash, zsh or fish, written by
//! clap_complete from the command line's own definition. Static scripts cannot ask the runner
//! at completion time, so the words an override can start with are listed when the script is
//! made: every `slot=plugin`, every plugin parameter as `slot.param=`, the top-level settings
//! and the `train` keys. A plugin crate's own binary makes a script with its plugins in it.

use std::io::Write;

use clap::builder::PossibleValuesParser;
use clap::{Arg, Command};
use clap_complete::Shell;

use crate::registry::Kind;
use crate::run::launch::LAUNCHERS;

pub mod line;

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
    line::candidates(&Default::default())
}

/// `command` with the override words as the candidates of the positional argument named
/// `overrides` in every subcommand that has one, the plugin kinds as those of `kind`, and the
/// launchers and devices as the values of `--launcher` and `--device`. Only for writing
/// scripts: parsing keeps accepting any override.
fn with_candidates(command: Command, overrides: &[String], kinds: &[String]) -> Command {
    let command = command.mut_args(|arg: Arg| match arg.get_id().as_str() {
        "overrides" => arg.value_parser(PossibleValuesParser::new(overrides.to_vec())),
        "kind" => arg.value_parser(PossibleValuesParser::new(kinds.to_vec())),
        "launcher" => arg.value_parser(PossibleValuesParser::new(LAUNCHERS)),
        "device" => arg.value_parser(PossibleValuesParser::new(crate::device::CHOICES)),
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
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name.clone(), &mut script);
    let script = String::from_utf8_lossy(&script);
    let _ = match shell {
        Shell::Bash => write!(out, "{script}{}", BASH_OVERRIDES.replace("runner", &name)),
        Shell::Zsh => write!(out, "{}", zsh_with_overrides(&script, &name)),
        _ => write!(out, "{script}"),
    };
    // clap_complete's fish script completes options and subcommands but not the candidates
    // of positional arguments, so those get a line of their own per subcommand; overrides
    // are asked of the runner as they are typed.
    if shell == Shell::Fish {
        for sub in command.get_subcommands() {
            let has = |arg: &str| sub.get_arguments().any(|a| a.get_id() == arg);
            let condition = format!("__fish_{name}_using_subcommand {}", sub.get_name());
            if has("overrides") {
                let _ = writeln!(
                    out,
                    "complete -c {name} -n \"{condition}\" -a '({name} __complete -- \
                     (commandline -opc)[2..-1] (commandline -ct))'"
                );
            }
            if has("kind") {
                let _ = writeln!(
                    out,
                    "complete -c {name} -n \"{condition}\" -f -a '{}'",
                    kinds.join(" ")
                );
            }
        }
    }
}

/// Bash: the words of `runner sweep|show` are completed by the runner (`runner __complete`),
/// which knows the file's plugins; elsewhere, or where the word is no override, clap's
/// function. Bash splits words at `=` and `:` (COMP_WORDBREAKS), so the line is read from
/// COMP_LINE and each reply loses what bash took for earlier words.
const BASH_OVERRIDES: &str = r#"
_runner_overrides() {
    local line="${COMP_LINE:0:COMP_POINT}" replies
    local -a words
    read -ra words <<< "$line"
    [[ -z $line || $line == *[[:space:]] ]] && words+=("")
    local cur="${words[${#words[@]}-1]}" seen="${COMP_WORDS[COMP_CWORD]}"
    [[ $seen == "=" || $seen == ":" ]] && seen=""
    if replies="$("$1" __complete -- "${words[@]:1}" 2>/dev/null)"; then
        local cut=$(( ${#cur} - ${#seen} )) reply
        COMPREPLY=()
        while IFS= read -r reply; do
            [[ -n $reply ]] && COMPREPLY+=("${reply:cut}")
        done <<< "$replies"
        return 0
    fi
    _runner "$@"
}
complete -F _runner_overrides -o bashdefault -o default runner
"#;

/// Zsh: clap's script with the overrides' fixed list replaced by a function that asks the
/// runner (defined before the script's last lines, which run it when it is autoloaded).
fn zsh_with_overrides(script: &str, name: &str) -> String {
    let function = format!(
        "_{name}_overrides() {{\n    local -a line candidates\n    line=(${{(z)LBUFFER}})\n    \
         [[ -z $LBUFFER || $LBUFFER == *[[:space:]] ]] && line+=('')\n    \
         candidates=(${{(f)\"$(${{line[1]}} __complete -- ${{line[2,-1]}} 2>/dev/null)\"}})\n    \
         compadd -S '' -a candidates\n}}\n\n"
    );
    let mut text = String::new();
    for line in script.lines() {
        let list = line
            .rfind(":(")
            .filter(|_| line.starts_with("'*::overrides "));
        match list {
            Some(at) => text.push_str(&format!("{}:_{name}_overrides' \\", &line[..at])),
            None => text.push_str(line),
        }
        text.push('\n');
        if line.starts_with("#compdef") {
            text.push_str(&format!("\n{function}"));
        }
    }
    text
}
