//! `rt-server --config rt.toml`: every flag can also be set in a TOML file,
//! and `--print-config` writes the effective settings back in that form.
//!
//! Keys are the flags' long names without the leading dashes
//! (`draw-rate = 30`, `bind = "0.0.0.0:9000"`, `fsync = true`). Precedence:
//! command line, then environment, then the file, then the built-in default.
//!
//! The file is merged generically through clap rather than through a serde
//! struct of its own, so every flag — the flattened app settings and any flag
//! added later — is accepted and printed without code here: a key is valid
//! exactly when `--key` is. Each file value that neither the command line nor
//! the environment set becomes that argument's default, and the final parse
//! validates it with the flag's own parser.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use crate::config::Config;

/// Arguments that are about the run itself, not settings: never read from
/// the file and never printed.
const NOT_SETTINGS: [&str; 4] = ["help", "version", "config", "print_config"];

/// Long-name endings of secret settings: their values are never printed.
/// A flag named like this (`--token`, `--admin-password`), or one marked
/// `hide_env_values`, is redacted by `--print-config` without further code.
const SECRET_SUFFIXES: [&str; 3] = ["token", "secret", "password"];

/// Why the settings could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags, `--help` or `--version`: clap prints and exits.
    #[error(transparent)]
    Flags(#[from] clap::Error),
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error(
        "unknown key `{key}` in the config file {path}: keys are rt-server's flag names without the dashes (see rt-server --help)"
    )]
    UnknownKey { path: PathBuf, key: String },
    #[error("bad value for `{key}` in the config file {path}: {message}")]
    BadValue {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The settings of one run, and what it asked for beyond serving.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// The effective settings as TOML (`--print-config` prints this).
    pub effective: String,
}

/// Parses `args` (including the program name), the environment and the
/// config file named by `--config` / `RT_CONFIG`.
pub fn load<I, T>(args: I) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let matches = merge(Config::command(), &args)?;
    let config = Config::from_arg_matches(&matches)?;
    // `mut_arg` moves an argument to the end; print in `--help` order.
    let effective = render(&Config::command(), &matches);
    Ok(Loaded { config, effective })
}

/// Parses `args` against `cmd`, with the values of the file named by its
/// `config` argument as defaults.
fn merge(mut cmd: Command, args: &[OsString]) -> Result<ArgMatches, ConfigError> {
    let first = cmd.clone().try_get_matches_from(args)?;
    if let Some(path) = first.get_one::<PathBuf>("config") {
        let table = read(path)?;
        for (key, value) in table {
            let Some(arg) = setting(&cmd, &key) else {
                return Err(ConfigError::UnknownKey {
                    path: path.clone(),
                    key,
                });
            };
            let id = arg.get_id().as_str().to_owned();
            let bad = |message: String| ConfigError::BadValue {
                path: path.clone(),
                key: key.clone(),
                message,
            };
            let values = scalars(arg, &value).map_err(bad)?;
            check(arg, &values).map_err(bad)?;
            if matches!(
                first.value_source(&id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            cmd = cmd.mut_arg(&id, |a| a.default_values(values));
        }
    }
    Ok(cmd.try_get_matches_from(args)?)
}

fn read(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            // toml's message spans several lines (a caret under the spot);
            // keep them, flattened, so the error stays one line.
            message: e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })
}

/// The argument a file key names, if it is a setting.
fn setting<'a>(cmd: &'a Command, key: &str) -> Option<&'a Arg> {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(key) && !NOT_SETTINGS.contains(&a.get_id().as_str()))
}

fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

fn takes_many(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// A secret by its name, or by `hide_env_values`, which a flag whose
/// environment variable holds a secret sets so `--help` does not show it.
fn is_secret(arg: &Arg) -> bool {
    let long = arg.get_long().unwrap_or_default();
    SECRET_SUFFIXES.iter().any(|s| long.ends_with(s)) || arg.is_hide_env_values_set()
}

/// A file value as the strings clap would have seen on the command line.
fn scalars(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    let one = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string, number or boolean, found {}",
            other.type_str()
        )),
    };
    match value {
        toml::Value::Array(items) if takes_many(arg) => items.iter().map(one).collect(),
        toml::Value::Array(_) => Err("expected one value, found an array".into()),
        v => {
            if is_flag(arg) && !v.is_bool() {
                return Err(format!("expected true or false, found {}", v.type_str()));
            }
            Ok(vec![one(v)?])
        }
    }
}

