//! The `rt-server` binary's settings: config file, environment, flags,
//! `--print-config` and `--log-format`, run as an operator would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rt-server");

/// `rt-server ARGS` with only the given `RT_*` variables set.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in ["RT_CONFIG", "RT_BIND", "RT_DATA", "RT_LOG_FORMAT"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("rt-server runs")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "rt-server failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn setting(printed: &str, key: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} not in\n{printed}"))
        .to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn flags_beat_environment_beat_file_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "rt.toml",
        "bind = \"127.0.0.1:1111\"\ndraw-rate = 7\n",
    );
    let print = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["--print-config"];
        args.extend_from_slice(extra);
        stdout(&run(&args, env))
    };

    let defaults = print(&[], &[]);
    assert_eq!(setting(&defaults, "bind"), "\"127.0.0.1:8080\"");
    assert_eq!(setting(&defaults, "draw-rate"), "60");

    let from_file = print(&["--config", &file], &[]);
    assert_eq!(setting(&from_file, "bind"), "\"127.0.0.1:1111\"");
    assert_eq!(setting(&from_file, "draw-rate"), "7");

    // RT_CONFIG names the file too.
    let via_env = print(&[], &[("RT_CONFIG", &file)]);
    assert_eq!(setting(&via_env, "bind"), "\"127.0.0.1:1111\"");

    let env_wins = print(&["--config", &file], &[("RT_BIND", "127.0.0.1:2222")]);
    assert_eq!(setting(&env_wins, "bind"), "\"127.0.0.1:2222\"");
    assert_eq!(setting(&env_wins, "draw-rate"), "7");

    let flag_wins = print(
        &[
            "--config",
            &file,
            "--bind",
            "127.0.0.1:3333",
            "--draw-rate",
            "9",
        ],
        &[("RT_BIND", "127.0.0.1:2222")],
    );
    assert_eq!(setting(&flag_wins, "bind"), "\"127.0.0.1:3333\"");
    assert_eq!(setting(&flag_wins, "draw-rate"), "9");
}

#[test]
fn print_config_feeds_back_into_config() {
    let dir = tempfile::tempdir().unwrap();
    let first = stdout(&run(
        &[
            "--print-config",
            "--bind",
            "127.0.0.1:4444",
            "--fsync",
            "--draw-width",
            "640.5",
            "--quotes-url",
            "http://quotes.test/v1/{symbol}",
            "--log-format",
            "json",
        ],
        &[],
    ));
    let file = write(dir.path(), "printed.toml", &first);
    let second = stdout(&run(&["--print-config", "--config", &file], &[]));
    assert_eq!(first, second);
    assert_eq!(setting(&second, "fsync"), "true");
    assert_eq!(setting(&second, "log-format"), "\"json\"");
}

#[test]
fn an_unknown_key_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "rt.toml",
        "bind = \"127.0.0.1:0\"\ndraw-rat = 7\n",
    );
    let o = run(&["--config", &file], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown key `draw-rat`"), "{err}");
    assert!(err.contains(&file), "{err}");
    assert!(o.stdout.is_empty(), "nothing served");
}

#[test]
fn a_value_of_the_wrong_type_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("draw-rate = \"fast\"\n", "draw-rate"),
        ("fsync = 1\n", "fsync"),
        ("bind = [\"a\"]\n", "bind"),
        ("log-format = \"xml\"\n", "log-format"),
    ] {
        let file = write(dir.path(), "rt.toml", text);
        let o = run(&["--config", &file], &[]);
        assert_eq!(o.status.code(), Some(1), "{text}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("bad value for `{key}`")), "{err}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    json_logs(&[]);
    // A node of a cluster names itself on every line.
    let v = json_logs(&["--node-id", "node-7"]);
    assert_eq!(v["node"], "node-7");
}

/// Runs the server with JSON logs and `extra` flags; the "store ready" line.
fn json_logs(extra: &[&str]) -> serde_json::Value {
    let mut child = Command::new(BIN)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--data",
            ":memory:",
            "--log-format",
            "json",
        ])
        .args(extra)
        .env_remove("RT_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rt-server starts");
    // Every line up to the store's "ready" is a JSON object.
    let mut ready = None;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        assert_eq!(v["node"].is_string(), !extra.is_empty(), "{line}");
        if v["message"] == "store ready" {
            ready = Some(v);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let v = ready.expect("the server logs that its store is ready");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["data"], ":memory:", "fields sit beside the message");
    v
}