/// Runs the flag's own parser over the file's values, so a bad one is
/// reported against the file rather than as a broken default.
fn check(arg: &Arg, values: &[String]) -> Result<(), String> {
    let long = arg.get_long().unwrap_or("value");
    let name = arg
        .get_value_names()
        .and_then(|n| n.first())
        .map(|n| n.to_string())
        .unwrap_or_else(|| "VALUE".into());
    let probe = Command::new("rt-server").no_binary_name(true).arg(
        Arg::new("probe")
            .long(long.to_owned())
            .value_name(name)
            .value_parser(arg.get_value_parser().clone())
            .action(ArgAction::Append)
            .allow_hyphen_values(true),
    );
    let argv = values.iter().map(|v| format!("--{long}={v}"));
    probe.try_get_matches_from(argv).map(drop).map_err(|e| {
        let text = e.to_string();
        let line = text.lines().next().unwrap_or_default();
        line.strip_prefix("error: ").unwrap_or(line).to_owned()
    })
}

/// The effective settings as TOML that `--config` reads back: one key per
/// flag, in `--help` order. Unset optional settings and secrets are
/// commented out.
fn render(cmd: &Command, matches: &ArgMatches) -> String {
    let mut out = String::from(
        "# rt-server effective configuration (rt-server --print-config).\n\
         # Keys are flag names; feed this back with --config FILE.\n",
    );
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if NOT_SETTINGS.contains(&id) {
            continue;
        }
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if is_secret(arg) {
            if raw.is_empty() {
                out.push_str(&format!("# {long} =\n"));
            } else {
                out.push_str(&format!("# {long} = \"<redacted>\"\n"));
            }
            continue;
        }
        let line = if raw.is_empty() && takes_many(arg) {
            format!("{long} = []")
        } else if raw.is_empty() {
            format!("# {long} =")
        } else if is_flag(arg) {
            // clap records a flag's value as "true" / "false".
            format!("{long} = {}", raw[0] == "true")
        } else if takes_many(arg) {
            let items: Vec<String> = raw.iter().map(|v| literal(v)).collect();
            format!("{long} = [{}]", items.join(", "))
        } else {
            format!("{long} = {}", literal(&raw[0]))
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A value as a TOML literal: numbers bare, everything else a string.
fn literal(v: &str) -> String {
    if v.parse::<i64>().is_ok() || (v.parse::<f64>().is_ok_and(f64::is_finite) && v.contains('.')) {
        v.to_owned()
    } else {
        toml::Value::String(v.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn load_with(text: &str, flags: &[&str]) -> Result<Loaded, ConfigError> {
        let f = file(text);
        let path = f.path().to_str().unwrap().to_owned();
        let mut args = vec!["rt-server", "--config", &path];
        args.extend_from_slice(flags);
        load(args)
    }

    #[test]
    fn file_values_apply_and_flags_win() {
        let l = load_with(
            "bind = \"127.0.0.1:9999\"\ndraw-rate = 7\nfsync = true\nqa-max-question = 50\n",
            &["--draw-rate", "9"],
        )
        .unwrap();
        assert_eq!(l.config.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(l.config.draw.rate, 9, "the flag beats the file");
        assert!(l.config.fsync);
        assert_eq!(l.config.qa.max_question_chars, 50);
        // Untouched settings keep their defaults.
        assert_eq!(l.config.ticker.poll_ms, 5000);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_with("draw-rat = 7\n", &[]).unwrap_err();
        assert!(matches!(&e, ConfigError::UnknownKey { key, .. } if key == "draw-rat"));
        let msg = e.to_string();
        assert!(msg.contains("`draw-rat`") && !msg.contains('\n'), "{msg}");
        // The run's own switches are not settings.
        let e = load_with("print-config = true\n", &[]).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { .. }));
    }

    #[test]
    fn bad_values_are_reported_against_the_file() {
        for (text, key) in [
            ("draw-rate = \"lots\"\n", "draw-rate"),
            ("draw-rate = 0\n", "draw-rate"),
            ("bind = 8080\n", "bind"),
            ("fsync = \"yes\"\n", "fsync"),
            ("poll-ms = [1, 2]\n", "poll-ms"),
            ("bind = { host = \"x\" }\n", "bind"),
        ] {
            let e = load_with(text, &[]).unwrap_err();
            match &e {
                ConfigError::BadValue { key: k, .. } => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected BadValue, got {other}"),
            }
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn syntax_errors_and_missing_files_are_clear() {
        let e = load_with("bind = \n", &[]).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");
        let e = load(["rt-server", "--config", "/nonexistent/rt.toml"]).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }

    #[test]
    fn print_config_round_trips() {
        let first = load_with(
            "bind = \"127.0.0.1:7000\"\ndraw-width = 640.5\nfsync = true\ndata = \"/tmp/x y.db\"\n",
            &["--qa-max-answer", "77"],
        )
        .unwrap();
        let again = load_with(&first.effective, &[]).unwrap();
        assert_eq!(first.effective, again.effective);
        assert_eq!(again.config.bind.to_string(), "127.0.0.1:7000");
        assert_eq!(again.config.draw.width, 640.5);
        assert_eq!(again.config.qa.max_answer_chars, 77);
        assert!(again.config.fsync);
        assert_eq!(again.config.data, Some(PathBuf::from("/tmp/x y.db")));
        // Every setting is written out, so nothing depends on the defaults of
        // the build that reads it back.
        for arg in Config::command().get_arguments() {
            if let Some(long) = arg.get_long()
                && !NOT_SETTINGS.contains(&arg.get_id().as_str())
            {
                assert!(
                    first
                        .effective
                        .lines()
                        .any(|l| l.starts_with(long) || l.starts_with(&format!("# {long} "))),
                    "{long} missing from\n{}",
                    first.effective
                );
            }
        }
    }

    /// A command with the kinds of flags other modules may add.
    fn other_flags() -> Command {
        Command::new("t")
            .arg(
                Arg::new("config")
                    .long("config")
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .arg(Arg::new("origin").long("origin").action(ArgAction::Append))
            .arg(
                Arg::new("max_connections")
                    .long("max-connections")
                    .value_parser(clap::value_parser!(u32))
                    .default_value("100"),
            )
            .arg(Arg::new("tls").long("tls").action(ArgAction::SetTrue))
    }

    #[test]
    fn lists_numbers_and_switches_of_any_flag_work() {
        let f = file(
            "origin = [\"https://a.test\", \"https://b.test\"]\nmax-connections = 7\ntls = true\n",
        );
        let path = f.path().as_os_str().to_owned();
        let args = |extra: &[&str]| {
            let mut v: Vec<OsString> = vec!["t".into(), "--config".into(), path.clone()];
            v.extend(extra.iter().map(OsString::from));
            v
        };
        let m = merge(other_flags(), &args(&[])).unwrap();
        let origins: Vec<&String> = m.get_many("origin").unwrap().collect();
        assert_eq!(origins, ["https://a.test", "https://b.test"]);
        assert_eq!(m.get_one::<u32>("max_connections"), Some(&7));
        assert!(m.get_flag("tls"));
        let printed = render(&other_flags(), &m);
        assert!(
            printed.contains("origin = [\"https://a.test\", \"https://b.test\"]"),
            "{printed}"
        );
        // The command line replaces a list, it does not extend it.
        let m = merge(other_flags(), &args(&["--origin", "https://c.test"])).unwrap();
        let origins: Vec<&String> = m.get_many("origin").unwrap().collect();
        assert_eq!(origins, ["https://c.test"]);
        let f = file("max-connections = -1\n");
        let bad = merge(
            other_flags(),
            &[
                "t".into(),
                "--config".into(),
                f.path().as_os_str().to_owned(),
            ],
        );
        assert!(
            matches!(bad, Err(ConfigError::BadValue { ref key, .. }) if key == "max-connections")
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let cmd = Command::new("t")
            .arg(Arg::new("token").long("token"))
            .arg(
                Arg::new("key")
                    .long("upstream-key")
                    .env("T_KEY")
                    .hide_env_values(true),
            )
            .arg(Arg::new("bind").long("bind"));
        let m = cmd
            .clone()
            .try_get_matches_from([
                "t",
                "--token",
                "s3cret",
                "--upstream-key",
                "k3y",
                "--bind",
                "x",
            ])
            .unwrap();
        let out = render(&cmd, &m);
        assert!(!out.contains("s3cret") && !out.contains("k3y"), "{out}");
        assert!(out.contains("# token = \"<redacted>\""), "{out}");
        assert!(out.contains("# upstream-key = \"<redacted>\""), "{out}");
        assert!(out.contains("bind = \"x\""), "{out}");
    }
}
